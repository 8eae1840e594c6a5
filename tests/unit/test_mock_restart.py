"""Calls told to wait still reach the mock provider after a restart (issue 15, item 4)."""

from __future__ import annotations

from pathlib import Path

from ratelord.engine.clock import ManualClock
from tests.e2e.test_restart_keeps_pools import CONFIG, LATER, POOL
from tests.support.inprocess import InProcessDaemon, in_process

INTENT = {"agent_id": "a", "identity_id": "id-a", "resource": "requests", "cost": 100}


async def remaining_after_poll(d: InProcessDaemon) -> float:
    await d.poll("id-a")
    return float((await d.pool(POOL))["remaining"])


async def test_calls_waiting_at_a_restart_reach_the_provider_when_their_time_comes(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    async with in_process(tmp_path, config=CONFIG, policy=LATER, clock=clock) as d:
        body = {"identity_id": "id-a", "provider_id": "mock", "principal": "acct-1"}
        assert (await d.http.post("/v1/identities", json=body)).status_code == 201
        await d.poll("id-a")
        for workload in ("now", "later", "later"):
            await d.http.post("/v1/intent", json={**INTENT, "workload_id": workload})
        d.advance(1)
        assert await remaining_after_poll(d) == 700
    d.advance(5)
    async with in_process(tmp_path, config=CONFIG, policy=LATER, clock=clock) as d:
        assert await remaining_after_poll(d) == 700
        d.advance(130)  # the two calls told to wait are made now
        assert await remaining_after_poll(d) == 700
        assert d.runtime.providers["mock"].remaining("acct-1", "requests", clock.now()) == 700
        assert not await d.events(type="drift_detected")
