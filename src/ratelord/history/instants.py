"""Instants as people write them: ``24h`` (ago), ``2026-11-27T10:00:00Z``, epoch seconds."""

from __future__ import annotations

import re

from ratelord.engine.clock import parse_iso

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The grammar, shared with ``/openapi.json`` so the schema is exactly as strict as parsing.
_DURATION = r"[0-9]{1,9}(?:\.[0-9]+)?[smhdw]"
#: ``^…$`` of a duration alone, for JSON schemas.
DURATION_PATTERN = f"^{_DURATION}$"
_EPOCH = r"[0-9]{1,10}(?:\.[0-9]+)?"
#: RFC 3339 as JSON Schema's ``date-time`` reads it (a leap second reads as :59).
_RFC3339 = (
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt]"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
#: A bucket width: at least 300 s, in seconds or one unit (``300``, ``900s``, ``5m``, ``1h``).
_BUCKET = r"(?:[3-9][0-9]{2}|[1-9][0-9]{3,8})s?|(?:[5-9]|[1-9][0-9]{1,7})m|[1-9][0-9]{0,6}[hdw]"
_RELATIVE = re.compile(r"([0-9.]+)([smhdw]?)")
INSTANT_SCHEMA = {
    "anyOf": [
        {"type": "string", "enum": ["now"]},
        {"type": "string", "pattern": f"^{_DURATION}$"},
        {"type": "string", "pattern": f"^{_EPOCH}$"},
        {"type": "string", "format": "date-time"},
    ]
}
BUCKET_SCHEMA = {"type": "string", "pattern": f"^(?:{_BUCKET})$"}
MIN_BUCKET_SECONDS = 300


class BadInstant(ValueError):
    pass


def _seconds(text: str) -> float:
    found = _RELATIVE.fullmatch(text)
    assert found is not None
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``7d``, ``2w`` → seconds (a number and one unit)."""
    if re.fullmatch(_DURATION, text) is None:
        raise BadInstant(
            f"{text!r} is not a duration; write a number and a unit, e.g. 12h, 7d or 2w"
        )
    return _seconds(text)


def parse_bucket(text: str) -> int:
    """``300``, ``900s``, ``15m``, ``1h``, ``7d``, ``2w`` → seconds (at least 300)."""
    if re.fullmatch(_BUCKET, text) is None:
        raise BadInstant(
            f"{text!r} is not a bucket width of at least {MIN_BUCKET_SECONDS} s; write e.g. "
            "300, 15m, 1h or 1d"
        )
    return int(_seconds(text))


def parse_instant(text: str, now: float) -> float:
    """A duration means that long before ``now``; ``now`` is now; else RFC 3339 or epoch."""
    if text == "now":
        return now
    if re.fullmatch(_DURATION, text):
        return now - _seconds(text)
    if re.fullmatch(_EPOCH, text):
        return float(text)
    if re.fullmatch(_RFC3339, text):
        if text[17:19] == "60":
            text = f"{text[:17]}59{text[19:]}"
        try:
            return parse_iso(text.upper())
        except (ValueError, OverflowError):
            pass
    raise BadInstant(
        f"{text!r} is not an instant; write now, a duration ago (24h, 7d), "
        "RFC 3339 (2026-11-27T10:00:00Z) or epoch seconds"
    )
