"""How the CLI shows things: Rich tables and colours for people, plain JSON for scripts.

Colour follows Rich's terminal detection (none when piped; ``NO_COLOR`` is honoured).
Times are shown in UTC, like the daemon's logs; durations as ``1h 02m``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from ratelord.engine.clock import parse_iso

POSTURE_STYLE = {"OK": "green", "WARN": "yellow", "CRIT": "bold red"}
IDENTITY_STYLE = {"active": "green", "quarantined": "yellow", "revoked": "red"}
DECISION_STYLE = {
    "approve": "bold green",
    "approve_with_modifications": "bold yellow",
    "deny_with_reason": "bold red",
}
_POSTURE_RANK = {"OK": 0, "WARN": 1, "CRIT": 2}
_SPARK = "▁▂▃▄▅▆▇█"


def console() -> Console:
    return Console(highlight=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Indented JSON on stdout; written directly so no wrapping can break it."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_json_line(data: Any) -> None:
    """One compact JSON document per line (NDJSON), for streams."""
    typer.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def error_line(message: str) -> None:
    line = Text("error: ", style="bold red")
    line.append(message)
    err_console().print(line, soft_wrap=True)


# ------------------------------------------------------------------ tables


def table(*columns: str, wrap: Collection[str] = ()) -> Table:
    """A borderless table for an 80-column terminal.

    Numbers, postures and durations stay on one line and are never cut; the ``wrap``
    columns (ids, free text) give way first when the terminal is narrow, by wrapping
    onto a second line rather than ending in ``…``, so an id can still be copied.
    """
    grid = Table(header_style="bold", box=None, pad_edge=False)
    for column in columns:
        if column in wrap:
            grid.add_column(column, overflow="fold")
        else:
            grid.add_column(column, no_wrap=True, min_width=len(column))
    return grid


def heading(text: str) -> Text:
    return Text(text, style="bold underline")


def details(rows: Iterable[tuple[str, RenderableType | None]]) -> Table:
    """A two-column key/value block; rows whose value is ``None`` are left out."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column(overflow="fold")
    for key, value in rows:
        if value is not None:
            grid.add_row(key, value)
    return grid


# ------------------------------------------------------------------ values


def styled(value: str, styles: dict[str, str]) -> Text:
    return Text(value, style=styles.get(value, ""))


def worst_posture(statuses: Iterable[str]) -> str:
    return max(statuses, key=lambda s: _POSTURE_RANK.get(s, 0), default="OK")


def fmt_number(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def fmt_count(value: float | None) -> str:
    """A whole count (requests, tokens) in at most 7 characters: ``98,765``, ``988k``,
    ``1.23M``; never a fraction of a request."""
    if value is None:
        return "-"
    whole = math.floor(value + 1e-9)
    if abs(whole) < 100_000:
        return f"{whole:,}"
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(whole) >= size:
            return f"{whole / size:.3g}{suffix}"
    raise AssertionError("unreachable")  # pragma: no cover


def fmt_budget(remaining: float | None, limit: float | None) -> str:
    """``1,388/5,000``: what is left of the limit, in whole units."""
    return f"{fmt_count(remaining)}/{fmt_count(limit)}"


def plural(count: int, word: str) -> str:
    """``1 pool``, ``3 pools``."""
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def fmt_rate(per_second: float | None) -> str:
    if per_second is None:
        return "-"
    if per_second == 0:
        return "0/s"
    if per_second < 1:
        return f"{per_second * 60:.3g}/min"
    return f"{per_second:.3g}/s"


def fmt_percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction:.1%}"


def fmt_duration(seconds: float | None) -> str:
    """``∞`` for ``None`` (the wire's "never"), else the two largest units."""
    if seconds is None or math.isinf(seconds):
        return "∞"
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    whole = round(seconds)
    if 0 < seconds < 0.1:
        text = f"{seconds * 1000:.0f}ms"
    elif seconds < 10 and not float(seconds).is_integer():
        text = f"{seconds:.1f}s"
    elif whole < 60:
        text = f"{whole}s"
    elif whole < 3600:
        text = f"{whole // 60}m {whole % 60:02d}s"
    elif whole < 86400:
        text = f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    else:
        text = f"{whole // 86400}d {whole % 86400 // 3600:02d}h"
    return sign + text


def to_epoch(value: float | str) -> float:
    """Event times are epoch floats, resource times RFC 3339 strings."""
    return float(value) if isinstance(value, int | float) else parse_iso(value)


def fmt_clock(value: float | str) -> str:
    return datetime.fromtimestamp(to_epoch(value), UTC).strftime("%H:%M:%S")


def fmt_instant(value: float | str | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(to_epoch(value), UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def seconds_until(value: str | None, now: float) -> float | None:
    return None if value is None else to_epoch(value) - now


def sparkline(values: Sequence[float], width: int | None = None) -> str:
    """One block character per value; more values than ``width`` are averaged in runs."""
    if width is not None and 0 < width < len(values):
        step = len(values) / width
        values = [
            sum(chunk) / len(chunk)
            for chunk in (
                values[int(i * step) : max(int((i + 1) * step), int(i * step) + 1)]
                for i in range(width)
            )
        ]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    if span == 0:
        return _SPARK[-1] * len(values)
    return "".join(_SPARK[round((v - low) / span * (len(_SPARK) - 1))] for v in values)


def decision_label(decision: str, modifications: dict[str, Any] | None, reason: str | None) -> Text:
    """``APPROVED`` / ``MODIFIED (wait 5s)`` / ``DEFERRED (until …)`` / ``SWITCH (to …)`` /
    ``DENIED (reason)``, coloured by outcome — the same words the TUI's activity stream uses."""
    style = DECISION_STYLE.get(decision, "")
    if decision == "deny_with_reason":
        return Text(f"DENIED ({reason})" if reason else "DENIED", style=style)
    if decision != "approve_with_modifications":
        return Text("APPROVED", style=style)
    mods = modifications or {}
    if mods.get("identity_switch"):
        return Text(f"SWITCH (to {mods['identity_switch']})", style=style)
    if mods.get("defer_until"):
        return Text(f"DEFERRED (until {fmt_clock(mods['defer_until'])})", style=style)
    return Text(f"MODIFIED (wait {fmt_duration(mods.get('wait_seconds') or 0)})", style=style)
