"""The proxy's calls spent from leases: all of a call's resources or none, settled after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ratelord.client._exceptions import RatelordRequestError
from ratelord.client._lease import HeldLease, Keeper
from ratelord.client._lease_io import AsyncLeases
from ratelord.proxy import leasing
from ratelord.schema import Lease

FIELDS = {"agent_id": "proxy", "identity_id": "openai:acme", "urgency": "normal"}
COSTS = {"requests@m": 1.0, "tokens@m": 100.0}


def lease(granted: float, lease_id: str = "l1") -> Lease:
    return Lease(
        lease_id=lease_id,
        status="active",
        holder="proxy",
        identity_id="openai:acme",
        pool_id="p",
        urgency="normal",
        requested=granted,
        granted=granted,
        spent=0,
        available=granted,
        expires_at="2999-01-01T00:00:00Z",
    )


class Daemon:
    """Grants every lease asked for, slowly; counts the asks."""

    url = "http://ratelord.test"
    timeout = 5.0

    def __init__(self) -> None:
        self.asked: list[str] = []

    @asynccontextmanager
    async def sse(self, path: str, params: Any, *, read_timeout: float) -> AsyncIterator[Any]:
        """The leases' event stream (shrinks, revocations): none here."""
        raise RatelordRequestError("no event stream here", code="not_found", status_code=404)
        yield

    async def _call(self, method: str, path: str, body: Any, model: type) -> Lease:
        self.asked.append(path)
        await asyncio.sleep(0.05)
        return lease(1000, lease_id=f"l{len(self.asked)}")


def holding(granted: dict[str, float]) -> tuple[AsyncLeases, dict[str, HeldLease]]:
    leases = AsyncLeases(Daemon())  # type: ignore[arg-type]
    held = {}
    for resource, units in granted.items():
        key = Keeper.key_of(FIELDS | {"resource": resource})
        held[resource] = leases.keeper.got(key, lease(units))  # type: ignore[assignment]
    return leases, held


async def test_a_call_runs_on_leases_only_when_every_resource_has_enough() -> None:
    leases, held = holding({"requests@m": 10, "tokens@m": 150})
    first = await leasing.spend(leases, FIELDS | {"costs": COSTS}, COSTS)
    assert first is not None and held["tokens@m"].spent == 100
    # Not 100 more tokens: the request taken for it is put back, and the call is asked for.
    assert await leasing.spend(leases, FIELDS, COSTS) is None
    assert held["requests@m"].spent == 1 and held["tokens@m"].spent == 100


async def test_the_answers_usage_corrects_what_was_taken_and_a_failed_call_gives_it_back() -> None:
    leases, held = holding({"requests@m": 10, "tokens@m": 1000})
    call = await leasing.spend(leases, FIELDS, COSTS)
    assert call is not None
    call.settle({"requests@m": 1.0, "tokens@m": 40.0})
    assert held["tokens@m"].spent == 40 and held["requests@m"].spent == 1
    failed = await leasing.spend(leases, FIELDS, COSTS)
    assert failed is not None
    failed.give_back()
    assert held["tokens@m"].spent == 40 and held["requests@m"].spent == 1


async def test_concurrent_calls_of_one_key_wait_for_one_new_lease() -> None:
    daemon = Daemon()
    leases = AsyncLeases(daemon)  # type: ignore[arg-type]
    key = Keeper.key_of(FIELDS | {"resource": "requests@m"})
    fields = FIELDS | {"resource": "requests@m"}
    taken = await asyncio.gather(*[leases.spend(key, 1.0, True, lambda: fields) for _ in range(16)])
    assert all(held is not None for held in taken)
    assert daemon.asked == ["/v1/leases"] and leases.keeper.held[key].spent == 16
    await leases.close()
