"""The daemon polling the mock provider: observations, drift, forecasts, shared budgets.

Through the daemon's real app and store on a manual clock
(:mod:`tests.support.inprocess`): the clock moves and the provider is polled
when the test says so, so windows roll over and drift accumulates in
milliseconds instead of seconds of real waiting.  That the real process polls a
new identity by itself is D-07 in ``tests/e2e/test_identity_registration.py``.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from tests.support.inprocess import InProcessDaemon, in_process

POOL = "mock:requests:acct-1"
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


async def register(d: InProcessDaemon, identity_id: str, principal: str) -> None:
    body = {"identity_id": identity_id, "provider_id": "mock", "principal": principal}
    response = await d.http.post("/v1/identities", json=body)
    assert response.status_code == 201, response.text
    await d.poll(identity_id)


async def spend(
    d: InProcessDaemon, cost: float, identity: str = "id-a", agent: str = "a"
) -> dict[str, Any]:
    body = {"agent_id": agent, "identity_id": identity, "resource": "requests", "cost": cost}
    decision = (await d.http.post("/v1/intent", json=body)).json()
    assert decision["decision"] != "deny_with_reason", decision
    return dict(decision)


@pytest.mark.acceptance("P-01")
async def test_rising_usage_emits_forecasts_with_falling_p50_tte(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=mock_config(), policy=PERMISSIVE) as d:
        await register(d, "id-a", "acct-1")
        start = await d.high_water()
        for _ in range(6):
            d.advance(1.0)
            await spend(d, 40)
        p50 = [
            e["payload"]["tte_p50_seconds"]
            for e in await d.events(type="forecast_computed", pool_id=POOL)
            if e["seq"] > start
        ]
    finite = [v for v in p50 if v is not None]
    assert len(finite) >= 3, p50
    assert all(later < earlier for earlier, later in itertools.pairwise(finite)), finite


@pytest.mark.acceptance("P-02")
async def test_crossing_a_reset_makes_tte_jump_back_up(tmp_path: Path) -> None:
    config = mock_config(limit=100, window_seconds=4)
    async with in_process(tmp_path, config=config, policy=PERMISSIVE) as d:
        await register(d, "id-a", "acct-1")  # at the start of a window
        for _ in range(5):
            d.advance(0.2)
            await spend(d, 12)
        burnt = await d.pool(POOL)
        before = burnt["forecast"]["tte_p50_seconds"]
        assert before is not None, burnt["forecast"]
        mark = await d.high_water()
        d.advance(4.0)  # past the reset
        await d.poll("id-a")
        reset = [e for e in await d.events(type="reset_observed") if e["seq"] > mark]
        assert reset, "no reset observed"
        after = [
            e["payload"]
            for e in await d.events(type="forecast_computed", pool_id=POOL)
            if e["seq"] > reset[0]["seq"]
        ]
    assert burnt["limit"] == 100
    assert reset[0]["payload"]["remaining_after"] > reset[0]["payload"]["remaining_before"]
    assert after, "no forecast after the reset"
    lifted = after[0]["tte_p50_seconds"]
    assert lifted is None or lifted > before, (before, after[0])


def spread(forecast: dict[str, Any]) -> float:
    """How much shorter P99 is than P50, as a fraction of P50 (0 = no uncertainty)."""
    return 1.0 - forecast["tte_p99_seconds"] / forecast["tte_p50_seconds"]


@pytest.mark.acceptance("P-04")
async def test_repeated_drift_widens_the_gap_between_p50_and_p99(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=mock_config(limit=100_000, burn_per_second=20)) as d:
        await register(d, "id-a", "acct-1")
        for _ in range(10):  # a steady burn, polled every second
            d.advance(1.0)
            await d.poll("id-a")
        steady = (await d.pool(POOL))["forecast"]
        assert steady["tte_p50_seconds"] and not steady["cold_start"], steady
        for n in range(1, 4):
            used = await d.http.post(
                "/v1/admin/mock/external-usage",
                json={"principal": "acct-1", "resource": "requests", "amount": 8000},
            )
            assert used.status_code == 200, used.text
            d.advance(1.0)
            await d.poll("id-a")
            assert len(await d.events(type="drift_detected", pool_id=POOL)) == n
        drifted = await d.pool(POOL)
    assert drifted["drift_count"] >= 3
    assert spread(drifted["forecast"]) > spread(steady), (steady, drifted["forecast"])


@pytest.mark.acceptance("P-03")
async def test_usage_behind_ratelords_back_is_drift_on_the_next_poll_and_state_snaps(
    tmp_path: Path,
) -> None:
    async with in_process(tmp_path, config=mock_config()) as d:
        await register(d, "id-a", "acct-1")
        assert (await d.pool(POOL))["remaining"] == 1000
        mark = await d.high_water()
        injected = await d.http.post(
            "/v1/admin/mock/external-usage",
            json={"principal": "acct-1", "resource": "requests", "amount": 250},
        )
        assert injected.status_code == 200, injected.text
        assert not await d.events(type="drift_detected"), "drift before any poll saw it"
        d.advance(1.0)
        await d.poll("id-a")
        drift = await d.events(type="drift_detected", pool_id=POOL)
        polls = [
            e for e in await d.events(type="provider_poll_observed", identity_id="id-a")
            if e["seq"] > mark
        ]  # fmt: skip
        snapped = await d.pool(POOL)
    assert drift and drift[0]["seq"] > mark
    assert drift[0]["correlation_id"] == polls[0]["correlation_id"], "not the next poll"
    payload = drift[0]["payload"]
    assert payload["expected"] == 1000
    assert payload["observed"] == math.floor(injected.json()["remaining"]) == 750
    assert snapped["remaining"] == 750
    assert snapped["drift_count"] >= 1


@pytest.mark.acceptance("C-01")
async def test_two_agents_on_one_identity_share_a_budget(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=mock_config(), policy=PERMISSIVE) as d:
        await register(d, "id-a", "acct-1")
        for _ in range(3):
            await spend(d, 50, agent="agent-a")
        seen_by_b = (await spend(d, 1, agent="agent-b"))["evaluation"]["pools"][0]
        shared = await d.pool(POOL)
    assert seen_by_b["pool_id"] == POOL
    assert seen_by_b["remaining"] == 1000 - 150
    assert shared["remaining"] == 1000 - 151


@pytest.mark.acceptance("C-02")
async def test_identities_with_different_principals_are_isolated(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=mock_config(), policy=PERMISSIVE) as d:
        await register(d, "id-a", "acct-1")
        await register(d, "id-b", "acct-2")
        for _ in range(3):
            await spend(d, 50, identity="id-a", agent="agent-a")
        seen_by_b = (await spend(d, 1, identity="id-b", agent="agent-b"))["evaluation"]["pools"]
        mine = await d.pool(POOL)
    assert seen_by_b[0]["pool_id"] == "mock:requests:acct-2"
    assert seen_by_b[0]["remaining"] == 1000
    assert mine["remaining"] == 850


async def test_explain_says_why_identities_share_a_pool_or_not(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=mock_config()) as d:
        await register(d, "id-a", "acct-1")
        await register(d, "id-a2", "acct-1")
        await register(d, "id-b", "acct-2")
        explain = "/v1/graph/explain"
        same = (await d.http.get(explain, params={"a": "id-a", "b": "id-a2"})).json()
        other = (await d.http.get(explain, params={"a": "id-a", "b": "id-b"})).json()
        unknown = await d.http.get(explain, params={"a": "id-a", "b": "ghost"})
        missing = await d.http.get(explain, params={"a": "id-a"})
        members = await d.pool(POOL)
    assert same["shared"] is True and same["shared_pools"] == [POOL]
    assert "acct-1" in same["explanation"]
    assert other["shared"] is False and other["shared_pools"] == []
    assert "acct-1" in other["explanation"] and "acct-2" in other["explanation"]
    assert sorted(members["members"]) == ["id-a", "id-a2"]
    assert unknown.status_code == 404
    assert missing.status_code == 400


async def test_health_is_degraded_with_a_reason_while_the_provider_fails_then_ok(
    tmp_path: Path,
) -> None:
    async with in_process(tmp_path, config=mock_config()) as d:
        await register(d, "id-a", "acct-1")
        injected = await d.http.post("/v1/admin/mock/fail", json={"kind": "server", "count": 2})
        assert injected.status_code == 200
        waits = []
        for _ in range(2):
            waits.append(await d.poll("id-a"))
            d.advance(waits[-1])
        degraded = (await d.http.get("/v1/health")).json()
        await d.poll("id-a")
        recovered = (await d.http.get("/v1/health")).json()
        errors = await d.events(type="provider_error", identity_id="id-a")
    assert degraded["status"] == "degraded"
    assert any("mock" in r and "id-a" in r for r in degraded["reasons"]), degraded
    assert waits[1] > waits[0] > 0, f"no backoff after failures: {waits}"
    assert (recovered["status"], recovered["reasons"]) == ("ok", [])
    assert len(errors) == 2
