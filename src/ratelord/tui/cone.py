"""Chart series of the pool detail: observed history and the forecast cone to the reset.

Burn quantiles follow the daemon's forecast model (normal burn): P50 is the mean burn rate,
P90 and P99 add 1.2816 and 2.3263 standard deviations.  Projected remaining at ``t`` seconds
from now is ``remaining − burn_q · t``, floored at zero, drawn until the reset.
"""

from __future__ import annotations

from dataclasses import dataclass

from ratelord.schema import HistoryPoint, Pool
from ratelord.tui.formatting import epoch

Z_SCORES: dict[str, float] = {"P50": 0.0, "P90": 1.2816, "P99": 2.3263}

#: Horizon of the cone when the pool's reset time is unknown.
DEFAULT_HORIZON_SECONDS = 3600.0


@dataclass(frozen=True)
class Series:
    label: str
    minutes: list[float]
    values: list[float]


def horizon_seconds(pool: Pool, now: float) -> float:
    """Seconds until the reset, else the window length, else an hour."""
    reset = epoch(pool.reset_at)
    if reset is not None and reset > now:
        return reset - now
    if pool.forecast is not None and pool.forecast.seconds_to_reset:
        return pool.forecast.seconds_to_reset
    return pool.window_seconds or DEFAULT_HORIZON_SECONDS


def forecast_cone(pool: Pool, now: float, steps: int = 40) -> list[Series]:
    """P50/P90/P99 projections of remaining from now to the horizon; empty without a forecast."""
    if pool.forecast is None or pool.remaining is None:
        return []
    horizon = horizon_seconds(pool, now)
    times = [horizon * i / steps for i in range(steps + 1)]
    burn, spread = pool.forecast.burn_rate, pool.forecast.burn_stddev
    return [
        Series(
            label,
            [t / 60 for t in times],
            [max(0.0, pool.remaining - max(0.0, burn + z * spread) * t) for t in times],
        )
        for label, z in Z_SCORES.items()
    ]


def history_series(points: list[HistoryPoint], now: float) -> Series:
    """Observed remaining, in minutes relative to now (negative = past)."""
    pairs = [(epoch(p.ts), p.remaining) for p in points]
    known = [(t, v) for t, v in pairs if t is not None]
    return Series("observed", [(t - now) / 60 for t, _ in known], [v for _, v in known])
