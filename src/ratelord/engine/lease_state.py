"""How lease events change the projections (joined to :mod:`ratelord.engine.state`'s table).

The units a lease is granted leave the pool's ``remaining`` at once and are
counted in ``pool.leased`` until the holder reports them spent or they come
back (release, expiry, shrink, revocation).  So every forecast, every intent
and every other lease sees a pool without them, and an observation of the
provider (which cannot know of units not yet spent) subtracts them again.
"""

from __future__ import annotations

from collections.abc import Callable

from ratelord.engine.events import Event, EventType
from ratelord.engine.forecast import observe
from ratelord.engine.state import (
    LeaseRecord,
    PoolState,
    State,
    _attribute,
    _debit,
    _newest,
    book_after_reset,
    note_demand,
)

#: How many ended leases' ids (and why they ended) the state remembers.
ENDED_MEMORY = 10_000

Handler = Callable[[State, Event], None]


def _lease_decided(state: State, event: Event) -> None:
    p = event.payload
    granted = float(p["granted"])
    pool = state.pools.get(p.get("pool_id") or "")
    if granted <= 0 or pool is None:
        return
    dims = event.dimensions
    state.leases[p["lease_id"]] = LeaseRecord(
        lease_id=p["lease_id"],
        agent_id=dims.agent_id,
        identity_id=dims.identity_id,
        workload_id=dims.workload_id,
        scope_id=dims.scope_id,
        pool_id=pool.pool_id,
        urgency=p["urgency"],
        weight=float(p["weight"]),
        requested=float(p["requested"]),
        granted=granted,
        rate=p.get("rate"),
        granted_at=event.ts_event,
        expires_at=float(p["expires_at"]),
    )
    pool.remaining = max(0.0, pool.remaining - granted)
    pool.leased += granted
    pool.reserved_since_observation += granted
    book_after_reset(pool, event.ts_event, granted)
    note_demand(pool, event.ts_event, event.ts_event)
    if p.get("paced_until") is not None:
        pool.paced_until = max(pool.paced_until, float(p["paced_until"]))
    pool.record_history(event.ts_event)
    pool.version += 1


def _lease_reported(state: State, event: Event) -> None:
    p = event.payload
    lease = state.leases.get(p["lease_id"])
    if lease is None:
        return
    if p.get("rate") is not None:
        lease.rate = float(p["rate"])
    spent = float(p.get("spent", 0.0))
    pool = state.pools.get(lease.pool_id)
    if pool is not None:
        note_demand(pool, event.ts_event, event.ts_event)
    if spent <= 0 or pool is None:
        return
    within = min(spent, lease.unspent)
    lease.spent += spent
    pool.leased = max(0.0, pool.leased - within)
    pool.immediate_since_observation += within  # it reached the provider
    dims = {
        "agent_id": lease.agent_id,
        "identity_id": lease.identity_id,
        "scope_id": lease.scope_id,
    }
    if spent > within:  # spent beyond the grant: real consumption nobody reserved
        _debit(pool, spent - within, event.ts_event, dims)
    observe(pool.burn, within, event.ts_event)
    _attribute(pool, dims, within)
    pool.version += 1


def _give_back(pool: PoolState | None, lease: LeaseRecord, units: float, ts: float) -> None:
    if pool is None or units <= 0:
        return
    pool.leased = max(0.0, pool.leased - units)
    pool.remaining += units
    pool.reserved_since_observation = max(0.0, pool.reserved_since_observation - units)
    book_after_reset(pool, lease.granted_at, -units)
    pool.record_history(ts)
    pool.version += 1


def _lease_revised(state: State, event: Event) -> None:
    p = event.payload
    lease = state.leases.get(p["lease_id"])
    if lease is None:
        return
    granted = max(lease.spent, float(p["granted"]))
    if granted < lease.granted:
        returned = min(lease.granted - granted, lease.unspent)
        _give_back(state.pools.get(lease.pool_id), lease, returned, event.ts_event)
    lease.granted = granted


def _lease_ended(state: State, event: Event) -> None:
    p = event.payload
    lease = state.leases.pop(p["lease_id"], None)
    if lease is None:
        return
    _give_back(state.pools.get(lease.pool_id), lease, lease.unspent, event.ts_event)
    state.leases_ended[lease.lease_id] = p["status"]
    if len(state.leases_ended) > 2 * ENDED_MEMORY:
        state.leases_ended = _newest(state.leases_ended, ENDED_MEMORY)


HANDLERS: dict[str, Handler] = {
    EventType.LEASE_DECIDED.value: _lease_decided,
    EventType.LEASE_REPORTED.value: _lease_reported,
    EventType.LEASE_REVISED.value: _lease_revised,
    EventType.LEASE_ENDED.value: _lease_ended,
}
