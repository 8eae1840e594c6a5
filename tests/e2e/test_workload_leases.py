"""Leases over a workload's pools against the real ratelord-d (the CLI, the SDK).

Expiry, across a restart too, and late reports run in process on a manual clock:
``tests/unit/test_lease_api.py``.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest

from tests.e2e.test_leases import Factory
from tests.support.daemon import BIN, RunningDaemon, events, register, wait_for

pytestmark = pytest.mark.e2e

SEARCH, CORE = "mock:search:acct-1", "mock:core:acct-1"


def config(search: float = 1000, core: float = 10_000) -> dict[str, Any]:
    pools = {
        "search": {"limit": search, "window_seconds": 3600},
        "core": {"limit": core, "window_seconds": 3600},
    }
    return {
        "providers": {"mock": {"principals": {"acct-1": {"pools": pools}}}},
        "workloads": {"hydrate": {"search": 1, "core": 10}},
    }


def ready(daemon: RunningDaemon) -> RunningDaemon:
    with daemon.client() as http:
        register(http, "id-a", "acct-1")
        wait_for(lambda: http.get(f"/v1/pools/{CORE}").status_code == 200, what="first poll")
    return daemon


def take(http: httpx.Client, units: float, **fields: Any) -> dict[str, Any]:
    body = {"agent_id": "agent-1", "identity_id": "id-a", "workload_id": "hydrate", "units": units}
    response = http.post("/v1/leases", json=body | fields)
    assert response.status_code == 200, response.text
    return dict(response.json())


def remaining(http: httpx.Client) -> tuple[float, float]:
    return tuple(http.get(f"/v1/pools/{p}").json()["remaining"] for p in (SEARCH, CORE))  # type: ignore[return-value]


def leased(http: httpx.Client) -> dict[str, float]:
    found = {}
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("ratelord_pool_leased{"):
            pool = line.split('pool_id="', 1)[1].split('"', 1)[0]
            found[pool] = float(line.rsplit(" ", 1)[1])
    return found


def test_a_lease_over_a_workloads_pools_reserves_reports_and_returns_each(
    daemon_factory: Factory,
) -> None:
    d = ready(daemon_factory(config=config()))
    with d.client() as http:
        assert remaining(http) == (1000, 10_000)
        lease = take(http, 20)
        assert (lease["status"], lease["granted"], lease["pool_id"]) == ("active", 20, None)
        assert lease["pools"] == {CORE: 10, SEARCH: 1}
        assert lease["workload_id"] == "hydrate"
        assert lease["seq"] > 0  # where a holder follows the event stream from
        assert remaining(http) == (980, 9800)
        assert leased(http) == {SEARCH: 20, CORE: 200}
        metrics = http.get("/metrics").text
        for pool, units in ((SEARCH, 20.0), (CORE, 200.0)):
            series = f'lease_id="{lease["lease_id"]}",pool_id="{pool}"}} {units}'
            assert f'ratelord_lease_granted{{holder="agent-1",{series}' in metrics
        (decided,) = events(http, type="lease_decided")
        assert decided["payload"]["pools"] == {CORE: 10, SEARCH: 1}
        schema = http.get("/openapi.json").json()["components"]["schemas"]["Lease"]
        assert {"pools", "workload_id", "seq"} <= set(schema["properties"])

        reported = http.post(f"/v1/leases/{lease['lease_id']}/report", json={"spent": 4})
        assert reported.status_code == 200, reported.text
        assert (reported.json()["spent"], reported.json()["available"]) == (4, 16)
        assert leased(http) == {SEARCH: 16, CORE: 160}
        shown = subprocess.run(
            [str(BIN / "ratelord"), "leases", "--url", d.url], capture_output=True, text=True
        )
        assert shown.returncode == 0, shown.stderr
        assert "workload hydrate (2 pools)" in shown.stdout
        assert max(len(line) for line in shown.stdout.splitlines()) <= 80
        as_json = subprocess.run(
            [str(BIN / "ratelord"), "leases", "--url", d.url, "--json"],
            capture_output=True,
            text=True,
        )
        (listed,) = json.loads(as_json.stdout)["leases"]
        assert listed["pools"] == {CORE: 10, SEARCH: 1}

        released = http.post(f"/v1/leases/{lease['lease_id']}/release", json={"spent": 1})
        assert released.json()["status"] == "released"
        assert remaining(http) == (995, 9950)
        assert leased(http) == {}


def test_all_of_a_workloads_pools_or_none(daemon_factory: Factory) -> None:
    d = ready(daemon_factory(config=config(core=5)))  # one hydrate costs 10 of core
    with d.client() as http:
        refused = take(http, 3)
        assert (refused["status"], refused["granted"]) == ("refused", 0)
        assert refused["reason"]
        assert remaining(http) == (1000, 5)
        assert leased(http) == {}
        unknown = http.post(
            "/v1/leases",
            json={"agent_id": "a", "identity_id": "id-a", "workload_id": "nope", "units": 1},
        )
        assert unknown.status_code == 400, unknown.text
        assert unknown.json()["error"]["code"] == "unknown_workload"
        assert events(http, type="lease_decided")[-1]["payload"]["lease_id"] == refused["lease_id"]


def test_the_sdk_spends_a_workload_from_its_lease(daemon_factory: Factory) -> None:
    from ratelord.client import Client

    d = ready(daemon_factory(config=config()))
    kinds = []
    with Client(d.url) as client:
        for _ in range(40):
            with client.guard(identity="id-a", workload="hydrate", agent="w", lease=True) as g:
                assert g.allowed and g.decision is not None
                kinds.append("lease" if g.decision.intent_id.startswith("lease:") else "ask")
    assert kinds.count("lease") >= 30
    with d.client() as http:
        decided = [e for e in events(http, type="lease_decided") if e["payload"]["granted"]]
        assert decided and all(e["payload"]["pools"] == {CORE: 10, SEARCH: 1} for e in decided)
        spent = sum(e["payload"]["spent"] for e in events(http, type="lease_reported"))
        assert spent == kinds.count("lease")
        assert leased(http) == {}
        asked = kinds.count("ask")
        assert remaining(http) == (1000 - 40, 10_000 - 400) or asked  # asks spend on approval
        assert len(events(http, type="intent_decided")) == asked
