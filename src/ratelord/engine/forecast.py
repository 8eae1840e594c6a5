"""Burn-rate estimation and time-to-exhaustion forecasting (SPEC §5).

The model, per pool:

* Consumption arrives as samples ``(amount, ts)``.  Two exponentially
  decaying rate estimators (fast ≈ 1 min and slow ≈ 15 min half-lives) turn
  them into units per second; silence decays both towards zero.
* The burn mean is the larger of the two (react to a surge at once, remember
  a steady load); its spread is an exponentially weighted variance of the
  fast estimator around the slow one, floored by a cold-start prior while
  there are few samples.
* Staleness (time since the provider last confirmed the pool) and recent
  drift (consumption ratelord did not see) inflate the spread: the less we
  know, the earlier P99 says the pool runs dry.
* ``TTE_q = remaining / B_q`` with ``B_q = mean + z_q·σ``; consumption until
  the reset ``T`` is Normal(B·T, (σ·T)²) and ``p_exhaustion`` is the chance it
  exceeds what remains.

Everything here is a pure function of its arguments; ``now`` is passed in.
"""

from __future__ import annotations

import math

import msgspec

MODEL_ID = "ema-normal/1"

Z_P90 = 1.2816
Z_P99 = 2.3263
FAST_HALF_LIFE = 60.0
SLOW_HALF_LIFE = 900.0
COLD_START_SAMPLES = 5
#: Staleness at which the spread grows by one burn mean (seconds).
STALENESS_SCALE = 300.0
#: How quickly the memory of a drift fades (half-life, seconds).
DRIFT_HALF_LIFE = 900.0
#: Added to the time to reset: resets are observed late, clocks disagree.
RESET_SKEW = 1.0

_SQRT2 = math.sqrt(2.0)
_LN2 = math.log(2.0)
_TAU_FAST = FAST_HALF_LIFE / _LN2
_TAU_SLOW = SLOW_HALF_LIFE / _LN2
#: Chunk rates are read as if watched at least this long (see Arrivals.since).
MIN_WATCH_SECONDS = 60.0


class BurnState(msgspec.Struct, kw_only=True):
    """Running burn estimate of one pool.  Updated only through :func:`observe`."""

    fast: float = 0.0
    slow: float = 0.0
    variance: float = 0.0
    last_ts: float | None = None
    samples: int = 0
    total: float = 0.0


def observe(state: BurnState, amount: float, ts: float) -> None:
    """Fold ``amount`` units consumed at ``ts`` into ``state`` (in place)."""
    if amount <= 0:
        return
    last = state.last_ts
    if last is not None and ts > last:  # silence since the last sample decays both rates
        dt = ts - last
        state.fast *= math.exp(-dt / _TAU_FAST)
        state.slow *= math.exp(-dt / _TAU_SLOW)
    state.fast += amount / _TAU_FAST
    state.slow += amount / _TAU_SLOW
    deviation = state.fast - state.slow
    weight = 1.0 / (state.samples + 1 if state.samples < 20 else 20)
    state.variance = (1.0 - weight) * state.variance + weight * deviation * deviation
    state.last_ts = last if last is not None and last > ts else ts
    state.samples += 1
    state.total += amount


def burn_at(state: BurnState, now: float) -> tuple[float, float]:
    """The (mean, σ) burn rate in units/s as of ``now``, before inflation."""
    fast, slow = state.fast, state.slow
    if state.last_ts is not None and now > state.last_ts:
        dt = now - state.last_ts
        fast *= math.exp(-dt / _TAU_FAST)
        slow *= math.exp(-dt / _TAU_SLOW)
    mean = slow if slow > fast else fast
    sigma = math.sqrt(state.variance)
    if state.samples < COLD_START_SAMPLES:
        # Conservative prior: with few samples the rate could be twice what we saw.
        sigma = max(sigma, mean)
    return mean, sigma


def drift_weight(drift_score: float, drift_ts: float | None, now: float) -> float:
    """A drift score that halves every :data:`DRIFT_HALF_LIFE` seconds."""
    if drift_ts is None or drift_score <= 0:
        return 0.0
    return drift_score * 0.5 ** (max(0.0, now - drift_ts) / DRIFT_HALF_LIFE)


class Arrivals(msgspec.Struct, kw_only=True):
    """Consumption that comes in chunks (a cron job's burst, an urgent call), as a
    compound Poisson process: how often chunks come and how big they are.

    Updated only through :func:`note`; read through :func:`chunk_quantile`.
    """

    rate: float = 0.0  # chunks per second, decaying (SLOW_HALF_LIFE)
    fast: float = 0.0  # the same, decaying quickly (FAST_HALF_LIFE): chunks that start coming
    size: float = 0.0  # mean chunk size (exponentially weighted)
    size_sq: float = 0.0  # mean squared chunk size
    peak: float = 0.0  # the largest recent chunk, decaying
    last_ts: float | None = None
    count: int = 0
    #: When watching began (the pool was first seen): the decaying rates have seen only
    #: this long, and are scaled up to match (a rate watched for a minute is not a
    #: fifteen-minute average).  None: counted as watched for ever.
    since: float | None = None


