"""Injected time.  The engine asks a clock; the daemon gives it the wall clock,
tests and the simulator give it a :class:`ManualClock`."""

from __future__ import annotations

import functools
import math
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch, UTC."""
        ...


class ManualClock:
    """A clock that only moves when told to (tests, simulator)."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        self._now += seconds

    def set(self, instant: float) -> None:
        self._now = max(self._now, float(instant))


def iso(ts: float | None) -> str | None:
    """Epoch seconds as RFC 3339 UTC with millisecond precision (``...Z``).

    Every decision carries one, so the date and time of day are formatted once
    per second and cached.
    """
    if ts is None:
        return None
    seconds = math.floor(ts)
    micros = round((ts - seconds) * 1_000_000)  # as datetime rounds: to the microsecond
    if micros == 1_000_000:
        seconds, micros = seconds + 1, 0
    return f"{_second(seconds)}.{_MILLIS[micros // 1000]}Z"


#: ``f"{ms:03d}"`` of each millisecond: a lookup, not a formatting, per decision.
_MILLIS = [f"{ms:03d}" for ms in range(1000)]


@functools.lru_cache(maxsize=16)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def parse_iso(text: str) -> float:
    """RFC 3339 text to epoch seconds; naive times are taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
