"""The allocation's edge cases, on a pool's projected state directly."""

from __future__ import annotations

from ratelord.engine.allocation import allocate
from ratelord.engine.forecast import RESET_SKEW
from ratelord.engine.state import PoolState


def test_the_last_budget_of_a_window_is_spent_in_that_window() -> None:
    """2 units left, 24 s to the reset, slots booked most of the way: one call of 2 fits.

    Its slot is the whole time to the reset; waiting its slot's length would land it
    after the reset, in the next window, and leave these 2 units unused.
    """
    now = 1_000.0
    pool = PoolState(
        pool_id="mock:requests:acct",
        provider_id="mock",
        resource="requests",
        principal="acct",
        limit=60.0,
        remaining=2.0,
        observed_remaining=60.0,
        reset_at=now + 23.0,
        window="fixed",
        window_seconds=60.0,
        paced_until=now + 15.0,
        demand_since=now - 18.0,
    )
    to_reset = 23.0 + RESET_SKEW
    allocation = allocate(pool, now, 2.0, to_reset, window_seconds=60.0, floor=False)
    assert allocation.fits
    assert now + allocation.wait < pool.reset_at


def test_a_raised_limit_is_spread_from_when_it_came_not_over_the_demand_s_age() -> None:
    """Demand has lasted 2,000 s; the limit was doubled 100 s ago: that budget is new.

    Spread over half the demand's age (1,000 s), a fifth of it is still unspent when the
    demand stops; spread from when it came (like a window's budget), it goes while the
    demand that is there can use it (stops seed 5: 9,049 units against 9,978).
    """
    now = 10_000.0
    pool = PoolState(
        pool_id="mock:requests:acct",
        provider_id="mock",
        resource="requests",
        principal="acct",
        limit=10_000.0,
        remaining=5_000.0,
        observed_remaining=5_000.0,
        reset_at=now + 1_500.0,
        window="fixed",
        window_seconds=3_600.0,
        paced_until=now,
        demand_since=now - 2_000.0,
        raised_at=now - 100.0,
    )
    allocation = allocate(pool, now, 1.0, 1_500.0, window_seconds=3_600.0, floor=False)
    assert allocation.horizon == 50.0  # half the 100 s since the raise
    pool.raised_at = None
    assert allocate(pool, now, 1.0, 1_500.0, window_seconds=3_600.0, floor=False).horizon == 1_000.0
