"""``ratelord replay``: what a recorded period would have looked like under other conditions.

The daemon replays the period through the real engine in a sandbox (``POST /v1/replay``):
its live state and its log are not touched.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from ratelord.cli import _output as out
from ratelord.cli._errors import CliError
from ratelord.cli._http import api
from ratelord.client import RatelordRequestError, RatelordUnavailable

#: A replay of a long period takes seconds; the first one after start-up waits for the index.
REPLAY_TIMEOUT = 300.0
INDEX_WAIT = 300.0

#: (label, summary key, formatter, True when a rise is worse)
ROWS: tuple[tuple[str, str, Any, bool | None], ...] = (
    ("intents", "intents", out.fmt_number, None),
    ("approved", "approved", out.fmt_number, None),
    ("paced (wait)", "waited", out.fmt_number, True),
    ("deferred", "deferred", out.fmt_number, True),
    ("denied", "denied", out.fmt_number, True),
    ("denial rate", "denial_rate", out.fmt_percent, True),
    ("wait rate", "wait_rate", out.fmt_percent, True),
    ("429s the calls would meet", "rate_limited", out.fmt_number, True),
    ("units approved", "units_approved", out.fmt_number, False),
    ("shortest P50 time to exhaustion", "min_tte_p50_seconds", out.fmt_duration, False),
)


def replay(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(help="Start of the recorded period: a duration ago (24h, 7d) or a time.")
    ] = "24h",
    until: Annotated[str, typer.Option(help="End of the period.")] = "now",
    policy: Annotated[
        Path | None,
        typer.Option(help="Replay under this policy file instead of the active one."),
    ] = None,
    traffic: Annotated[float, typer.Option(help="Multiply the recorded intents by this.")] = 1.0,
    limit: Annotated[float, typer.Option(help="Multiply every pool's limit by this.")] = 1.0,
    clone: Annotated[
        str | None, typer.Option(help="Add agents that ask like this recorded agent.")
    ] = None,
    clones: Annotated[int, typer.Option(help="How many agents like --clone to add.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Replay a recorded period in a sandbox and compare it with what really happened."""
    body: dict[str, Any] = {"since": since, "until": until, "traffic": traffic, "limit": limit}
    if policy is not None:
        try:
            body["policy"] = policy.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read the policy file {policy}: {exc.strerror}") from None
    if clone is not None or clones:
        if clone is None or clones < 1:
            raise CliError("--clone AGENT and --clones N go together (N ≥ 1)")
        body |= {"clone_agent": clone, "clones": clones}
    daemon = api(ctx, timeout=REPLAY_TIMEOUT)
    result = _post_when_indexed(daemon, body, quiet=json_out)
    if json_out:
        out.print_json(result)
        return
    _print(result)


def _post_when_indexed(daemon: Any, body: dict[str, Any], *, quiet: bool) -> Any:
    """POST the replay; while the daemon builds its history index (503 indexing), wait."""
    deadline = time.monotonic() + INDEX_WAIT
    while True:
        try:
            return daemon.post("/v1/replay", body)
        except (RatelordRequestError, RatelordUnavailable) as exc:
            if exc.code != "indexing" or time.monotonic() > deadline:
                raise
            if not quiet:
                out.err_console().print(Text(exc.message, style="dim"))
            time.sleep(2.0)


def _print(result: dict[str, Any]) -> None:
    console = out.console()
    m = result["modifiers"]
    changes = [f"traffic × {m['traffic']:g}", f"limits × {m['limit']:g}"]
    if m.get("clones"):
        changes.append(f"+{m['clones']} agents like {m['clone_agent']}")
    console.print(out.heading(f"{result['since']} → {result['until']}"))
    console.print(f"{', '.join(changes)}; policy {result['policy_version']}")
    grid = out.table("", "recorded", "scenario", "change")
    for column in grid.columns[1:]:
        column.justify = "right"
    base, scen = result["baseline"], result["scenario"]
    for label, key, fmt, worse_up in ROWS:
        grid.add_row(
            label, fmt(base[key]), fmt(scen[key]), _change(base[key], scen[key], fmt, worse_up)
        )
    grid.add_row(
        "first exhaustion",
        base["first_exhaustion"] or "never",
        scen["first_exhaustion"] or "never",
        "",
    )
    grid.add_row(
        "pools that went critical",
        str(len(base["pools_critical"])),
        str(len(scen["pools_critical"])),
        "",
    )
    console.print(grid)
    fired = sorted(set(base["triggers"]) | set(scen["triggers"]))
    if fired:
        rules = out.table("rule fired", "recorded", "scenario", wrap=("rule fired",))
        for rule in fired:
            rules.add_row(
                rule,
                out.fmt_number(sum(base["triggers"].get(rule, []))),
                out.fmt_number(sum(scen["triggers"].get(rule, []))),
            )
        console.print(rules)
    console.print(
        Text(
            f"{result['events_read']:,} recorded events replayed in {result['seconds']:.2f} s; "
            "nothing was written to the log",
            style="dim",
        )
    )


def _change(before: float | None, after: float | None, fmt: Any, worse_up: bool | None) -> Text:
    """Rates change by points, counts by percent (or by how many, from zero)."""
    if before is None or after is None or before == after:
        return Text("")
    up = after > before
    sign = "+" if up else "-"
    if fmt is out.fmt_percent:
        text = f"{sign}{100 * abs(after - before):.1f} pts"
    elif before:
        text = f"{sign}{100 * abs(after - before) / before:.0f} %"
    else:
        text = f"{sign}{out.fmt_number(abs(after - before))}"
    style = "" if worse_up is None else ("red" if up == worse_up else "green")
    return Text(text, style=style)
