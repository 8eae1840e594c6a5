"""When to poll next: adaptive cadence after a success, jittered backoff after a failure.

Shared by the daemon's pollers and the simulator, so both poll on the same rules.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

MIN_INTERVAL = 1.0
MAX_BACKOFF = 300.0
#: Poll more often the closer a pool is to trouble.
CADENCE = {"OK": 1.0, "WARN": 0.5, "CRIT": 0.25}


def next_interval(base: float, postures: Iterable[str]) -> float:
    factor = min((CADENCE.get(p, 1.0) for p in postures), default=1.0)
    return max(MIN_INTERVAL, base * factor)


def backoff(failures: int, retry_after: float | None, rng: random.Random) -> float:
    """Exponential backoff with ±20 % jitter; a provider's ``retry_after`` is a floor."""
    delay = min(MAX_BACKOFF, 2.0 ** min(max(0, failures - 1), 30)) * rng.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, 3600.0))
    return delay


class PollCadence:
    """One identity's polling rhythm: consecutive failures and the jitter's randomness."""

    def __init__(self, interval: float, rng: random.Random | None = None) -> None:
        self.interval = interval
        self.failures = 0
        self._rng = rng or random.Random()

    def succeeded(self, postures: Iterable[str]) -> float:
        """Seconds to the next poll after a good one, given the postures of its pools."""
        self.failures = 0
        return next_interval(self.interval, postures)

    def failed(self, retry_after: float | None) -> float:
        """Seconds to the next poll after a failed one."""
        self.failures += 1
        return backoff(self.failures, retry_after, self._rng)
