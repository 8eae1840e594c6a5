"""Intent arbitration under declarative policy (issue 4, SPEC §6-7), in process.

The daemon's real app, runtime and store (:mod:`tests.support.inprocess`) on a
manual clock: a pool is polled when the test says, so no test waits for the
poller or for a forecast to turn risky.  That the real ``ratelord-d`` decides
and logs an intent over its socket is A-01 in ``tests/e2e/test_policy_arbitration.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_policy_arbitration import HARD_DENY, ONE_POOL, mock
from tests.support.inprocess import InProcessDaemon, in_process


async def ask(d: InProcessDaemon, **intent: Any) -> dict[str, Any]:
    body = {"agent_id": "agent", "identity_id": "id-a", "resource": "requests", "cost": 1}
    response = await d.http.post("/v1/intent", json={**body, **intent})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ready(d: InProcessDaemon, identities: dict[str, str]) -> None:
    """Register ``identity -> principal`` and poll each one's pools."""
    for identity, principal in identities.items():
        body = {"identity_id": identity, "provider_id": "mock", "principal": principal}
        response = await d.http.post("/v1/identities", json=body)
        assert response.status_code == 201, response.text
        await d.poll(identity)
        assert (await d.http.get(f"/v1/identities/{identity}")).json()["pools"]


async def pool(d: InProcessDaemon, pool_id: str) -> dict[str, Any] | None:
    response = await d.http.get(f"/v1/pools/{pool_id}")
    return None if response.status_code == 404 else dict(response.json())


async def poll_until(
    d: InProcessDaemon, identity: str, check: Callable[[], Any], polls: int, what: str
) -> None:
    """Poll ``identity`` once a (manual) second until ``await check()`` holds."""
    for _ in range(polls):
        if await check():
            return
        d.advance(1.0)
        await d.poll(identity)
    raise AssertionError(f"no {what} after {polls} polls a second apart")


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
async def test_a_shaping_rule_approves_with_a_wait(tmp_path: Path) -> None:
    config = mock({"acct-1": {"requests": {"limit": 1000, "remaining": 500}}})
    async with in_process(tmp_path, config=config, policy=SHAPE_POLICY) as d:
        await ready(d, {"id-a": "acct-1"})
        paced = await ask(d, cost=5)
        fixed = await ask(d, workload_id="slow-lane", resource="requests", cost=1)
    assert paced["decision"] == "approve_with_modifications"
    assert paced["modifications"]["wait_seconds"] > 0
    assert paced["evaluation"]["rules_fired"] == ["pacing/pace-busy-pools"]
    assert "pacing/pace-busy-pools" in paced["reason"]
    assert fixed["decision"] == "approve_with_modifications"
    assert fixed["modifications"]["wait_seconds"] >= 2.5


@pytest.mark.acceptance("A-04")
async def test_a_hard_rule_denies_with_a_reason_naming_it(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=ONE_POOL, policy=HARD_DENY) as d:
        await ready(d, {"id-a": "acct-1"})
        small = await ask(d, cost=3)
        big = await ask(d, cost=50)
        triggered = await d.events(type="policy_triggered")
        remaining = await pool(d, "mock:requests:acct-1")
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
async def test_deny_if_remaining_below_100_denies_at_90_citing_the_rule(tmp_path: Path) -> None:
    config = mock(
        {
            "low": {"requests": {"limit": 1000, "remaining": 90}},
            "high": {"requests": {"limit": 1000, "remaining": 500}},
        }
    )
    async with in_process(tmp_path, config=config, policy=FLOOR_POLICY) as d:
        await ready(d, {"id-low": "low", "id-high": "high"})
        low = await ask(d, identity_id="id-low")
        high = await ask(d, identity_id="id-high")
    assert low["decision"] == "deny_with_reason"
    assert "reserve/deny-below-100" in low["reason"]
    assert "90 left" in low["reason"]
    assert low["evaluation"]["pools"][0]["remaining"] == 90
    assert high["decision"] == "approve"


@pytest.mark.acceptance("Pol-02")
async def test_under_high_risk_background_is_denied_and_high_urgency_approved(
    tmp_path: Path,
) -> None:
    hot = {"limit": 1000, "remaining": 600, "burn_per_second": 15}
    async with in_process(tmp_path, config=mock({"acct-1": {"requests": hot}})) as d:
        await ready(d, {"id-a": "acct-1"})

        async def risky() -> bool:
            view = await pool(d, "mock:requests:acct-1")
            forecast = view and view["forecast"]
            return bool(forecast and forecast["p_exhaustion"] > 0.5)

        await poll_until(d, "id-a", risky, polls=8, what="high-risk forecast")
        background = await ask(d, urgency="background")
        high = await ask(d, urgency="high")
    assert background["decision"] == "deny_with_reason"
    assert "builtin-shaping/deny-background-when-critical" in background["reason"]
    assert high["decision"] == "approve"
    assert high["evaluation"]["p_exhaustion"] > 0.5


# ------------------------------------------------------------------ workloads, switch_identity


async def test_a_two_pool_workload_is_held_back_when_only_search_is_critical(
    tmp_path: Path,
) -> None:
    pools = {
        "search": {"limit": 30, "remaining": 2, "window_seconds": 60, "burn_per_second": 0.5},
        "core": {"limit": 5000},
    }
    config = mock({"acct-1": pools}, workloads={"search_and_hydrate": {"search": 1, "core": 10}})
    async with in_process(tmp_path, config=config) as d:
        await ready(d, {"id-a": "acct-1"})

        async def search_crit() -> bool:
            return ((await pool(d, "mock:search:acct-1")) or {}).get("status") == "CRIT"

        await poll_until(d, "id-a", search_crit, polls=5, what="search CRIT")
        both = await ask(d, workload_id="search_and_hydrate", resource=None, cost=None)
        core_only = await ask(d, resource="core", cost=10)
        core = await pool(d, "mock:core:acct-1")
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


async def test_switch_identity_proposes_an_identity_whose_pool_is_safe(tmp_path: Path) -> None:
    config = mock(
        {
            "low": {"requests": {"limit": 1000, "remaining": 100}},
            "also-low": {"requests": {"limit": 1000, "remaining": 150}},
            "fresh": {"requests": {"limit": 1000}},
        }
    )
    identities = {"id-low": "low", "id-also-low": "also-low", "id-fresh": "fresh"}
    async with in_process(tmp_path, config=config, policy=SWITCH_POLICY) as d:
        await ready(d, identities)
        decision = await ask(d, identity_id="id-low", cost=5)
        fresh = await pool(d, "mock:requests:fresh")
        low = await pool(d, "mock:requests:low")
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


async def test_metrics_expose_decisions_latency_and_pool_gauges(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=ONE_POOL, policy=HARD_DENY) as d:
        await ready(d, {"id-a": "acct-1"})
        for _ in range(3):
            await ask(d, cost=2)
        await ask(d, cost=20)
        response = await d.http.get("/metrics")
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
