"""``ratelord events``: the event log, one line per event, optionally followed live (SSE)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import Annotated, Any

import msgspec
import typer
from rich.text import Text

from ratelord.cli import _output as out
from ratelord.cli._errors import CliError
from ratelord.cli._http import Session, api
from ratelord.client import Client, RatelordTransportError, RatelordUnavailable
from ratelord.client._retry import Backoff
from ratelord.client.events import Event, IntentDecided, PostureChanged, event_from

#: The daemon sends ``: ping`` every 15 s; three missed pings mean the connection is dead.
STREAM_READ_TIMEOUT = 45.0
#: Reconnect after 0.5 s, 1 s, 2 s… up to 5 s (one person tailing: no jitter needed).
RECONNECT = Backoff(base=0.5, max_delay=5.0, jitter=0.0)
SENTINEL_PREFIX = "sentinel:"

_TYPE_STYLE = {
    "system_started": "bold blue",
    "system_stopped": "bold blue",
    "identity_registered": "cyan",
    "identity_rotated": "cyan",
    "identity_quarantined": "yellow",
    "identity_revoked": "red",
    "provider_error": "red",
    "drift_detected": "magenta",
    "policy_updated": "cyan",
    "policy_rejected": "bold red",
    "policy_triggered": "yellow",
    "throttle_advised": "yellow",
    "snapshot_written": "blue",
}
#: Query parameter → where the value sits in an event (for client-side filtering of the stream).
_FILTERS = {
    "type": ("event_type",),
    "agent_id": ("dimensions", "agent_id"),
    "identity_id": ("dimensions", "identity_id"),
    "workload_id": ("dimensions", "workload_id"),
    "scope_id": ("dimensions", "scope_id"),
    "pool_id": ("pool_id",),
}


def events(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many events.")] = 50,
    type_: Annotated[str | None, typer.Option("--type", help="Only this event type.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent id.")] = None,
    identity: Annotated[str | None, typer.Option(help="Only this identity id.")] = None,
    workload: Annotated[str | None, typer.Option(help="Only this workload id.")] = None,
    scope: Annotated[str | None, typer.Option(help="Only this scope id.")] = None,
    pool: Annotated[str | None, typer.Option(help="Only this pool id.")] = None,
    after_seq: Annotated[
        int | None, typer.Option(min=0, help="Only events after this sequence number.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming new events (Ctrl-C stops).")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="JSON answer; with --follow one event per line.")
    ] = False,
) -> None:
    """Show the event log, oldest first; --follow tails it live and resumes after drops."""
    given = {
        "type": type_,
        "agent_id": agent,
        "identity_id": identity,
        "workload_id": workload,
        "scope_id": scope,
        "pool_id": pool,
    }
    filters = {k: v for k, v in given.items() if v is not None}
    daemon = api(ctx)
    answer = daemon.get("/v1/events", {**filters, "limit": limit, "after_seq": after_seq})
    page = sorted(answer.get("events", []), key=lambda e: e["seq"])
    if json_out and not follow:
        out.print_json(answer)
        return
    for event in page:
        _emit(event, json_out)
    if not follow:
        if not page and not json_out:
            out.err_console().print("no events match", style="dim")
        return
    seqs = [after_seq or 0, answer.get("next_after_seq") or 0, *(e["seq"] for e in page)]
    session = ctx.find_object(Session) or Session()
    _follow(daemon, filters, max(seqs), json_out, session)


def _follow(
    daemon: Client, filters: dict[str, str], last_seq: int, json_out: bool, session: Session
) -> None:
    """Stream forever; on a dropped connection wait, reconnect and resume after ``last_seq``.

    A daemon that is restarting answers 503 for a moment: that is waited out too.
    """
    failures = 0
    reported = False
    while True:
        try:
            stream = daemon.sse(
                "/v1/events",
                {**filters, "stream": "true", "after_seq": last_seq},
                last_event_id=str(last_seq),
                read_timeout=STREAM_READ_TIMEOUT,
            )
            for message in stream:
                event = _decode(message.data)
                if event["seq"] <= last_seq:  # already shown before a reconnect
                    continue
                last_seq = event["seq"]
                failures, reported = 0, False
                if matches(event, filters):
                    _emit(event, json_out)
        except RatelordTransportError as exc:
            if (
                isinstance(exc, RatelordUnavailable)
                and exc.status_code != HTTPStatus.SERVICE_UNAVAILABLE
            ):
                raise  # a failure, not an outage or a restart: retrying will not help
            if not reported:
                out.err_console().print(
                    f"connection lost ({exc.reason}); reconnecting, resuming after seq {last_seq}…",
                    style="yellow",
                )
                reported = True
        session.sleep(RECONNECT.pause(failures))
        failures += 1


def _decode(data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
        int(event["seq"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(f"unexpected event on the stream from ratelord-d: {exc}") from exc
    return event  # type: ignore[no-any-return]


def matches(event: dict[str, Any], filters: dict[str, str]) -> bool:
    """Whether an event passes the same filters the daemon applies to ``GET /v1/events``."""
    for param, wanted in filters.items():
        value: Any = event
        for key in _FILTERS[param]:
            value = value.get(key) if isinstance(value, dict) else None
        if value != wanted:
            return False
    return True


def _emit(event: dict[str, Any], json_out: bool) -> None:
    if json_out:
        out.print_json_line(event)
    else:
        out.console().print(event_line(event), soft_wrap=True)


def event_line(event: dict[str, Any]) -> Text:
    """``12:01:08  #42  intent_decided  [a1] build -> APPROVED``, coloured by type."""
    event_type = str(event.get("event_type", "?"))
    try:
        known: Event | None = event_from(event)
    except msgspec.ValidationError:
        known = None  # shown as it came, field by field
    line = Text(f"{out.fmt_clock(event['ts_event'])}  ", style="dim")
    line.append(f"#{event['seq']:<6} ", style="dim")
    line.append(f"{event_type:<22}", style=_style(event_type, known))
    line.append(" ")
    line.append_text(_summary(event, known))
    return line


