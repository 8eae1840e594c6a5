"""How lease events change the projections (joined to :mod:`ratelord.engine.state`'s table).

The units a lease is granted leave the pool's ``remaining`` at once and are
counted in ``pool.leased`` until the holder reports them spent or they come
back (release, expiry, shrink, revocation).  So every forecast, every intent
and every other lease sees a pool without them, and an observation of the
provider (which cannot know of units not yet spent) subtracts them again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ratelord.engine.events import (
    LeaseDecided,
    LeaseEnded,
    LeaseReported,
    LeaseRevised,
    event_type_of,
)
from ratelord.engine.forecast import note, observe
from ratelord.engine.state import (
    LeaseRecord,
    State,
    _attribute,
    _debit,
    _newest,
    book_after_reset,
    note_demand,
)

#: How many ended leases' ids (and why they ended) the state remembers.
ENDED_MEMORY = 10_000
#: How many ended leases the state keeps whole, for late reports of what was spent from them.
CLOSED_MEMORY = 256
#: What a holder may have spent and not reported yet: its rate over this many seconds
#: (the SDK reports every second).
IN_FLIGHT_SECONDS = 2.0

Handler = Callable[[State, Any], None]


def unreported(state: State, pool_id: str) -> float:
    """Units of ``pool_id`` its leases' holders may have spent and not reported yet.

    The provider saw them go; ratelord still counts them leased until the next
    report.  Each live lease: its holder's rate over :data:`IN_FLIGHT_SECONDS`, at
    most what it holds (none without a rate: use nobody can account for is unseen).
    """
    total = 0.0
    for lease in state.leases.values():
        per = lease.pools.get(pool_id)
        if per and lease.rate:
            total += min(lease.unspent, lease.rate * IN_FLIGHT_SECONDS) * per
    return total


def _lease_decided(state: State, event: LeaseDecided) -> None:
    p = event.payload
    granted = float(p.granted)
    shares = p.pool_shares()
    if granted <= 0 or not shares or any(pool_id not in state.pools for pool_id in shares):
        return
    dims = event.dimensions
    state.leases[p.lease_id] = LeaseRecord(
        lease_id=p.lease_id,
        agent_id=dims.agent_id,
        identity_id=dims.identity_id,
        workload_id=dims.workload_id,
        scope_id=dims.scope_id,
        pools=shares,
        urgency=p.urgency,
        weight=float(p.weight),
        requested=float(p.requested),
        granted=granted,
        rate=p.rate,
        granted_at=event.ts_event,
        expires_at=float(p.expires_at),
    )
    paced = p.paced_pools()
    for pool_id, per in shares.items():
        pool = state.pools[pool_id]
        units = granted * per
        pool.remaining = max(0.0, pool.remaining - units)
        pool.leased += units
        pool.reserved_since_observation += units
        book_after_reset(pool, event.ts_event, units)
        note_demand(pool, event.ts_event, event.ts_event)
        if pool_id in paced:
            pool.paced_until = max(pool.paced_until, float(paced[pool_id]))
        pool.record_history(event.ts_event)
        pool.version += 1


def _lease_reported(state: State, event: LeaseReported) -> None:
    p = event.payload
    lease = state.leases.get(p.lease_id)
    live = lease is not None
    if lease is None:  # ended before its holder knew: all it spent is beyond the grant
        lease = state.leases_closed.get(p.lease_id)
        if lease is None:
            return
    if p.rate is not None:
        lease.rate = float(p.rate)
    spent = float(p.spent)
    within = min(spent, lease.unspent) if live else 0.0
    lease.spent += max(0.0, spent)
    dims = {
        "agent_id": lease.agent_id,
        "identity_id": lease.identity_id,
        "scope_id": lease.scope_id,
    }
    for pool_id, per in lease.pools.items():
        pool = state.pools.get(pool_id)
        if pool is None:
            continue
        note_demand(pool, event.ts_event, event.ts_event)
        if spent <= 0:
            continue
        pool.leased = max(0.0, pool.leased - within * per)
        pool.immediate_since_observation += within * per  # it reached the provider
        if spent > within:  # spent beyond the grant: real consumption nobody reserved
            _debit(pool, (spent - within) * per, event.ts_event, dims)
        observe(pool.burn, within * per, event.ts_event)
        if lease.urgency == "high":  # urgent work's spending sizes the urgent reserve
            note(pool.urgent, spent * per, event.ts_event)
        _attribute(pool, dims, within * per)
        pool.version += 1


def _give_back(state: State, lease: LeaseRecord, units: float, ts: float) -> None:
    """``units`` of the lease come back to each of its pools (its share of each)."""
    if units <= 0:
        return
    for pool_id, per in lease.pools.items():
        pool = state.pools.get(pool_id)
        if pool is None:
            continue
        back = units * per
        pool.leased = max(0.0, pool.leased - back)
        # Units the provider's last word did not cover (a shortfall) do not come back.
        absorbed = min(back, pool.shortfall)
        pool.shortfall -= absorbed
        pool.remaining += back - absorbed
        pool.reserved_since_observation = max(0.0, pool.reserved_since_observation - back)
        book_after_reset(pool, lease.granted_at, -back)
        pool.record_history(ts)
        pool.version += 1


def _lease_revised(state: State, event: LeaseRevised) -> None:
    p = event.payload
    lease = state.leases.get(p.lease_id)
    if lease is None:
        return
    granted = max(lease.spent, float(p.granted))
    if granted < lease.granted:
        _give_back(state, lease, min(lease.granted - granted, lease.unspent), event.ts_event)
    lease.granted = granted


def _lease_ended(state: State, event: LeaseEnded) -> None:
    p = event.payload
    lease = state.leases.pop(p.lease_id, None)
    if lease is None:
        return
    _give_back(state, lease, lease.unspent, event.ts_event)
    state.leases_ended[lease.lease_id] = p.status
    if len(state.leases_ended) > 2 * ENDED_MEMORY:
        state.leases_ended = _newest(state.leases_ended, ENDED_MEMORY)
    state.leases_closed[lease.lease_id] = lease
    if len(state.leases_closed) > 2 * CLOSED_MEMORY:
        state.leases_closed = _newest(state.leases_closed, CLOSED_MEMORY)


HANDLERS: dict[str, Handler] = {
    event_type_of(LeaseDecided): _lease_decided,
    event_type_of(LeaseReported): _lease_reported,
    event_type_of(LeaseRevised): _lease_revised,
    event_type_of(LeaseEnded): _lease_ended,
}
