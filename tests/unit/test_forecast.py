"""Properties of the forecasting maths (SPEC §5)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from ratelord.engine.forecast import BurnState, ForecastInput, compute, observe, seconds_to_reset

NOW = 1_000_000.0
remaining_st = st.floats(min_value=1.0, max_value=1e6)
rate_st = st.floats(min_value=0.01, max_value=100.0)


def burning(rate: float, samples: int = 30, spacing: float = 1.0, jitter: float = 0.0) -> BurnState:
    """A pool that consumed ``rate`` units per second for ``samples`` seconds up to NOW."""
    state = BurnState()
    for i in range(samples):
        amount = rate * spacing * (1.0 + (jitter if i % 2 else -jitter))
        observe(state, amount, NOW - (samples - i) * spacing)
    return state


def pool(
    remaining: float, reset_in: float | None = 3600.0, observed_ago: float = 0.0, drift: float = 0.0
) -> ForecastInput:
    return ForecastInput(
        remaining=remaining,
        limit=max(remaining, 1.0) * 2,
        reset_at=None if reset_in is None else NOW + reset_in,
        window_seconds=3600.0,
        last_observed_at=NOW - observed_ago,
        drift=drift,
    )


@given(remaining_st, rate_st, st.floats(min_value=0.0, max_value=0.5))
def test_quantiles_are_ordered(remaining: float, rate: float, jitter: float) -> None:
    f = compute(burning(rate, jitter=jitter), pool(remaining), NOW)
    assert f.tte_p99 <= f.tte_p90 <= f.tte_p50


@given(remaining_st, remaining_st, rate_st)
def test_tte_grows_with_remaining(a: float, b: float, rate: float) -> None:
    low, high = sorted((a, b))
    burn = burning(rate)
    assert compute(burn, pool(low), NOW).tte_p50 <= compute(burn, pool(high), NOW).tte_p50


@given(remaining_st, rate_st, rate_st)
def test_tte_shrinks_with_burn(remaining: float, a: float, b: float) -> None:
    slow, fast = sorted((a, b))
    assert (
        compute(burning(fast), pool(remaining), NOW).tte_p50
        <= compute(burning(slow), pool(remaining), NOW).tte_p50
    )


@given(
    remaining_st,
    rate_st,
    st.floats(min_value=0, max_value=1e6),
    st.floats(min_value=0, max_value=1e6),
    st.one_of(st.none(), st.floats(1, 1e5)),
)
def test_p_exhaustion_is_a_probability_and_monotone_in_cost(
    remaining: float, rate: float, c1: float, c2: float, reset_in: float | None
) -> None:
    low, high = sorted((c1, c2))
    burn = burning(rate)
    p_low = compute(burn, pool(remaining, reset_in), NOW, cost=low).p_exhaustion
    p_high = compute(burn, pool(remaining, reset_in), NOW, cost=high).p_exhaustion
    assert 0.0 <= p_low <= p_high <= 1.0


@given(remaining_st, rate_st, st.floats(min_value=30, max_value=3000))
def test_staleness_shortens_p99(remaining: float, rate: float, stale: float) -> None:
    burn = burning(rate, jitter=0.2)
    fresh = compute(burn, pool(remaining), NOW)
    old = compute(burn, pool(remaining, observed_ago=stale), NOW)
    assert old.tte_p99 < fresh.tte_p99
    assert old.tte_p50 == fresh.tte_p50


@given(remaining_st, rate_st, st.floats(min_value=0.5, max_value=5))
def test_drift_shortens_p99(remaining: float, rate: float, drift: float) -> None:
    burn = burning(rate, jitter=0.2)
    calm = compute(burn, pool(remaining), NOW)
    drifting = compute(burn, pool(remaining, drift=drift), NOW)
    assert drifting.tte_p99 < calm.tte_p99


def test_edge_cases() -> None:
    assert compute(burning(5.0), pool(0.0), NOW).tte_p50 == 0.0
    idle = compute(BurnState(), pool(100.0), NOW)
    assert math.isinf(idle.tte_p50) and idle.p_exhaustion == 0.0
    assert compute(burning(5.0), pool(10.0), NOW, cost=11.0).p_exhaustion == 1.0
    unknown_reset = compute(burning(5.0), pool(1e6, reset_in=None), NOW)
    assert unknown_reset.seconds_to_reset == 3600.0  # the window stands in for the reset


def test_a_reset_lifts_tte() -> None:
    burn = burning(2.0)
    before = compute(burn, pool(50.0, reset_in=5.0), NOW)
    after = compute(burn, pool(5000.0, reset_in=3600.0), NOW + 10)
    assert after.tte_p50 > before.tte_p50 * 10


def test_silence_decays_the_burn() -> None:
    burn = burning(5.0)
    busy = compute(burn, pool(1000.0), NOW)
    quiet = compute(burn, pool(1000.0), NOW + 3600)
    assert quiet.burn_mean < busy.burn_mean / 5
    assert quiet.tte_p50 > busy.tte_p50


def test_past_fixed_reset_rolls_forward_by_windows() -> None:
    assert seconds_to_reset(NOW - 100, 3600.0, NOW) == 3500.0 + 1.0
    assert seconds_to_reset(None, None, NOW) is None


def test_rising_usage_shortens_p50() -> None:
    state = burning(1.0)
    first = compute(state, pool(1000.0), NOW).tte_p50
    for i in range(30):
        observe(state, 10.0, NOW + i)
    assert compute(state, pool(1000.0), NOW + 30).tte_p50 < first
