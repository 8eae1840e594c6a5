"""Spend a proxied call from leases the proxy holds, so that a busy key skips the daemon.

The proxy is one client of ratelord-d with many callers behind it.  The SDK's
lease machinery (:class:`ratelord.client._lease_io.AsyncLeases`) does the
holding: one lease per key of intent fields and resource, taken by itself once
a key is called often (:data:`ratelord.client._lease.AUTO_RATE` calls a
second), sized by the measured rate, reported in batches, renewed and released.
A lease is granted by the engine like an intent, so spending from it forwards
nothing the engine would not approve.

A call may charge several resources (an LLM call: a request and its tokens).
It runs on leases only when every one of them can be taken; otherwise what was
taken is put back and the call is asked for as one multi-cost intent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from ratelord.client._lease import HeldLease, Keeper
from ratelord.client._lease_io import AsyncLeases


@dataclass(frozen=True, slots=True)
class Taken:
    """One resource's share of a call: the lease it came from and what was taken."""

    resource: str
    lease: HeldLease
    cost: float


@dataclass(frozen=True, slots=True)
class Leased:
    """A call admitted from leases; corrected (or given back) once its answer is known."""

    taken: tuple[Taken, ...]

    def settle(self, costs: Mapping[str, float]) -> None:
        """The call really cost ``costs`` (resource → units); others cost what was taken."""
        for part in self.taken:
            real = costs.get(part.resource)
            if real is not None and real != part.cost:
                part.lease.adjust(real - part.cost)

    def give_back(self) -> None:
        """The call never reached the upstream: nothing was spent."""
        for part in self.taken:
            part.lease.adjust(-part.cost)


async def spend(
    leases: AsyncLeases, fields: Mapping[str, Any], costs: Mapping[str, float]
) -> Leased | None:
    """Take every resource of ``costs`` from the key's leases, or nothing (None: ask)."""
    base = {name: value for name, value in fields.items() if name not in ("costs", "cost")}
    taken: list[Taken] = []
    for resource, cost in costs.items():
        if cost <= 0:
            continue
        own: dict[str, Any] = base | {"resource": resource}
        held = await leases.spend(Keeper.key_of(own), cost, None, partial(dict, own))
        if held is None:
            Leased(tuple(taken)).give_back()
            return None
        taken.append(Taken(resource, held, cost))
    return Leased(tuple(taken)) if taken else None
