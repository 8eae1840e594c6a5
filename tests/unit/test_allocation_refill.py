"""The allocation on a token bucket (LLM limits): what a call lacks, it waits to refill."""

from __future__ import annotations

import pytest

from ratelord.engine.allocation import allocate
from ratelord.engine.forecast import note
from ratelord.engine.state import PoolState


def bucket(now: float, remaining: float) -> PoolState:
    """4,000 tokens refilling over 15 s (≈ 267 a second), some unseen use noted."""
    pool = PoolState(
        pool_id="openai:tokens@gpt-4o-mini:org",
        provider_id="openai",
        resource="tokens@gpt-4o-mini",
        principal="org",
        limit=4000.0,
        remaining=remaining,
        observed_remaining=remaining,
        window="refill",
        window_seconds=15.0,
        refill_rate=4000.0 / 15.0,
        level_ts=now,
        observation_gap=1.0,
    )
    note(pool.unseen, 12.0, now - 5.0)
    return pool


def test_a_call_the_headroom_leaves_short_waits_for_the_refill_not_for_a_full_bucket() -> None:
    """142 tokens left, a call of 140, headroom kept for unseen use: 0.1 s of refill.

    Read as a window's pool, the call was told to come back when the bucket would
    be full again (15 s): a loaded CI run of the openai example took 19 s for 14.
    """
    now = 1_000.0
    pool = bucket(now, 142.0)
    seconds_to_full = (4000.0 - 142.0) / pool.refill_rate
    allocation = allocate(pool, now, 140.0, seconds_to_full, window_seconds=15.0)
    assert allocation.headroom > 2.0
    assert allocation.fits
    lacking = 140.0 - allocation.budget
    assert allocation.wait == pytest.approx(lacking / pool.refill_rate)
    assert allocation.wait < 0.5


def test_a_call_larger_than_the_bucket_less_its_headroom_is_not_told_to_wait() -> None:
    now = 1_000.0
    pool = bucket(now, 3_990.0)
    allocation = allocate(pool, now, 3_999.5, 0.04, window_seconds=15.0)
    assert allocation.headroom + allocation.reserve > 0.5
    assert not allocation.fits
