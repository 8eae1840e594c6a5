"""How numbers, durations and times read on the dashboard: short, and never raising."""

from __future__ import annotations

import math
from datetime import datetime

#: Durations beyond this many days read as ``>999d``: any further precision is noise.
MAX_DAYS = 999


def duration(seconds: float | None) -> str:
    """``None`` (infinite) → ``∞``; else the two largest units: ``45s``, ``3m05s``, ``2h10m``."""
    if seconds is None or math.isinf(seconds):
        return "∞"
    if seconds >= MAX_DAYS * 86_400:
        return f">{MAX_DAYS}d"
    total = max(0, round(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def quantity(value: float | None) -> str:
    """Budget amounts: integers stay exact up to 99,999, then ``k``/``M``; unknown is ``?``."""
    if value is None:
        return "?"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.1f}M"
    if magnitude >= 1e5:
        return f"{value / 1e3:.0f}k"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.1f}"


def rate(per_second: float) -> str:
    """A burn rate in the unit that keeps it readable: ``3.2/s`` or ``4.0/min``."""
    if per_second <= 0:
        return "0"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    return f"{per_second * 60:.1f}/min"


def percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def clock_time(epoch: float) -> str:
    """Local wall-clock time of an instant, ``HH:MM:SS``."""
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def epoch(iso_text: str | None) -> float | None:
    """RFC 3339 text from the daemon (``...Z``) to epoch seconds; ``None`` if absent or invalid."""
    if not iso_text:
        return None
    try:
        return datetime.fromisoformat(iso_text).timestamp()
    except ValueError:
        return None


def seconds_until(iso_text: str | None, now: float) -> float | None:
    instant = epoch(iso_text)
    return None if instant is None else max(0.0, instant - now)
