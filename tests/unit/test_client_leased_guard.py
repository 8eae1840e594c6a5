"""The leased guard: ``client.guard`` spends from a held lease without parsing its options."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest

from ratelord.client import AsyncClient, Client
from ratelord.client._guard import GuardOptions
from ratelord.client._lease import HeldLease, Keeper
from ratelord.client._leased_guard import AsyncLeasedGuard, LeasedGuard, held_for
from ratelord.schema import Lease

WALL = 1767225600.0  # 2026-01-01T00:00:00Z
ARGS = {"identity": "pat", "resource": "requests", "agent": "a1", "urgency": "high", "lease": True}


def lease(granted: float, lease_id: str = "l1") -> Lease:
    return Lease(
        lease_id=lease_id,
        status="active",
        holder="a1",
        identity_id="pat",
        pool_id="p",
        urgency="high",
        requested=granted,
        granted=granted,
        spent=0,
        available=granted,
        expires_at="2026-01-01T00:00:30Z",
    )


class Daemon:
    """A fake ratelord-d: refuses new leases, approves per call, records every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, object]]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content or b"{}")
        self.seen.append((request.url.path, body))
        if request.url.path == "/v1/leases":
            return httpx2.Response(200, json=_refused())
        if request.url.path.startswith("/v1/leases/"):
            return httpx2.Response(200, json=_ended())
        if request.url.path == "/v1/intent":
            return httpx2.Response(200, json={"intent_id": "int-1", "decision": "approve"})
        return httpx2.Response(202, json={"accepted": True})

    def paths(self) -> list[str]:
        return [path for path, _ in self.seen]


def _refused() -> dict[str, object]:
    return {
        "lease_id": "l2",
        "status": "refused",
        "holder": "a1",
        "identity_id": "pat",
        "requested": 10,
        "granted": 0,
        "spent": 0,
        "available": 0,
        "urgency": "high",
    }


def _ended() -> dict[str, object]:
    return _refused() | {"lease_id": "l1", "status": "released"}


def hold(keeper: Keeper, granted: float) -> HeldLease:
    clock = keeper.clock
    held = HeldLease(lease(granted), now=clock(), wall=WALL, clock=clock)
    keeper.held[GuardOptions(**ARGS).lease_key()] = held  # type: ignore[arg-type]
    return held


def client(daemon: Daemon) -> Client:
    made = Client("http://ratelord.test", transport=httpx2.MockTransport(daemon.handle))
    made._leases.keeper.wall = lambda: WALL
    return made


def test_the_fast_key_is_the_guards_lease_key() -> None:
    keeper = Keeper()
    held = hold(keeper, 5)
    assert held_for(keeper, ARGS) is held
    assert held_for(keeper, ARGS | {"workload": "other"}) is None
    assert held_for(keeper, ARGS | {"lease": False}) is None, "lease=False never spends a lease"


def test_a_leased_call_spends_locally_and_a_reported_cost_corrects_it() -> None:
    daemon = Daemon()
    with client(daemon) as c:
        held = hold(c._leases.keeper, 10)
        guard = c.guard(**ARGS, cost=2)  # type: ignore[arg-type]
        assert isinstance(guard, LeasedGuard)
        with guard as g:
            assert g.allowed and g.decision is not None
            assert g.decision.intent_id == "lease:l1"
            g.report(5)
        assert held.spent == 5
        assert daemon.paths() == []  # no round trip
    assert daemon.paths() == ["/v1/leases/l1/release"]


def test_a_used_up_lease_falls_back_to_the_ordinary_path() -> None:
    daemon = Daemon()
    with client(daemon) as c:
        hold(c._leases.keeper, 1)
        with c.guard(**ARGS):  # type: ignore[arg-type]
            pass
        with c.guard(**ARGS, report_cost=1) as g:  # type: ignore[arg-type]
            assert g.allowed and g.decision is not None
            assert g.decision.intent_id == "int-1"  # decided per call
        # the used-up lease was released, a new one refused, the call asked and reported
        assert daemon.paths() == [
            "/v1/leases/l1/release",
            "/v1/leases",
            "/v1/intent",
            "/v1/usage",
        ]


def test_a_typo_is_still_refused_once_the_lease_cannot_serve() -> None:
    daemon = Daemon()
    with client(daemon) as c:
        hold(c._leases.keeper, 0)
        with pytest.raises(TypeError), c.guard(**ARGS, cots=3):  # type: ignore[call-arg]
            pass


def test_the_async_client_spends_from_its_lease_too() -> None:
    daemon = Daemon()

    async def main() -> float:
        transport = httpx2.MockTransport(daemon.handle)
        async with AsyncClient("http://ratelord.test", transport=transport) as c:
            held = hold(c._leases.keeper, 10)
            guard = c.guard(**ARGS)  # type: ignore[arg-type]
            assert isinstance(guard, AsyncLeasedGuard)
            async with guard as g:
                assert g.allowed
            return held.spent

    assert asyncio.run(main()) == 1