def note(arrivals: Arrivals, amount: float, ts: float) -> None:
    """Fold one chunk of ``amount`` units seen at ``ts`` into ``arrivals`` (in place)."""
    if amount <= 0:
        return
    if arrivals.last_ts is not None and ts > arrivals.last_ts:
        decay = math.exp(-(ts - arrivals.last_ts) / _TAU_SLOW)
        arrivals.rate *= decay
        arrivals.peak *= decay
        arrivals.fast *= math.exp(-(ts - arrivals.last_ts) / _TAU_FAST)
    arrivals.rate += 1.0 / _TAU_SLOW
    arrivals.fast += 1.0 / _TAU_FAST
    weight = 1.0 / min(arrivals.count + 1, 20)
    arrivals.size += weight * (amount - arrivals.size)
    arrivals.size_sq += weight * (amount * amount - arrivals.size_sq)
    arrivals.peak = max(arrivals.peak, amount)
    arrivals.last_ts = ts if arrivals.last_ts is None else max(ts, arrivals.last_ts)
    arrivals.count += 1


def chunk_quantile(arrivals: Arrivals, now: float, horizon: float, z: float, tail: float) -> float:
    """Units that arrive within ``horizon`` seconds at the quantile of normal score ``z``.

    The sum of a compound Poisson process, by its mean and variance; while at
    least one chunk is more likely than ``tail`` to come, at least one chunk
    as large as the largest recent one.
    """
    if arrivals.count == 0 or horizon <= 0:
        return 0.0
    rate, peak, fast = arrivals.rate, arrivals.peak, arrivals.fast
    if arrivals.last_ts is not None and now > arrivals.last_ts:
        decay = math.exp(-(now - arrivals.last_ts) / _TAU_SLOW)
        rate *= decay
        peak *= decay
        fast *= math.exp(-(now - arrivals.last_ts) / _TAU_FAST)
    if arrivals.since is not None:
        # A decaying sum started at zero: after watching w seconds it holds only
        # 1 − e^(−w/τ) of the rate's weight (a minute at least, so one early chunk
        # is not read as a chunk a second).
        watched = max(now - arrivals.since, MIN_WATCH_SECONDS)
        rate /= -math.expm1(-watched / _TAU_SLOW)
        fast /= -math.expm1(-watched / _TAU_FAST)
    # Chunks that have just started to come count at their recent rate for about as long
    # as that rate is remembered, then at the long-run rate.
    expected = rate * horizon + max(0.0, fast - rate) * min(horizon, _TAU_FAST)
    if expected <= 0:
        return 0.0
    units = expected * arrivals.size + z * math.sqrt(expected * arrivals.size_sq)
    if -math.expm1(-expected) > tail:  # P(at least one chunk) = 1 − e^(−λT)
        units = max(units, peak)
    return units


