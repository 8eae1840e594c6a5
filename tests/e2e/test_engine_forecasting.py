"""The real ``ratelord-d`` polling the mock provider: observations, drift, forecasts (issue 3).

Pools are small and windows short, the mock is polled every second, and every
wait is on a condition (:func:`wait_for`), never a fixed sleep.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.daemon import RunningDaemon, events, pool, register, wait_for

pytestmark = pytest.mark.e2e

Factory = Callable[..., RunningDaemon]
POOL = "mock:requests:acct-1"

#: Approve everything the physical floor allows, so intents are charged and
#: forecasts move with them (the built-in policy would defer or pace them).
PERMISSIVE = """
policies:
  - id: permissive
    target: global
    kind: soft
    rules:
      - name: refuse-absurd
        when: 'intent.cost > 1000000.0'
        action: deny
"""


def mock_config(**pool_settings: Any) -> dict[str, Any]:
    requests = {"limit": 1000, "window_seconds": 3600, **pool_settings}
    return {
        "providers": {
            "mock": {
                "poll_interval_seconds": 1,
                "principals": {
                    "acct-1": {"pools": {"requests": requests}},
                    "acct-2": {"pools": {"requests": dict(requests)}},
                },
            }
        }
    }


def polled(http: httpx.Client, pool_id: str = POOL) -> dict[str, Any]:
    return wait_for(lambda: pool(http, pool_id), timeout=5, what=f"first poll of {pool_id}")


def spend(http: httpx.Client, cost: float, identity: str = "id-a", agent: str = "a") -> Any:
    body = {"agent_id": agent, "identity_id": identity, "resource": "requests", "cost": cost}
    decision = http.post("/v1/intent", json=body).json()
    assert decision["decision"] != "deny_with_reason", decision
    return decision


def forecasts(http: httpx.Client, pool_id: str = POOL, after: int = 0) -> list[dict[str, Any]]:
    return [e for e in events(http, type="forecast_computed", pool_id=pool_id) if e["seq"] > after]


# ------------------------------------------------------------------ D-07


@pytest.mark.acceptance("D-07")
def test_a_registered_identity_is_polled_within_5_s_and_observations_are_logged(
    daemon_factory: Factory,
) -> None:
    d = daemon_factory(config=mock_config())
    with d.client() as http:
        register(http, "id-a", "acct-1")
        polled(http)
        registered = events(http, type="identity_registered")[0]
        poll = events(http, type="provider_poll_observed", identity_id="id-a")[0]
        kinds = {e["event_type"] for e in events(http, identity_id="id-a")}
    assert poll["ts_event"] - registered["ts_event"] < 5.0
    assert {"constraint_observed", "usage_observed"} <= kinds
    assert poll["source"]["origin_kind"] == "provider"


# ------------------------------------------------------------------ P-01, P-03
# (P-02 and P-04 wait for windows and drift: in process on a manual clock,
# tests/unit/test_forecasting_inprocess.py)


@pytest.mark.acceptance("P-01")
def test_rising_usage_emits_forecasts_with_falling_p50_tte(daemon_factory: Factory) -> None:
    d = daemon_factory(config=mock_config(), policy=PERMISSIVE)
    with d.client() as http:
        register(http, "id-a", "acct-1")
        polled(http)
        start = http.get("/v1/health").json()["high_water_seq"]
        for _ in range(6):
            spend(http, 40)
        p50 = [f["payload"]["tte_p50_seconds"] for f in forecasts(http, after=start)]
    finite = [v for v in p50 if v is not None]
    assert len(finite) >= 3, p50
    assert all(later < earlier for earlier, later in itertools.pairwise(finite)), finite


@pytest.mark.acceptance("P-03")
def test_usage_behind_ratelords_back_is_drift_on_the_next_poll_and_state_snaps(
    daemon_factory: Factory,
) -> None:
    d = daemon_factory(config=mock_config())
    with d.client() as http:
        register(http, "id-a", "acct-1")
        assert polled(http)["remaining"] == 1000
        mark = http.get("/v1/health").json()["high_water_seq"]
        injected = http.post(
            "/v1/admin/mock/external-usage",
            json={"principal": "acct-1", "resource": "requests", "amount": 250},
        )
        assert injected.status_code == 200, injected.text
        drift = wait_for(
            lambda: [e for e in events(http, type="drift_detected", pool_id=POOL)],
            timeout=3,
            what="drift_detected",
        )
        polls = [
            e for e in events(http, type="provider_poll_observed", identity_id="id-a")
            if e["seq"] > mark
        ]  # fmt: skip
        snapped = pool(http, POOL)
    assert drift[0]["seq"] > mark
    assert drift[0]["correlation_id"] == polls[0]["correlation_id"], "not the next poll"
    payload = drift[0]["payload"]
    assert payload["expected"] == 1000
    assert payload["observed"] == math.floor(injected.json()["remaining"]) == 750
    assert snapped is not None and snapped["remaining"] == 750
    assert snapped["drift_count"] >= 1


# ------------------------------------------------------------------ C-01, C-02, explain


@pytest.mark.acceptance("C-01")
def test_two_agents_on_one_identity_share_a_budget(daemon_factory: Factory) -> None:
    d = daemon_factory(config=mock_config(), policy=PERMISSIVE)
    with d.client() as http:
        register(http, "id-a", "acct-1")
        polled(http)
        for _ in range(3):
            spend(http, 50, agent="agent-a")
        seen_by_b = spend(http, 1, agent="agent-b")["evaluation"]["pools"][0]
        shared = pool(http, POOL)
    assert seen_by_b["pool_id"] == POOL
    assert seen_by_b["remaining"] == 1000 - 150
    assert shared is not None and shared["remaining"] == 1000 - 151


@pytest.mark.acceptance("C-02")
def test_identities_with_different_principals_are_isolated(daemon_factory: Factory) -> None:
    d = daemon_factory(config=mock_config(), policy=PERMISSIVE)
    with d.client() as http:
        register(http, "id-a", "acct-1")
        register(http, "id-b", "acct-2")
        polled(http)
        polled(http, "mock:requests:acct-2")
        for _ in range(3):
            spend(http, 50, identity="id-a", agent="agent-a")
        seen_by_b = spend(http, 1, identity="id-b", agent="agent-b")["evaluation"]["pools"][0]
        mine = pool(http, POOL)
    assert seen_by_b["pool_id"] == "mock:requests:acct-2"
    assert seen_by_b["remaining"] == 1000
    assert mine is not None and mine["remaining"] == 850


def test_explain_says_why_identities_share_a_pool_or_not(daemon_factory: Factory) -> None:
    d = daemon_factory(config=mock_config())
    with d.client() as http:
        register(http, "id-a", "acct-1")
        register(http, "id-a2", "acct-1")
        register(http, "id-b", "acct-2")
        polled(http)
        polled(http, "mock:requests:acct-2")
        same = http.get("/v1/graph/explain", params={"a": "id-a", "b": "id-a2"}).json()
        other = http.get("/v1/graph/explain", params={"a": "id-a", "b": "id-b"}).json()
        unknown = http.get("/v1/graph/explain", params={"a": "id-a", "b": "ghost"})
        missing = http.get("/v1/graph/explain", params={"a": "id-a"})
        members = pool(http, POOL)
    assert same["shared"] is True and same["shared_pools"] == [POOL]
    assert "acct-1" in same["explanation"]
    assert other["shared"] is False and other["shared_pools"] == []
    assert "acct-1" in other["explanation"] and "acct-2" in other["explanation"]
    assert members is not None and sorted(members["members"]) == ["id-a", "id-a2"]
    assert unknown.status_code == 404
    assert missing.status_code == 400


# ------------------------------------------------------------------ health


def test_health_is_degraded_with_a_reason_while_the_provider_fails_then_ok(
    daemon_factory: Factory,
) -> None:
    d = daemon_factory(config=mock_config())
    with d.client() as http:
        register(http, "id-a", "acct-1")
        polled(http)
        injected = http.post("/v1/admin/mock/fail", json={"kind": "server", "count": 2})
        assert injected.status_code == 200

        def health_is(status: str) -> dict[str, Any] | None:
            health = http.get("/v1/health").json()
            return health if health["status"] == status else None

        degraded = wait_for(lambda: health_is("degraded"), timeout=4, what="degraded health")
        recovered = wait_for(lambda: health_is("ok"), timeout=10, what="recovery")
        errors = events(http, type="provider_error", identity_id="id-a")
    assert any("mock" in r and "id-a" in r for r in degraded["reasons"]), degraded
    assert recovered["reasons"] == []
    assert len(errors) == 2
