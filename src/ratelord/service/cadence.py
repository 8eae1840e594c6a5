"""When to poll next: adaptive cadence after a success, jittered backoff after a failure.

Shared by the daemon's pollers and the simulator, so both poll on the same rules.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from ratelord.engine.state import PoolState, reset_grace

MIN_INTERVAL = 1.0
MAX_BACKOFF = 300.0
#: Poll more often the closer a pool is to trouble.
CADENCE = {"OK": 1.0, "WARN": 0.5, "CRIT": 0.25}
#: A reset is confirmed by a poll this long after it (beyond the lateness seen).
CONFIRM_AFTER_SECONDS = 1.0


def next_interval(base: float, pools: Iterable[PoolState], now: float) -> float:
    """Seconds to the next poll: sooner the closer a pool is to trouble, and just after a
    pool's announced reset (or again soon while an announced reset is overdue), so that
    a window is confirmed, and its limit learnt, when it starts rather than a poll later."""
    interval = base
    for pool in pools:
        interval = min(interval, base * CADENCE.get(pool.posture, 1.0))
        reset_at = pool.reset_at
        if pool.window != "fixed" or reset_at is None:
            continue
        if reset_at >= now:
            interval = min(interval, reset_at - now + pool.reset_lateness + CONFIRM_AFTER_SECONDS)
        elif now < reset_at + reset_grace(pool):
            interval = min(interval, CONFIRM_AFTER_SECONDS)
    return max(MIN_INTERVAL, interval)


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

    def succeeded(self, pools: Iterable[PoolState], now: float) -> float:
        """Seconds to the next poll after a good one, given its pools (see next_interval)."""
        self.failures = 0
        return next_interval(self.interval, pools, now)

    def failed(self, retry_after: float | None) -> float:
        """Seconds to the next poll after a failed one."""
        self.failures += 1
        return backoff(self.failures, retry_after, self._rng)
