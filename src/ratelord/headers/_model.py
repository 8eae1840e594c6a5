"""The one shape every provider's rate-limit headers are parsed into, and the
small value readers the per-family parsers share.

Readers never raise: a malformed value is logged (logger ``ratelord.headers``)
and read as ``None``, because a provider's odd header must not break the
agent's request that carried it.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import msgspec

from ratelord.engine.clock import parse_iso

logger = logging.getLogger("ratelord.headers")

Family = Literal["github", "openai", "anthropic", "ietf"]

#: Longest header value quoted in a warning; rate-limit values are short.
_QUOTE_LIMIT = 80


class RateLimitObservation(msgspec.Struct, frozen=True, kw_only=True):
    """One budget as a response's headers describe it.

    ``reset_at`` is absolute epoch seconds (relative durations are turned into
    instants with the ``now`` the caller passed in); ``None`` fields were not
    sent or not understood.
    """

    family: Family
    bucket: str
    limit: float | None
    remaining: float
    used: float | None = None
    reset_at: float | None = None
    window_seconds: float | None = None
    unit: str = "requests"


def warn_malformed(name: str, value: str, why: str) -> None:
    """Log (never raise) that header ``name`` had a value we cannot use."""
    shown = value if len(value) <= _QUOTE_LIMIT else value[:_QUOTE_LIMIT] + "…"
    logger.warning("ignoring rate-limit header %s=%r: %s", name, shown, why)


def read_number(name: str, value: str) -> float | None:
    """A finite decimal number, or ``None`` with a warning."""
    try:
        number = float(value.strip())
    except ValueError:
        warn_malformed(name, value, "not a number")
        return None
    if not math.isfinite(number):
        warn_malformed(name, value, "not a finite number")
        return None
    return number


def read_count(name: str, value: str) -> float | None:
    """A non-negative number (limits, remaining, used), or ``None`` with a warning."""
    number = read_number(name, value)
    if number is not None and number < 0:
        warn_malformed(name, value, "negative")
        return None
    return number


def read_rfc3339(name: str, value: str) -> float | None:
    """An RFC 3339 timestamp as epoch seconds (naive means UTC), or ``None``."""
    try:
        return parse_iso(value.strip())
    except ValueError:
        warn_malformed(name, value, "not an RFC 3339 timestamp")
        return None


def unit_of(bucket: str) -> str:
    """``tokens`` for token buckets (``tokens``, ``input-tokens`` …), else ``requests``."""
    return "tokens" if "tokens" in bucket else "requests"
