"""The fast path of ``client.guard(...)``: a call spent from a lease this process holds.

``Client.guard`` (and ``AsyncClient.guard``) return a leased guard when the
call's key already holds a lease: entering it spends from the lease (a dict
lookup, a lock and an add) without parsing the guard's options, which would
cost as much as the spend itself (``lease_take_us`` in ``bench/bench_leases.py``).
If the lease cannot serve the call (used up, expired, ended), the guard parses
its options and goes the ordinary way (:class:`~ratelord.client._guard.Guard`:
a new lease, or a decision per call).

Flat on purpose: every attribute set or call saved here is a few percent of a
leased call.  Unknown keyword arguments are not looked for on this path (the
type checker finds them, and the ordinary path, which every key takes before
it holds a lease and again at each renewal, refuses them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from ratelord.client._guard import AsyncGuard, Guard, GuardOptions, _GuardState
from ratelord.client._lease import HeldLease, Keeper, labels_key


def held_for(keeper: Keeper, args: Mapping[str, Any]) -> HeldLease | None:
    """The lease a guard of ``args`` may spend from: its key's (see ``GuardOptions.lease_key``)."""
    held = keeper.held
    if not held:
        return None
    get = args.get
    if get("lease") is False:
        return None
    return held.get(
        (
            get("agent"),
            get("identity"),
            get("workload"),
            get("scope"),
            get("resource"),
            get("urgency"),
            labels_key(get("labels")),
        )
    )


class _Leased(_GuardState):
    """What both leased guards share: the spend, and the way back to the ordinary path."""

    # Class defaults: a leased call sets only what differs per call.
    allowed = True
    reason = None
    waited = 0.0

    def __init__(self, client: Any, args: Mapping[str, Any], held: HeldLease) -> None:
        self._client = client
        self._args = args
        self._held: HeldLease | None = held
        self._cost = args.get("report_cost")
        self.decision = held.decision

    def _spent(self) -> bool:
        """Spend from the lease; else make ready for the ordinary way (options parsed)."""
        held = self._held
        if held is not None and held.take(self._args.get("cost") or 1.0):
            return True
        self.options = GuardOptions(**self._args)
        self._held, self.decision, self.allowed = None, None, False
        return False

    def _taken(self) -> float:
        return self._args.get("cost") or 1.0  # type: ignore[no-any-return]


class LeasedGuard(_Leased, Guard):
    """A synchronous guard whose key holds a lease (its exit is :class:`Guard`'s)."""

    def __enter__(self) -> Self:
        if self._spent():
            return self
        return super().__enter__()


class AsyncLeasedGuard(_Leased, AsyncGuard):
    """An asynchronous guard whose key holds a lease (its exit is :class:`AsyncGuard`'s)."""

    async def __aenter__(self) -> Self:
        if self._spent():
            return self
        return await super().__aenter__()