class ForecastSnapshot(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """A pool's forecast as logged in ``forecast_computed`` and kept in its projection.

    Durations are ``None`` where infinite (JSON has no infinity).
    """

    remaining: float
    tte_p50_seconds: float | None
    tte_p90_seconds: float | None
    tte_p99_seconds: float | None
    p_exhaustion: float
    margin_seconds: float | None
    burn_rate: float
    burn_stddev: float
    seconds_to_reset: float | None
    as_of: float
    cold_start: bool = False
    model: str = MODEL_ID


class ForecastInput(msgspec.Struct, frozen=True, gc=False):
    """What the forecaster needs to know about one pool at ``now``."""

    remaining: float
    limit: float | None
    reset_at: float | None
    window_seconds: float | None
    last_observed_at: float | None
    drift: float = 0.0  # decayed drift score (see drift_weight)
    #: A refilling pool's refill (units/s): it offsets the burn until the horizon.
    refill_rate: float = 0.0
    #: Seconds past an announced reset before it is counted on unconfirmed (resets come late).
    reset_grace: float = 0.0


class ForecastResult(msgspec.Struct, frozen=True, gc=False):
    tte_p50: float  # math.inf when nothing burns
    tte_p90: float
    tte_p99: float
    p_exhaustion: float
    seconds_to_reset: float | None
    burn_mean: float
    burn_sigma: float
    cold_start: bool

    @property
    def margin(self) -> float:
        """``TTE_P99 − T``; infinite when nothing burns or the reset is unknown."""
        if self.seconds_to_reset is None:
            return -math.inf if self.burn_mean > 0 else math.inf
        return self.tte_p99 - self.seconds_to_reset


#: A reset the provider announced, whose time has passed while it still reports the old
#: window, is late: it is expected soon (at first within this many seconds, then within as
#: long as it is overdue), not a whole window later.
LATE_RESET_SECONDS = 2.0


def seconds_to_reset(
    reset_at: float | None,
    window_seconds: float | None,
    now: float,
    observed_at: float | None = None,
    grace: float = 0.0,
) -> float | None:
    """Time until the next plausible reset, rolling a past fixed reset forward by whole windows.

    If the reset is less than ``grace`` seconds overdue and unconfirmed, or the
    provider's last word (``observed_at``), less than ``grace`` seconds ago, came
    after it and still announced it, the reset is late, and imminent.
    """
    if reset_at is None:
        return window_seconds
    if (
        reset_at < now
        and window_seconds
        and now - reset_at < window_seconds
        and (
            now < reset_at + grace
            or (observed_at is not None and reset_at <= observed_at and now - observed_at < grace)
        )
    ):
        return max(LATE_RESET_SECONDS, now - reset_at)  # look again later and later
    if reset_at < now and window_seconds:
        periods = math.ceil((now - reset_at) / window_seconds)
        reset_at += periods * window_seconds
    left = reset_at - now
    return (left if left > 0.0 else 0.0) + RESET_SKEW


def compute(burn: BurnState, pool: ForecastInput, now: float, cost: float = 0.0) -> ForecastResult:
    """Forecast ``pool`` at ``now``; ``cost`` is spent first (the with-intent variant)."""
    return compute_pair(burn, pool, now, cost)[1]


def _inflated(burn: BurnState, pool: ForecastInput, now: float) -> tuple[float, float]:
    """Burn (mean, σ), the spread widened by staleness and recent drift."""
    mean, sigma = burn_at(burn, now)
    observed = pool.last_observed_at
    staleness = 0.0 if observed is None else now - observed
    stale = staleness / STALENESS_SCALE if staleness > 0.0 else 0.0
    inflation = (stale if stale < 3.0 else 3.0) + 0.5 * pool.drift
    if inflation > 0 and mean > 0:
        sigma = math.sqrt(sigma * sigma + (mean * inflation) ** 2)
    return mean, sigma


def compute_pair(
    burn: BurnState,
    pool: ForecastInput,
    now: float,
    cost: float,
    unseen: BurnState | None = None,
) -> tuple[ForecastResult, ForecastResult]:
    """The forecast without and with ``cost`` spent first, sharing the burn estimate.

    With ``unseen`` (the burn ratelord did not approve), the risk of exhaustion
    counts only that: what ratelord approves it also paces, so its own demand
    cannot run the pool dry; a burst of approved work is not a burn that will last.
    Without it, the risk counts the whole burn.
    """
    mean, sigma = _inflated(burn, pool, now)
    if unseen is None:
        risk_mean, risk_sigma = mean, sigma
    elif unseen.samples == 0:
        risk_mean, risk_sigma = 0.0, 0.0  # nothing unseen yet: no risk from it
    else:
        risk_mean, risk_sigma = _inflated(unseen, pool, now)
    risk_net = risk_mean - pool.refill_rate
    horizon = seconds_to_reset(
        pool.reset_at, pool.window_seconds, now, pool.last_observed_at, pool.reset_grace
    )
    cold = burn.samples < COLD_START_SAMPLES
    net = mean - pool.refill_rate
    base = _result(pool.remaining, 0.0, net, sigma, risk_net, risk_sigma, horizon, mean, cold)
    if cost == 0:
        return base, base
    return base, _result(
        pool.remaining, cost, net, sigma, risk_net, risk_sigma, horizon, mean, cold
    )


def _result(
    before: float,
    spent: float,
    net: float,
    sigma: float,
    risk_net: float,
    risk_sigma: float,
    horizon: float | None,
    mean: float,
    cold: bool,
) -> ForecastResult:
    """The forecast once ``spent`` of ``before`` remaining is gone (see :func:`compute_pair`)."""
    left = before - spent
    remaining = left if left > 0.0 else 0.0
    fits = before > 0 and spent <= before
    if remaining <= 0:
        tte_p50 = tte_p90 = tte_p99 = 0.0
    else:  # remaining ÷ the burn at each quantile, infinite when nothing burns
        p90, p99 = net + Z_P90 * sigma, net + Z_P99 * sigma
        tte_p50 = math.inf if net <= 0 else remaining / net
        tte_p90 = math.inf if p90 <= 0 else remaining / p90
        tte_p99 = math.inf if p99 <= 0 else remaining / p99
    return ForecastResult(
        tte_p50=tte_p50,
        tte_p90=tte_p90,
        tte_p99=tte_p99,
        p_exhaustion=_p_exhaustion(remaining, fits, risk_net, risk_sigma, horizon),
        seconds_to_reset=horizon,
        burn_mean=mean,
        burn_sigma=sigma,
        cold_start=cold,
    )


def _p_exhaustion(
    remaining: float, fits: bool, mean: float, sigma: float, horizon: float | None
) -> float:
    if not fits or remaining <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if horizon is None:
        return 1.0  # reset unknown and something burns: assume the worst
    expected = mean * horizon
    spread = sigma * horizon
    if spread <= 0:
        return 1.0 if expected >= remaining else 0.0
    # 1 − Φ(z) = erfc(z/√2)/2 (the standard normal's upper tail)
    return 0.5 * math.erfc((remaining - expected) / spread / _SQRT2)
