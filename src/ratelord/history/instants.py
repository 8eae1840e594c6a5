"""Instants as people write them: ``24h`` (ago), ``2026-11-27T10:00:00Z``, epoch seconds."""

from __future__ import annotations

import re

from ratelord.engine.clock import parse_iso

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


class BadInstant(ValueError):
    pass


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` → seconds."""
    found = _RELATIVE.match(text)
    if found is None:
        raise BadInstant(f"{text!r} is not a duration; write e.g. 15m, 24h or 7d")
    return float(found.group(1)) * _UNITS[found.group(2)]


def parse_instant(text: str, now: float) -> float:
    """A duration means that long before ``now``; ``now`` is now; else RFC 3339 or epoch."""
    text = text.strip()
    if text == "now":
        return now
    if _RELATIVE.match(text):
        return now - parse_duration(text)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_iso(text)
    except ValueError:
        raise BadInstant(
            f"{text!r} is not an instant; write now, a duration ago (24h, 7d), "
            "RFC 3339 (2026-11-27T10:00:00Z) or epoch seconds"
        ) from None
