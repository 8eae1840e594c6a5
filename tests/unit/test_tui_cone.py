from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ratelord.schema import Forecast, HistoryPoint, Pool
from ratelord.tui.cone import forecast_cone, history_series, horizon_seconds
from ratelord.tui.formatting import epoch

NOW = epoch("2026-01-01T12:00:00Z") or 0.0


def pool(remaining: float = 80.0, burn: float = 0.01, stddev: float = 0.005, **kw: Any) -> Pool:
    fields: dict[str, Any] = {
        "pool_id": "mock:requests:acct-1",
        "provider_id": "mock",
        "resource": "requests",
        "principal": "acct-1",
        "unit": "requests",
        "limit": 100.0,
        "remaining": remaining,
        "used": 100.0 - remaining,
        "reset_at": "2026-01-01T13:00:00Z",
        "window": "fixed",
        "window_seconds": 3600.0,
        "members": ["id-a"],
        "status": "OK",
        "forecast": Forecast(
            tte_p50_seconds=None,
            tte_p90_seconds=None,
            tte_p99_seconds=None,
            p_exhaustion=0.0,
            margin_seconds=None,
            burn_rate=burn,
            burn_stddev=stddev,
            seconds_to_reset=3600.0,
            as_of="2026-01-01T12:00:00Z",
        ),
        "stale_seconds": 0.0,
    }
    fields.update(kw)
    return Pool(**fields)


def test_cone_runs_from_remaining_now_to_the_reset() -> None:
    cone = {series.label: series for series in forecast_cone(pool(), NOW)}
    assert list(cone) == ["P50", "P90", "P99"]
    for series in cone.values():
        assert series.minutes[0] == 0 and series.minutes[-1] == 60
        assert series.values[0] == 80
    # P50 burns 0.01/s: 36 spent by the reset.
    assert abs(cone["P50"].values[-1] - 44.0) < 1e-9
    # P99 burns 0.01 + 2.3263 * 0.005 per second.
    assert abs(cone["P99"].values[-1] - (80 - (0.01 + 2.3263 * 0.005) * 3600)) < 1e-9


@given(
    remaining=st.floats(0, 1e6),
    burn=st.floats(0, 100),
    stddev=st.floats(0, 100),
)
def test_cone_lines_never_cross_nor_go_below_zero(
    remaining: float, burn: float, stddev: float
) -> None:
    p50, p90, p99 = forecast_cone(pool(remaining, burn, stddev), NOW)
    for a, b, c in zip(p50.values, p90.values, p99.values, strict=True):
        assert a >= b >= c >= 0.0
    assert p50.values == sorted(p50.values, reverse=True)


def test_horizon_falls_back_to_the_window_when_the_reset_is_unknown() -> None:
    assert horizon_seconds(pool(), NOW) == 3600
    unknown = pool(reset_at=None, forecast=None, window_seconds=600.0)
    assert horizon_seconds(unknown, NOW) == 600
    assert forecast_cone(unknown, NOW) == []


def test_history_is_placed_in_minutes_before_now() -> None:
    points = [
        HistoryPoint(ts="2026-01-01T11:50:00Z", remaining=100.0),
        HistoryPoint(ts="garbage", remaining=1.0),
        HistoryPoint(ts="2026-01-01T11:59:00Z", remaining=90.0),
    ]
    series = history_series(points, NOW)
    assert series.minutes == [-10.0, -1.0]
    assert series.values == [100.0, 90.0]
