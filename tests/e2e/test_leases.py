"""Leases against the real ratelord-d (issue 19): the CLI, the event stream, the SDK.

What only needs the HTTP API (report, release, expiry, restart, batches) runs in
process on a manual clock: ``tests/unit/test_lease_api.py``.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import MOCK_CONFIG
from tests.support.daemon import BIN, RunningDaemon, events, register, wait_for

pytestmark = pytest.mark.e2e

POOL = "mock:requests:acct-1"
Factory = Callable[..., RunningDaemon]


def config(limit: float = 5000, poll: float = 5.0) -> dict[str, Any]:
    cfg = copy.deepcopy(MOCK_CONFIG)
    cfg["providers"]["mock"]["principals"]["acct-1"]["pools"]["requests"]["limit"] = limit
    cfg["providers"]["mock"]["poll_interval_seconds"] = poll
    return cfg


def ready(daemon: RunningDaemon) -> RunningDaemon:
    with daemon.client() as http:
        register(http, "id-a", "acct-1")
        wait_for(lambda: http.get(f"/v1/pools/{POOL}").status_code == 200, what="first poll")
    return daemon


def take(http: httpx.Client, units: float, **fields: Any) -> dict[str, Any]:
    body = {"agent_id": "agent-1", "identity_id": "id-a", "resource": "requests", "units": units}
    response = http.post("/v1/leases", json=body | fields)
    assert response.status_code == 200, response.text
    return dict(response.json())


def leased(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(f'ratelord_pool_leased{{pool_id="{POOL}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_grant_all_part_or_none_each_reserved_and_logged(daemon_factory: Factory) -> None:
    d = ready(daemon_factory(config=config()))
    with d.client() as http:
        before = http.get(f"/v1/pools/{POOL}").json()["remaining"]
        full = take(http, 100)
        assert (full["status"], full["granted"], full["available"]) == ("active", 100, 100)
        assert http.get(f"/v1/pools/{POOL}").json()["remaining"] == before - 100
        part = take(http, 100_000, ttl_seconds=60)
        assert part["status"] == "active"
        assert 0 < part["granted"] < 100_000
        assert part["reason"]
        none = take(http, 10, identity_id="ghost")
        assert (none["status"], none["granted"]) == ("refused", 0)
        assert "unknown identity" in none["reason"]
        logged = events(http, type="lease_decided")
        assert [e["payload"]["granted"] for e in logged] == [100, part["granted"], 0]
        listed = http.get("/v1/leases").json()["leases"]
        assert {lease["lease_id"] for lease in listed} == {full["lease_id"], part["lease_id"]}
        assert leased(http) == 100 + part["granted"]
        metrics = http.get("/metrics").text
        assert f'ratelord_lease_granted{{holder="agent-1",lease_id="{full["lease_id"]}"' in metrics
        paths = http.get("/openapi.json").json()["paths"]
        assert {"/v1/leases", "/v1/leases/{lease_id}/report", "/v1/intents"} <= set(paths)
    shown = subprocess.run(
        [str(BIN / "ratelord"), "--url", d.url, "leases"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert "agent-1" in shown.stdout and POOL in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    as_json = subprocess.run(
        [str(BIN / "ratelord"), "--url", d.url, "leases", "--json"], capture_output=True, text=True
    )
    assert len(json.loads(as_json.stdout)["leases"]) == 2
    with d.client() as http:
        bad = http.post("/v1/leases", json={"agent_id": "a", "identity_id": "id-a", "units": -1})
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_request"


def test_revocation_is_pushed_on_the_event_stream(daemon_factory: Factory) -> None:
    d = ready(daemon_factory(config=config(limit=1000, poll=0.5)))
    with d.client() as http:
        lease = take(http, 600, ttl_seconds=600)
        assert lease["granted"] == 600
        after = http.get("/v1/health").json()["high_water_seq"]
        # Most of the pool goes behind ratelord's back: drift, and the forecast turns.
        http.post(
            "/v1/admin/mock/external-usage",
            json={"principal": "acct-1", "resource": "requests", "amount": 350},
        )
        seen = _stream_until(http, after, ("lease_revised", "lease_ended"), timeout=10)
    assert seen["payload"]["lease_id"] == lease["lease_id"]
    if seen["event_type"] == "lease_ended":
        assert seen["payload"]["status"] == "revoked"
    else:
        assert seen["payload"]["granted"] < 600


def test_the_sdk_learns_a_shrink_or_revocation_from_the_event_stream(
    daemon_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import msgspec

    from ratelord.client import Client, _lease

    asked = _lease.Keeper.request

    def big(keeper: _lease.Keeper, *args: Any) -> Any:  # a lease of 600, whatever the rate
        return msgspec.structs.replace(asked(keeper, *args), units=600, rate=None)

    monkeypatch.setattr(_lease.Keeper, "request", big)
    monkeypatch.setattr(_lease, "REPORT_EVERY", 3600.0)  # no report answer can tell it
    d = ready(daemon_factory(config=config(limit=1000, poll=0.5)))
    with Client(d.url) as client:
        with client.guard(identity="id-a", resource="requests", agent="big", lease=True) as g:
            assert g.decision is not None and g.decision.intent_id.startswith("lease:")
        (held,) = client._leases.keeper.held.values()
        assert held.granted == 600
        with d.client() as http:  # most of the pool goes behind ratelord's back
            http.post(
                "/v1/admin/mock/external-usage",
                json={"principal": "acct-1", "resource": "requests", "amount": 350},
            )
        wait_for(lambda: held.ended or held.granted < 600, what="the shrink to reach the SDK")
        with d.client() as http:

            def learnt() -> dict[str, Any] | None:
                """The last revision, once the SDK holds what it says (a shrink may be
                followed by another, or by a revocation, as the forecast settles)."""
                last = events(http, type="lease_revised")[-1]
                if held.ended != last["payload"]["revoked"]:
                    return None
                granted = min(600, last["payload"]["granted"])
                return last if held.ended or held.granted == granted else None

            revised = wait_for(learnt, what="the SDK to hold the last revision")
            assert revised["payload"]["lease_id"] == held.lease_id
            # Learnt from the stream alone: the SDK reported nothing before the first revision
            # (a lease spent up or revoked is released, with its report, only after it).
            first = events(http, type="lease_revised")[0]["seq"]
            assert all(r["seq"] > first for r in events(http, type="lease_reported"))


def _stream_until(
    http: httpx.Client, after: int, types: tuple[str, ...], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    params = {"stream": "true", "after_seq": after}
    with http.stream("GET", "/v1/events", params=params, timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["event_type"] in types:
                    return dict(event)
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"no {types} on the stream within {timeout} s")


# ------------------------------------------------------------------ the SDK


def test_the_sdk_spends_from_a_lease_and_reports_in_batches(daemon_factory: Factory) -> None:
    from ratelord.client import Client

    d = ready(daemon_factory(config=config(limit=1_000_000)))
    kinds = []
    with Client(d.url) as client:
        for _ in range(300):
            with client.guard(identity="id-a", resource="requests", agent="bulk", lease=True) as g:
                assert g.allowed and g.decision is not None
                kinds.append("lease" if g.decision.intent_id.startswith("lease:") else "ask")
        time.sleep(1.2)  # one batched report
    assert kinds.count("lease") >= 100  # the pool paces a burst: the rest asks per call
    with d.client() as http:
        decided = events(http, type="lease_decided")
        reported = events(http, type="lease_reported")
        ended = events(http, type="lease_ended")
        assert len(events(http, type="intent_decided")) == kinds.count("ask")
        assert len(decided) < 30
        assert len(reported) < 30
        assert ended and all(e["payload"]["status"] == "released" for e in ended)
        assert sum(e["payload"]["spent"] for e in reported) == kinds.count("lease")
        assert leased(http) == 0


def test_the_sdk_takes_a_lease_by_itself_at_a_high_call_rate(daemon_factory: Factory) -> None:
    from ratelord.client import Client

    d = ready(daemon_factory(config=config(limit=1_000_000)))
    with Client(d.url) as client:
        kinds = []
        for _ in range(200):
            with client.guard(identity="id-a", resource="requests", agent="hot") as g:
                kinds.append("lease" if g.decision.intent_id.startswith("lease:") else "ask")
    assert kinds[0] == "ask"
    assert kinds[-1] == "lease"
    with d.client() as http:
        assert len(events(http, type="intent_decided")) == kinds.count("ask")
        assert events(http, type="lease_decided")


def test_the_async_sdk_batches_queued_asks_into_one_request(daemon_factory: Factory) -> None:
    import asyncio

    from ratelord.client import AsyncClient

    d = ready(daemon_factory(config=config(limit=1_000_000)))

    async def main() -> tuple[list[Any], int]:
        async with AsyncClient(d.url) as client:
            asks = [
                client.ask(agent_id=f"a{i}", identity_id="id-a", resource="requests", cost=1)
                for i in range(50)
            ]
            decisions = await asyncio.gather(*asks)
            return decisions, client._batcher.batches

    decisions, batches = asyncio.run(main())
    assert all(x.allowed for x in decisions)
    assert 1 <= batches < 50
    assert len({x.intent_id for x in decisions}) == 50
