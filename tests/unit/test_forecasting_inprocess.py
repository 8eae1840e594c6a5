"""Resets, drift and forecasts through the daemon's real app, on a manual clock.

The real-process versions of these waited ~8 s each for windows to roll over;
here the clock is moved and the provider polled when the test says so
(:mod:`tests.support.inprocess`), so each runs in milliseconds.
"""

from __future__ import annotations

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
                "principals": {"acct-1": {"pools": {"requests": requests}}},
            }
        }
    }


async def register(d: InProcessDaemon, identity_id: str, principal: str) -> None:
    body = {"identity_id": identity_id, "provider_id": "mock", "principal": principal}
    response = await d.http.post("/v1/identities", json=body)
    assert response.status_code == 201, response.text
    await d.poll(identity_id)


async def spend(d: InProcessDaemon, cost: float) -> dict[str, Any]:
    body = {"agent_id": "a", "identity_id": "id-a", "resource": "requests", "cost": cost}
    decision = (await d.http.post("/v1/intent", json=body)).json()
    assert decision["decision"] != "deny_with_reason", decision
    return dict(decision)


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
