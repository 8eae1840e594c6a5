"""Leases and batches through the daemon's real app on a manual clock (issue 19).

Leases of one pool, and of a workload's pools (``hydrate``: 1 of search and 10
of core per unit).

Expiry, and expiry across a restart, take the time a lease has to run out: here
the clock is moved instead of waited on (:mod:`tests.support.inprocess`).  What
needs the real process (the CLI, the event stream, the SDK) is in
``tests/e2e/test_leases.py``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ratelord.engine.clock import ManualClock, parse_iso
from tests.e2e.conftest import MOCK_CONFIG
from tests.support.inprocess import InProcessDaemon, in_process

POOL = "mock:requests:acct-1"
SEARCH, CORE = "mock:search:acct-1", "mock:core:acct-1"
WORKLOAD: dict[str, Any] = {
    "providers": {
        "mock": {
            "principals": {
                "acct-1": {
                    "pools": {
                        "search": {"limit": 1000, "window_seconds": 3600},
                        "core": {"limit": 10_000, "window_seconds": 3600},
                    }
                }
            }
        }
    },
    "workloads": {"hydrate": {"search": 1, "core": 10}},
}


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


async def leased(d: InProcessDaemon) -> dict[str, float]:
    """Units leased per pool, as ``/metrics`` shows them (pools with none left out)."""
    found = {}
    for line in (await d.http.get("/metrics")).text.splitlines():
        if line.startswith("ratelord_pool_leased{"):
            pool = line.split('pool_id="', 1)[1].split('"', 1)[0]
            found[pool] = float(line.rsplit(" ", 1)[1])
    return {pool: units for pool, units in found.items() if units}


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
        assert await leased(d) == {}
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
        assert await leased(d) == {}


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
        assert await leased(d) == {POOL: 55}


async def remaining(d: InProcessDaemon) -> tuple[float, float]:
    return (await d.pool(SEARCH))["remaining"], (await d.pool(CORE))["remaining"]


async def test_workload_leases_survive_a_restart_and_expire_across_it(tmp_path: Path) -> None:
    clock = ManualClock()
    async with in_process(tmp_path, config=WORKLOAD, clock=clock) as d:
        await ready(d)
        hydrate = {"workload_id": "hydrate", "resource": None}
        down = await take(d, 10, ttl_seconds=2, **hydrate)  # runs out while the daemon is down
        after = await take(d, 30, ttl_seconds=30, **hydrate)  # runs out after the restart
        kept = await take(d, 50, ttl_seconds=600, **hydrate)
        await d.http.post(f"/v1/leases/{kept['lease_id']}/report", json={"spent": 5})
    clock.advance(2.5)
    async with in_process(tmp_path, config=WORKLOAD, clock=clock) as d:
        again = (await d.http.get(f"/v1/leases/{kept['lease_id']}")).json()
        assert (again["granted"], again["spent"], again["pools"]) == (50, 5, {CORE: 10, SEARCH: 1})
        assert (await d.http.get(f"/v1/leases/{down['lease_id']}")).status_code == 410
        assert (await d.http.get(f"/v1/leases/{after['lease_id']}")).status_code == 200
        assert await leased(d) == {SEARCH: 45 + 30, CORE: 450 + 300}
        # The one live at the restart expires by the restarted daemon's upkeep, on time.
        expires = parse_iso(after["expires_at"])
        clock.set(expires - 0.5)
        await d.runtime.leasing.upkeep()
        assert (await d.http.get(f"/v1/leases/{after['lease_id']}")).status_code == 200
        clock.set(expires + 0.5)
        await d.runtime.leasing.upkeep()
        assert (await d.http.get(f"/v1/leases/{after['lease_id']}")).status_code == 410
        ended = {e["payload"]["lease_id"]: e for e in await d.events(type="lease_ended")}
        assert set(ended) == {down["lease_id"], after["lease_id"]}
        assert all(e["payload"]["status"] == "expired" for e in ended.values())
        assert ended[after["lease_id"]]["ts_event"] >= expires
        assert await leased(d) == {SEARCH: 45, CORE: 450}
        assert await remaining(d) == (1000 - 50, 10_000 - 500)


async def test_spend_reported_after_a_lease_ended_is_booked_not_refused(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=WORKLOAD) as d:
        await ready(d)
        lease = await take(d, 10, ttl_seconds=1, workload_id="hydrate", resource=None)
        d.advance(1.5)
        await d.runtime.leasing.upkeep()
        assert await d.events(type="lease_ended")
        assert await remaining(d) == (1000, 10_000)
        # The holder spent 3 before it learnt of the end: the report is taken and booked.
        release = f"/v1/leases/{lease['lease_id']}/release"
        late = await d.http.post(release, json={"spent": 3, "rate": 1})
        assert late.status_code == 200, late.text
        assert (late.json()["status"], late.json()["spent"]) == ("expired", 3)
        (reported,) = await d.events(type="lease_reported")
        assert (reported["payload"]["spent"], reported["payload"]["rate"]) == (3, None)
        assert await remaining(d) == (997, 9970)
        nothing = await d.http.post(release, json={})
        assert nothing.status_code == 410
        assert nothing.json()["error"]["code"] == "lease_ended"


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
