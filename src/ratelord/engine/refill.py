"""Continuously refilling budgets (token buckets): OpenAI's and Anthropic's limits.

Such a pool has no reset: it holds at most ``limit`` and refills at
``rate = limit / window_seconds`` units per second (the window is the time to
refill from empty, a minute for RPM/TPM limits).  Its state is a *balance*
at an instant: ``remaining − shortfall`` at ``level_ts``, where the shortfall
is what approved calls owe beyond what was there (waiting calls are charged
when approved, so the balance can be negative).  Between events the balance
grows by the refill, up to the limit:

    balance(now) = min(limit, balance + rate · (now − level_ts))

A call of cost ``c`` fits once the balance reaches ``c``: it waits
``(c − balance(now)) / rate`` — exactly what the provider's own bucket does,
so paced calls meet no 429 and lose no throughput.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ratelord.engine.state import PoolState

#: Window kind of a refilling pool (see ``PoolObservation.window``).
REFILL = "refill"


def refills(pool: PoolState) -> bool:
    return pool.refill_rate > 0 and pool.limit is not None


def balance(pool: PoolState, now: float) -> float:
    """Units available at ``now`` (negative: owed by calls already approved)."""
    level = pool.remaining - pool.shortfall
    if refills(pool) and pool.level_ts is not None and now > pool.level_ts:
        assert pool.limit is not None
        level = min(pool.limit, level + pool.refill_rate * (now - pool.level_ts))
    return level


def wait_for(pool: PoolState, cost: float, now: float) -> float | None:
    """Seconds until ``cost`` fits; ``None`` when it never can (more than the limit)."""
    if pool.limit is not None and cost > pool.limit:
        return None
    return max(0.0, (cost - balance(pool, now)) / pool.refill_rate)


def seconds_to_full(pool: PoolState, now: float) -> float:
    """The refilling pool's horizon: when it would be full if nothing more were spent."""
    assert pool.limit is not None
    return max(0.0, pool.limit - balance(pool, now)) / pool.refill_rate


def debit(pool: PoolState, cost: float, ts: float) -> None:
    """Spend ``cost`` (negative: credit back) from the balance at ``ts``."""
    level = balance(pool, ts) - cost
    pool.remaining = max(0.0, level)
    pool.shortfall = max(0.0, -level)
    pool.level_ts = ts
