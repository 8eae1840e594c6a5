"""Intent arbitration by the real ``ratelord-d`` under declarative policy (issue 4, SPEC §6-7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.daemon import RunningDaemon, events, pool, register, wait_for

pytestmark = pytest.mark.e2e

Factory = Callable[..., RunningDaemon]


def mock(principals: dict[str, dict[str, dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    """A config with the mock provider polled every second."""
    pools = {name: {"pools": spec} for name, spec in principals.items()}
    return {"providers": {"mock": {"poll_interval_seconds": 1, "principals": pools}}, **extra}


ONE_POOL = mock({"acct-1": {"requests": {"limit": 1000}}})


def ask(http: httpx.Client, **intent: Any) -> dict[str, Any]:
    body = {"agent_id": "agent", "identity_id": "id-a", "resource": "requests", "cost": 1}
    response = http.post("/v1/intent", json={**body, **intent})
    assert response.status_code == 200, response.text
    return dict(response.json())


def ready(http: httpx.Client, identities: dict[str, str]) -> None:
    """Register ``identity -> principal`` and wait until each one's pools are polled."""
    for identity, principal in identities.items():
        register(http, identity, principal)
    for identity in identities:
        wait_for(
            lambda i=identity: http.get(f"/v1/identities/{i}").json()["pools"],
            timeout=5,
            what=f"pools of {identity}",
        )


# ------------------------------------------------------------------


@pytest.mark.acceptance("A-01")
def test_a_safe_intent_is_approved_and_the_decision_logged(daemon_factory: Factory) -> None:
    d = daemon_factory(config=ONE_POOL)
    with d.client() as http:
        ready(http, {"id-a": "acct-1"})
        decision = ask(http)
        logged = {
            e["event_type"]: e for e in events(http) if e["correlation_id"] == decision["intent_id"]
        }
    assert decision["decision"] == "approve"
    assert decision["reason"] is None
    assert decision["evaluation"]["tightest_pool"] == "mock:requests:acct-1"
    assert logged["intent_decided"]["payload"]["decision"] == "approve"
    assert logged["intent_submitted"]["seq"] < logged["intent_decided"]["seq"]


SHAPE_POLICY = """
policies:
  - id: pacing
    target: pool:mock:*
    kind: soft
    rules:
      - name: pace-busy-pools
        when: 'pool.utilization > 0.2'
        action: shape
        reason: "pool {pool.id} is {pool.utilization:.0%} used: pacing"
      - name: fixed-pause
        when: 'intent.workload_id == "slow-lane"'
        action: shape
        params: {wait_seconds: 2.5}
"""


@pytest.mark.acceptance("A-03")
def test_a_shaping_rule_approves_with_a_wait(daemon_factory: Factory) -> None:
    config = mock({"acct-1": {"requests": {"limit": 1000, "remaining": 500}}})
    d = daemon_factory(config=config, policy=SHAPE_POLICY)
    with d.client() as http:
        ready(http, {"id-a": "acct-1"})
        paced = ask(http, cost=5)
        fixed = ask(http, workload_id="slow-lane", resource="requests", cost=1)
    assert paced["decision"] == "approve_with_modifications"
    assert paced["modifications"]["wait_seconds"] > 0
    assert paced["evaluation"]["rules_fired"] == ["pacing/pace-busy-pools"]
    assert "pacing/pace-busy-pools" in paced["reason"]
    assert fixed["decision"] == "approve_with_modifications"
    assert fixed["modifications"]["wait_seconds"] >= 2.5


HARD_DENY = """
policies:
  - id: caps
    target: global
    kind: hard
    rules:
      - name: no-big-spends
        when: 'intent.cost > 10.0'
        action: deny
        reason: "intents above 10 are refused (asked {intent.cost})"
"""


@pytest.mark.acceptance("A-04")
def test_a_hard_rule_denies_with_a_reason_naming_it(daemon_factory: Factory) -> None:
    d = daemon_factory(config=ONE_POOL, policy=HARD_DENY)
    with d.client() as http:
        ready(http, {"id-a": "acct-1"})
        small = ask(http, cost=3)
        big = ask(http, cost=50)
        triggered = events(http, type="policy_triggered")
        remaining = pool(http, "mock:requests:acct-1")
    assert small["decision"] == "approve"
    assert big["decision"] == "deny_with_reason"
    assert "caps/no-big-spends" in big["reason"]
    assert "intents above 10" in big["reason"]
    assert [t["payload"]["rule"] for t in triggered] == ["no-big-spends"]
    assert triggered[0]["payload"]["intent_id"] == big["intent_id"]
    assert remaining is not None and remaining["remaining"] == 1000 - 3  # a denial costs nothing


# ------------------------------------------------------------------ Pol-01, Pol-02

FLOOR_POLICY = """
policies:
  - id: reserve
    target: global
    kind: hard
    rules:
      - name: deny-below-100
        when: 'pool.remaining < 100.0'
        action: deny
        reason: "keeping the last 100 in reserve ({pool.remaining:.0f} left)"
"""


@pytest.mark.acceptance("Pol-01")
def test_deny_if_remaining_below_100_denies_at_90_citing_the_rule(
    daemon_factory: Factory,
) -> None:
    config = mock(
        {
            "low": {"requests": {"limit": 1000, "remaining": 90}},
            "high": {"requests": {"limit": 1000, "remaining": 500}},
        }
    )
    d = daemon_factory(config=config, policy=FLOOR_POLICY)
    with d.client() as http:
        ready(http, {"id-low": "low", "id-high": "high"})
        low = ask(http, identity_id="id-low")
        high = ask(http, identity_id="id-high")
    assert low["decision"] == "deny_with_reason"
    assert "reserve/deny-below-100" in low["reason"]
    assert "90 left" in low["reason"]
    assert low["evaluation"]["pools"][0]["remaining"] == 90
    assert high["decision"] == "approve"


