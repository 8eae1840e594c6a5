"""Operator actions on a running daemon: reload, rebuild, backup, archive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ratelord.cli import _output as out
from ratelord.cli._errors import CliError, as_cli_error
from ratelord.cli._http import api
from ratelord.client import Client, RatelordError, RatelordRequestError
from ratelord.store.backup import BackupError, backup_sqlite

#: A rebuild streams a progress line at least this often, or something is wrong.
REBUILD_READ_TIMEOUT = 300.0


def reload(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the daemon's answer.")] = False,
) -> None:
    """Reload the daemon's policy file (POST /v1/policy/reload); a bad file changes nothing."""
    daemon = api(ctx)
    try:
        answer = daemon.post("/v1/policy/reload")
    except RatelordRequestError as exc:
        if exc.code != "policy_rejected":
            raise
        if "stays in force" in exc.message:  # the daemon said it already
            raise
        said = as_cli_error(exc).message
        raise CliError(f"{said}; {_kept(daemon)} stays in force") from exc
    if json_out:
        out.print_json(answer)
        return
    version = (answer or {}).get("version") or (answer or {}).get("policy_version") or "?"
    out.console().print(Text.assemble(("policy reloaded", "bold green"), f": version {version}"))


def _kept(daemon: Client) -> str:
    """Name the policy still in force; the rejection matters more than this detail."""
    try:
        version = daemon.get("/v1/policy").get("version")
    except RatelordError:
        version = None
    return f"the previous policy (version {version})" if version else "the previous policy"


def rebuild(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Drop the snapshots, regenerate them and verify they equal a full replay (exit 1 if not)."""
    daemon = api(ctx)
    result = _run_rebuild(daemon, show_progress=not json_out)
    if json_out:
        out.print_json(result)
    else:
        _print_result(result)
    if not result.get("equal"):
        differences = result.get("differences") or []
        raise CliError(f"rebuilt state differs from a full replay ({len(differences)} differences)")


def _run_rebuild(daemon: Client, *, show_progress: bool) -> dict[str, Any]:
    progress = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out.err_console(),
        transient=True,
        disable=not show_progress,
    )
    tasks: dict[str, Any] = {}
    result: dict[str, Any] | None = None
    with progress:
        for line in daemon.ndjson("/v1/admin/rebuild", read_timeout=REBUILD_READ_TIMEOUT):
            if "error" in line:
                detail = line["error"]
                raise CliError(f"{detail.get('message')} [{detail.get('code')}]")
            if "result" in line:
                result = line["result"]
                continue
            phase = str(line.get("phase", "rebuild"))
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=line.get("total"))
            progress.update(tasks[phase], completed=line.get("done", 0), total=line.get("total"))
    if result is None:
        raise CliError("the rebuild stream ended without a result; see the daemon's log")
    return result


def _print_result(result: dict[str, Any]) -> None:
    console = out.console()
    equal = bool(result.get("equal"))
    verdict = (
        Text("equal to a full replay", style="bold green")
        if equal
        else Text("DIFFERS from a full replay", style="bold red")
    )
    console.print(Text.assemble(("rebuild ", "bold"), verdict))
    console.print(
        out.details(
            [
                ("events replayed", out.fmt_number(result.get("events"))),
                ("took", out.fmt_duration(result.get("seconds"))),
                ("snapshot at seq", out.fmt_number(result.get("snapshot_seq"))),
            ]
        )
    )
    for difference in result.get("differences") or []:
        console.print(f"  - {difference}", style="red", soft_wrap=True)


#: What to do instead when the log is in PostgreSQL.
POSTGRES_BACKUP = (
    "this log is in PostgreSQL, which backs it up itself: pg_dump -Fc -f ratelord.dump DBNAME "
    "(restore with pg_restore), or a base backup with WAL archiving for point-in-time recovery"
)


def backup(
    path: Annotated[Path, typer.Argument(help="A new file for the copy.")],
    db: Annotated[
        Path, typer.Option("--db", envvar="RATELORD_DB", help="The daemon's database.")
    ] = Path("./ratelord.db"),
    store: Annotated[
        str | None,
        typer.Option("--store", envvar="RATELORD_STORE", help="The daemon's store URL, if any."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Copy the log to PATH while the daemon runs (SQLite's online backup API).

    Restore: stop the daemon and start it on the copy, ratelord-d --db PATH.
    """
    if store and store.startswith(("postgresql://", "postgres://")):
        raise CliError(POSTGRES_BACKUP)
    source = Path(store.removeprefix("sqlite://")) if store else db  # sqlite:///abs/path
    if not source.is_file():
        raise CliError(f"no database at {source}; name the daemon's with --db or RATELORD_DB")
    try:
        result = backup_sqlite(source.absolute(), path.expanduser().absolute())
    except BackupError as exc:
        raise CliError(str(exc)) from None
    if json_out:
        out.print_json(msgspec.to_builtins(result))
        return
    out.console().print(
        Text.assemble(
            ("backed up", "bold green"),
            f" {source} up to event {result.high_water_seq:,}"
            f" ({out.fmt_count(result.bytes / 1024)} KiB) to {result.path}",
        )
    )
    out.console().print(f"restore: stop the daemon, then ratelord-d --db {result.path}")


#: Archiving a day of a busy fleet's log (~2M events) takes a few minutes.
ARCHIVE_TIMEOUT = 1800.0


def archive(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Archive events logged longer ago than this (12h, 7d); "
            "default: the config's retention.archive_after.",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Move old events from the live log into compressed segment files (retention)."""
    body = {} if older_than is None else {"older_than": older_than}
    report = api(ctx, timeout=ARCHIVE_TIMEOUT).post("/v1/admin/archive", body)
    if json_out:
        out.print_json(report)
        return
    console = out.console()
    count = int(report.get("archived_events") or 0)
    if not count:
        console.print(
            f"nothing to archive: no event in the table was logged before {report['cutoff']}"
        )
    else:
        raw, packed = report.get("raw_bytes") or 0, report.get("bytes") or 1
        console.print(
            Text.assemble(("archived ", "bold green"), f"{count:,} events to {report['directory']}")
        )
        console.print(
            out.details(
                [
                    ("up to seq", out.fmt_number(report.get("archived_upto_seq"))),
                    ("segments", str(len(report.get("segments") or []))),
                    ("size", f"{packed / 1024:,.0f} KiB ({raw / packed:.1f}x smaller)"),
                    ("took", out.fmt_duration(report.get("seconds"))),
                ]
            )
        )
    console.print(
        f"{int(report.get('deleted_events') or 0):,} archived events removed from the table"
    )
