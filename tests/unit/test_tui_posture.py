from __future__ import annotations

from ratelord.schema import Identity
from ratelord.tui.posture import max_risk, tightest_pool, worst
from tests.unit.test_tui_cone import pool


def identity(pools: list[str]) -> Identity:
    return Identity(
        identity_id="id-a",
        kind="token",
        provider_id="mock",
        principal="acct-1",
        scope_id="sentinel:global",
        labels={},
        status="active",
        pools=pools,
        registered_at="2026-01-01T00:00:00Z",
    )


def test_worst_posture_wins_and_no_pools_is_ok() -> None:
    assert worst([]) == "OK"
    assert worst(["OK", "CRIT", "WARN"]) == "CRIT"
    assert worst(["OK", "WARN"]) == "WARN"


def test_tightest_pool_prefers_worse_posture_then_less_left() -> None:
    roomy = pool(remaining=90.0, pool_id="p:roomy")
    tight = pool(remaining=30.0, pool_id="p:tight")
    warned = pool(remaining=60.0, pool_id="p:warn", status="WARN")
    pools = {p.pool_id: p for p in (roomy, tight, warned)}
    assert tightest_pool(identity(["p:roomy", "p:tight"]), pools) is tight
    assert tightest_pool(identity(["p:roomy", "p:tight", "p:warn"]), pools) is warned
    assert tightest_pool(identity(["p:unknown"]), pools) is None


def test_max_risk_ignores_pools_without_forecast() -> None:
    assert max_risk([pool(forecast=None)]) == 0.0
    risky = pool()
    assert risky.forecast is not None
    risky.forecast.p_exhaustion = 0.42
    assert max_risk([pool(), risky]) == 0.42