@pytest.mark.acceptance("Pol-02")
def test_under_high_risk_background_is_denied_and_high_urgency_approved(
    daemon_factory: Factory,
) -> None:
    hot = {"limit": 1000, "remaining": 600, "burn_per_second": 15}
    d = daemon_factory(config=mock({"acct-1": {"requests": hot}}))
    with d.client() as http:
        ready(http, {"id-a": "acct-1"})

        def risky() -> bool:
            view = pool(http, "mock:requests:acct-1")
            forecast = view and view["forecast"]
            return bool(forecast and forecast["p_exhaustion"] > 0.5)

        wait_for(risky, timeout=8, what="a high-risk forecast")
        background = ask(http, urgency="background")
        high = ask(http, urgency="high")
    assert background["decision"] == "deny_with_reason"
    assert "builtin-shaping/deny-background-when-critical" in background["reason"]
    assert high["decision"] == "approve"
    assert high["evaluation"]["p_exhaustion"] > 0.5


# ------------------------------------------------------------------ workloads, switch_identity


def test_a_two_pool_workload_is_held_back_when_only_search_is_critical(
    daemon_factory: Factory,
) -> None:
    pools = {
        "search": {"limit": 30, "remaining": 2, "window_seconds": 60, "burn_per_second": 0.5},
        "core": {"limit": 5000},
    }
    config = mock({"acct-1": pools}, workloads={"search_and_hydrate": {"search": 1, "core": 10}})
    d = daemon_factory(config=config)
    with d.client() as http:
        ready(http, {"id-a": "acct-1"})
        wait_for(
            lambda: (pool(http, "mock:search:acct-1") or {}).get("status") == "CRIT",
            timeout=5,
            what="search CRIT",
        )
        both = ask(http, workload_id="search_and_hydrate", resource=None, cost=None)
        core_only = ask(http, resource="core", cost=10)
        core = pool(http, "mock:core:acct-1")
    assert core is not None and core["status"] == "OK"
    charged = {p["pool_id"]: p["cost"] for p in both["evaluation"]["pools"]}
    assert charged == {"mock:search:acct-1": 1, "mock:core:acct-1": 10}
    assert both["decision"] != "approve"
    assert both["modifications"]["wait_seconds"] > 0 or both["modifications"]["defer_until"]
    assert both["evaluation"]["tightest_pool"] == "mock:search:acct-1"
    assert "mock:search:acct-1" in (both["reason"] or "")
    assert core_only["decision"] == "approve"


SWITCH_POLICY = """
policies:
  - id: spread
    target: global
    kind: soft
    rules:
      - name: move-off-low-pools
        when: 'pool.remaining < 200.0'
        action: switch_identity
        reason: "pool {pool.id} is low: use another identity"
"""


def test_switch_identity_proposes_an_identity_whose_pool_is_safe(
    daemon_factory: Factory,
) -> None:
    config = mock(
        {
            "low": {"requests": {"limit": 1000, "remaining": 100}},
            "also-low": {"requests": {"limit": 1000, "remaining": 150}},
            "fresh": {"requests": {"limit": 1000}},
        }
    )
    d = daemon_factory(config=config, policy=SWITCH_POLICY)
    identities = {"id-low": "low", "id-also-low": "also-low", "id-fresh": "fresh"}
    with d.client() as http:
        ready(http, identities)
        decision = ask(http, identity_id="id-low", cost=5)
        fresh = pool(http, "mock:requests:fresh")
        low = pool(http, "mock:requests:low")
    assert decision["decision"] == "approve_with_modifications"
    assert decision["modifications"]["identity_switch"] == "id-fresh"
    assert "spread/move-off-low-pools" in decision["reason"]
    assert fresh is not None and fresh["remaining"] == 1000 - 5  # charged where it will run
    assert low is not None and low["remaining"] == 100


# ------------------------------------------------------------------ metrics


def _samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in Prometheus text format."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line[len(name) :].rpartition(" ")
            found[labels] = float(value)
    return found


def test_metrics_expose_decisions_latency_and_pool_gauges(daemon_factory: Factory) -> None:
    d = daemon_factory(config=ONE_POOL, policy=HARD_DENY)
    with d.client() as http:
        ready(http, {"id-a": "acct-1"})
        for _ in range(3):
            ask(http, cost=2)
        ask(http, cost=20)
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    decisions = _samples(text, "ratelord_decisions_total")
    assert decisions['{decision="approve"}'] == 3
    assert decisions['{decision="deny_with_reason"}'] == 1
    assert _samples(text, "ratelord_rules_fired_total") == {'{rule="caps/no-big-spends"}': 1}
    assert _samples(text, "ratelord_intent_latency_seconds_count") == {"": 4}
    labels = '{pool_id="mock:requests:acct-1",provider="mock",resource="requests"}'
    assert _samples(text, "ratelord_pool_remaining")[labels] == 1000 - 6
    assert _samples(text, "ratelord_pool_limit")[labels] == 1000
    assert labels in _samples(text, "ratelord_pool_p_exhaustion")