def _style(event_type: str, event: Event | None) -> str:
    if isinstance(event, IntentDecided):
        return out.DECISION_STYLE.get(event.payload.decision, "")
    if isinstance(event, PostureChanged):
        return out.POSTURE_STYLE.get(event.payload.to, "")
    return _TYPE_STYLE.get(event_type, "dim")


def _summary(event: dict[str, Any], known: Event | None) -> Text:
    if isinstance(known, IntentDecided):
        p, who = known.payload, known.dimensions
        line = Text(f"[{who.agent_id}] {who.workload_id} -> ")
        mods = msgspec.to_builtins(p.modifications)
        return line.append_text(out.decision_label(p.decision, mods, p.reason))
    # Any other type: its dimensions and first scalar fields, whatever they are.
    dims = event.get("dimensions") or {}
    payload = event.get("payload") or {}
    parts = [
        f"{key.removesuffix('_id')}={value}"
        for key, value in dims.items()
        if isinstance(value, str) and not value.startswith(SENTINEL_PREFIX)
    ]
    if event.get("pool_id"):
        parts.append(f"pool={event['pool_id']}")
    parts.extend(_scalars(payload.items()))
    return Text(" ".join(parts))


def _scalars(items: Iterable[tuple[str, Any]], limit: int = 6) -> list[str]:
    """The first few scalar payload fields, enough to recognise an event at a glance."""
    shown = [
        f"{key}={_fmt_scalar(key, value)}"
        for key, value in items
        if isinstance(value, str | int | float | bool) and key != "intent_id"
    ]
    return shown[:limit]


def _fmt_scalar(key: str, value: str | float | bool) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if key.endswith("_at") or key.startswith("ts_"):  # epoch seconds
        return out.fmt_clock(value)
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
