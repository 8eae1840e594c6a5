"""Leases and batches through the daemon's real app on a manual clock (issue 19).

Expiry, and expiry across a restart, take the time a lease has to run out: here
the clock is moved instead of waited on (:mod:`tests.support.inprocess`).  What
needs the real process (the CLI, the event stream, the SDK) is in
``tests/e2e/test_leases.py``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ratelord.engine.clock import ManualClock
from tests.e2e.conftest import MOCK_CONFIG
from tests.support.inprocess import InProcessDaemon, in_process

POOL = "mock:requests:acct-1"


def config(limit: float = 5000) -> dict[str, Any]:
    cfg = copy.deepcopy(MOCK_CONFIG)
    cfg["providers"]["mock"]["principals"]["acct-1"]["pools"]["requests"]["limit"] = limit
    return cfg


async def ready(d: InProcessDaemon) -> None:
    body = {"identity_id": "id-a", "provider_id": "mock", "principal": "acct-1"}
    assert (await d.http.post("/v1/identities", json=body)).status_code == 201
    await d.poll("id-a")


async def take(d: InProcessDaemon, units: float, **fields: Any) -> dict[str, Any]:
    body = {"agent_id": "agent-1", "identity_id": "id-a", "resource": "requests", "units": units}
    response = await d.http.post("/v1/leases", json=body | fields)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def leased(d: InProcessDaemon) -> float:
    text = (await d.http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(f'ratelord_pool_leased{{pool_id="{POOL}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_report_and_release_return_the_unspent_units(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=config()) as d:
        await ready(d)
        before = (await d.pool(POOL))["remaining"]
        lease_id = (await take(d, 100))["lease_id"]
        reported = await d.http.post(f"/v1/leases/{lease_id}/report", json={"spent": 30, "rate": 3})
        assert reported.status_code == 200, reported.text
        assert (reported.json()["spent"], reported.json()["available"]) == (30, 70)
        released = await d.http.post(f"/v1/leases/{lease_id}/release", json={"spent": 10})
        assert released.json()["status"] == "released"
        assert (await d.pool(POOL))["remaining"] == before - 40
        assert await leased(d) == 0
        gone = await d.http.get(f"/v1/leases/{lease_id}")
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "lease_ended"
        missing = await d.http.post("/v1/leases/lse_nope/report", json={"spent": 1})
        assert missing.status_code == 404


async def test_a_dead_holders_lease_expires_and_its_units_come_back(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=config()) as d:
        await ready(d)
        lease = await take(d, 50, ttl_seconds=1)
        await d.runtime.leasing.upkeep()
        assert await d.events(type="lease_ended") == [], "ended before its time ran out"
        d.advance(1.5)
        await d.runtime.leasing.upkeep()
        ended = await d.events(type="lease_ended")
        assert [e["payload"]["status"] for e in ended] == ["expired"]
        assert ended[0]["payload"]["lease_id"] == lease["lease_id"]
        assert (await d.http.get(f"/v1/leases/{lease['lease_id']}")).status_code == 410
        assert await leased(d) == 0


async def test_leases_survive_a_restart_and_expire_across_it(tmp_path: Path) -> None:
    clock = ManualClock()
    async with in_process(tmp_path, config=config(), clock=clock) as d:
        await ready(d)
        short = await take(d, 40, ttl_seconds=2)
        long = await take(d, 60, ttl_seconds=600)
        await d.http.post(f"/v1/leases/{long['lease_id']}/report", json={"spent": 5})
    clock.advance(2.5)  # the short lease's time runs out while the daemon is down
    async with in_process(tmp_path, config=config(), clock=clock) as d:
        kept = await d.http.get(f"/v1/leases/{long['lease_id']}")
        assert kept.status_code == 200, kept.text
        assert (kept.json()["granted"], kept.json()["spent"]) == (60, 5)
        assert (await d.http.get(f"/v1/leases/{short['lease_id']}")).status_code == 410
        expired = await d.events(type="lease_ended")
        assert [e["payload"]["lease_id"] for e in expired] == [short["lease_id"]]
        assert expired[0]["payload"]["status"] == "expired"
        assert await leased(d) == 55


async def test_a_batch_of_intents_is_decided_in_order_in_one_commit(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=config(limit=1_000_000)) as d:
        await ready(d)
        batch = [
            {"agent_id": f"a{i}", "identity_id": "id-a", "resource": "requests", "cost": 1}
            for i in range(100)
        ]
        batch[50] = {"agent_id": "a50", "identity_id": "ghost", "resource": "requests"}
        response = await d.http.post("/v1/intents", json={"intents": batch})
        assert response.status_code == 200, response.text
        decisions = response.json()["decisions"]
        assert len(decisions) == 100
        assert decisions[50]["decision"] == "deny_with_reason"
        assert decisions[0]["decision"] == "approve"
        assert all(x["decision"] != "deny_with_reason" for i, x in enumerate(decisions) if i != 50)
        decided = await d.events(type="intent_decided")
        assert [e["payload"]["intent_id"] for e in decided] == [x["intent_id"] for x in decisions]
        assert len({e["ts_ingest"] for e in decided}) == 1  # one append, one commit
        assert (await d.http.post("/v1/intents", json={"intents": []})).status_code == 400
        same = {"agent_id": "bulk", "identity_id": "id-a", "resource": "requests", "cost": 1}
        grouped = await d.http.post("/v1/intents", json={"intents": [same] * 100})
        answers = grouped.json()["decisions"]
        assert [x["decision"] for x in answers] == ["approve"] * 100
        (logged,) = await d.events(type="intents_decided")
        assert logged["payload"]["intent_ids"] == [x["intent_id"] for x in answers]
