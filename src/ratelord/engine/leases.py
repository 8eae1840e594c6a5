"""Leases: units of a pool reserved for a holder, spent without asking (Doorman-style).

A lease is decided like an intent — the same identity checks, the same pool,
forecast and policy — for a *size*: the daemon grants all of the request, part
of it, or none, and reserves what it grants (see :mod:`ratelord.engine.lease_state`).

Sizing, in order:

* **policy and floor**: the arbiter decides an intent of the lease's size.
  Approve: the pool is not at risk.  Shape (pacing): the pool is at risk and
  the lease gets its fair part of the *paced budget*, the units the pool's
  allocation (:mod:`.allocation`: headroom for unseen use, urgent reserve, the
  horizon demand is trusted to last) lets intents spend over the lease's
  lifetime, its leases counted in.  Defer, deny or switch: none.
* **fair share**: the budget is shared among the pool's holders by weighted
  max-min fairness; a holder's demand is its recent rate over the lease's life
  (or what it asked for), its weight its urgency's weight times its own.
* **the reset**: a lease ends at the pool's reset at the latest, so units of one
  window are never carried into the next; once a reset has passed (not yet
  observed) the pool reads as refilled and a lease's units count in the new window.

:func:`maintain` runs on the daemon's clock (and the simulator's): it expires
leases past their time and, when a pool's forecast turns (WARN/CRIT) or drift
appears, shrinks leases above their fair share of the paced budget, revoking
those whose share is under one unit.  Nothing here reads the clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from ratelord.engine.allocation import Allocation, allocate
from ratelord.engine.arbitration import _Arbiter
from ratelord.engine.charges import NotChargeable
from ratelord.engine.clock import iso
from ratelord.engine.core import Engine, Gone, UnknownEntity
from ratelord.engine.events import Dimensions, Event, EventType, Source
from ratelord.engine.forecast import drift_weight
from ratelord.engine.state import LeaseRecord, PoolState, effective_remaining
from ratelord.schema import (
    Decision,
    Evaluation,
    IntentRequest,
    Lease,
    LeaseReport,
    LeaseRequest,
)

#: How much a holder's urgency weighs in the fair share.
URGENCY_WEIGHT = {"background": 0.25, "low": 0.5, "normal": 1.0, "high": 4.0}
#: A holder that reports a rate is sized for this many times its rate over the lease's life.
DEMAND_HEADROOM = 1.5
#: A lease is shrunk only when it holds this many times its fair share (no churn).
SHRINK_SLACK = 1.25
#: Drift this recent (its decayed weight above this) counts as "drift appeared".
DRIFT_ALERT = 0.5


@dataclass(frozen=True, slots=True)
class Claim:
    """One holder's demand on a pool, for :func:`fair_shares`."""

    key: str
    demand: float
    weight: float


def fair_shares(budget: float, claims: Iterable[Claim]) -> dict[str, float]:
    """Weighted max-min fair shares of ``budget`` (water-filling).

    Holders wanting less than their weighted part get what they want; what they
    leave is shared among the rest by weight.
    """
    pending = sorted(claims, key=lambda c: c.demand / c.weight)
    weight_left = sum(c.weight for c in pending)
    left = max(0.0, budget)
    shares: dict[str, float] = {}
    for claim in pending:
        part = left * claim.weight / weight_left if weight_left > 0 else 0.0
        share = min(claim.demand, part)
        shares[claim.key] = share
        left -= share
        weight_left -= claim.weight
    return shares


def weight_of(urgency: str, weight: float) -> float:
    return URGENCY_WEIGHT.get(urgency, 1.0) * weight


def demand_of(units: float, rate: float | None, ttl: float) -> float:
    """What a holder can use over ``ttl``: its rate with headroom, never more than it asked."""
    if rate is None or rate <= 0:
        return units
    return min(units, max(1.0, rate * ttl * DEMAND_HEADROOM))


# ---------------------------------------------------------------------- decide


def decide_lease(engine: Engine, request: LeaseRequest, now: float) -> tuple[Lease, list[Event]]:
    """Grant all, part or none of ``request``; the lease and its (one) event."""
    lease_id = engine.ids("lse")
    sizing = _Sizing(engine, request, now, lease_id).run()
    dims = Dimensions(
        agent_id=request.agent_id,
        identity_id=request.identity_id,
        workload_id=request.workload_id,
        scope_id=request.scope_id,
    )
    evaluation = sizing.decision.evaluation if sizing.decision else None
    payload = {
        "lease_id": lease_id,
        "status": "active" if sizing.granted > 0 else "refused",
        "pool_id": sizing.pool_id,
        "requested": request.units,
        "granted": sizing.granted,
        "urgency": request.urgency,
        "weight": request.weight,
        "rate": request.rate,
        "expires_at": sizing.expires_at,
        "reason": sizing.reason,
        "defer_until": sizing.defer_until,
        "identity_switch": sizing.identity_switch,
        "paced_until": sizing.paced_until,
        "rules_fired": evaluation.rules_fired if evaluation else [],
        "p_exhaustion": evaluation.p_exhaustion if evaluation else None,
    }
    event = engine.emit(
        EventType.LEASE_DECIDED,
        now,
        payload,
        dimensions=dims,
        source=Source(origin_kind="client", origin_id=request.agent_id),
        pool_id=sizing.pool_id,
        correlation_id=lease_id,
    )
    events = [event]
    if sizing.granted > 0 and sizing.pool_id is not None:
        events += engine.refresh_forecasts([sizing.pool_id], now, correlation_id=lease_id)
    record = engine.state.leases.get(lease_id)
    if record is not None:
        return view(record, "active", evaluation=evaluation, reason=sizing.reason), events
    return (
        Lease(
            lease_id=lease_id,
            status="refused",
            holder=request.agent_id,
            identity_id=request.identity_id,
            pool_id=sizing.pool_id,
            urgency=request.urgency,
            requested=request.units,
            granted=0.0,
            spent=0.0,
            available=0.0,
            expires_at=None,
            rate=request.rate,
            reason=sizing.reason,
            defer_until=sizing.defer_until,
            identity_switch=sizing.identity_switch,
            evaluation=evaluation,
        ),
        events,
    )


@dataclass(slots=True)
class _Outcome:
    granted: float = 0.0
    pool_id: str | None = None
    expires_at: float = 0.0
    reason: str | None = None
    defer_until: str | None = None
    identity_switch: str | None = None
    decision: Decision | None = None
    paced_until: float | None = None


class _Sizing:
    """One lease request's sizing; a class only to keep the steps small and named."""

    def __init__(self, engine: Engine, request: LeaseRequest, now: float, lease_id: str):
        self.engine = engine
        self.request = request
        self.now = now
        self.lease_id = lease_id

    def _arbiter(self, cost: float) -> _Arbiter:
        r = self.request
        intent = IntentRequest(
            agent_id=r.agent_id,
            identity_id=r.identity_id,
            workload_id=r.workload_id,
            scope_id=r.scope_id,
            urgency=r.urgency,
            resource=r.resource,
            cost=cost,
            labels=r.labels,
        )
        return _Arbiter(self.engine, intent, self.now, self.lease_id)

    def run(self) -> _Outcome:
        request, state = self.request, self.engine.state
        outcome = _Outcome()
        arbiter = self._arbiter(request.units)
        decision = arbiter.run()[0]
        outcome.decision = decision
        record = state.identities.get(request.identity_id)
        try:
            charges = arbiter._charges(record) if record is not None else {}
        except NotChargeable:
            charges = {}
        if len(charges) > 1:
            outcome.reason = (
                f"workload {request.workload_id!r} draws from {len(charges)} pools; "
                "a lease covers one: name a 'resource'"
            )
            return outcome
        if arbiter.budget is not None and arbiter.budget.money:
            outcome.reason = (
                f"{request.resource or 'this resource'} counts in money budget "
                f"{arbiter.budget.views[0].budget_id!r}, which a lease cannot charge: ask per call"
            )
            return outcome
        if len(charges) == 1:
            outcome.pool_id = next(iter(charges))
        pool = state.pools.get(outcome.pool_id or "")
        if pool is None:
            outcome.reason = decision.reason or "the pool has not been observed yet; retry shortly"
            return outcome
        ttl = self._ttl(pool)
        outcome.expires_at = self.now + ttl
        budget = self._budget(pool, decision, ttl)
        if budget is None:
            self._refused(outcome, decision)
            return outcome
        demand = demand_of(request.units, request.rate, ttl)
        claims = _claims(_holders(state.leases.values(), pool.pool_id), self.now)
        claims.append(Claim(self.lease_id, demand, weight_of(request.urgency, request.weight)))
        remaining = effective_remaining(pool, self.now)
        shared = (
            window_budget(self.engine, pool, self.now, ttl)
            if budget.rate
            else remaining + pool.leased
        )
        share = fair_shares(shared, claims)[self.lease_id]
        most = min(request.units, share, budget.units, remaining)
        granted = math.floor(max(0.0, most) * 1000) / 1000
        if granted < max(request.min_units, 1e-9):
            outcome.reason = (
                f"only {granted:g} of {pool.pool_id} can be leased now "
                f"(asked {request.units:g}, at least {request.min_units:g}); "
                "ask per call or retry later"
            )
            outcome.defer_until = iso(budget.fits(request.min_units, self.now, ttl))
            return outcome
        outcome.granted = granted
        if budget.rate:
            outcome.paced_until = budget.start + granted / budget.rate
        if granted < request.units:
            outcome.reason = decision.reason or (
                f"granted {granted:g} of {request.units:g}: "
                f"the fair share of {pool.pool_id} for {ttl:.0f} s"
            )
        return outcome

    def _ttl(self, pool: PoolState) -> float:
        """The requested lifetime, ending at the pool's (next plausible) reset at the latest."""
        ttl = self.request.ttl_seconds
        if pool.reset_at is not None and pool.reset_at > self.now:
            ttl = min(ttl, pool.reset_at - self.now)
        elif pool.reset_at is not None:  # passed, not observed yet: the next one, or imminent
            to_reset = self.engine.forecast(pool, self.now).seconds_to_reset
            ttl = min(ttl, to_reset if to_reset is not None else ttl)
        return max(ttl, 0.001)

    def _budget(self, pool: PoolState, decision: Decision, ttl: float) -> _Budget | None:
        """What this lease may take at most; None: nothing may be leased."""
        if decision.decision == "approve":
            return _Budget(math.inf)
        if _paced(decision):
            return self._paced(pool, ttl)
        # The whole ask did not fit (floor, policy): halve it until one does.
        request = self.request
        size = min(request.units, effective_remaining(pool, self.now))
        smallest = max(request.min_units, min(1.0, request.units))
        while size >= smallest:
            smaller = self._arbiter(size).run()[0]
            if smaller.decision == "approve":
                return _Budget(size)
            if _paced(smaller):
                paced = self._paced(pool, ttl)
                return _Budget(min(size, paced.units), paced.rate, paced.start)
            size /= 2
        return None

    def _paced(self, pool: PoolState, ttl: float) -> _Budget:
        """The paced flow: what fits between the pool's pacing cursor and the lease's end.

        The pace is an intent's (:mod:`.allocation`): the budget left after the
        headroom for unseen use and the urgent reserve, spread over the time
        demand is trusted to last.  Intents and leases share one cursor
        (``pool.paced_until``): each paced grant moves it on by the time its
        units occupy at that pace, so a holder that spends its lease at once and
        asks again cannot outrun it.
        """
        allocation = _allocation(self.engine, pool, self.now, urgent=self.request.urgency == "high")
        if not math.isfinite(allocation.rate):
            return _Budget(max(0.0, allocation.budget))
        start = max(pool.paced_until, self.now)
        units = min(allocation.budget, max(0.0, self.now + ttl - start) * allocation.rate)
        return _Budget(max(0.0, units), allocation.rate, start)

    def _refused(self, outcome: _Outcome, decision: Decision) -> None:
        mods = decision.modifications
        outcome.reason = decision.reason or "refused by policy"
        outcome.defer_until = mods.defer_until
        outcome.identity_switch = mods.identity_switch


@dataclass(frozen=True, slots=True)
class _Budget:
    """The most one lease may take; paced: at ``rate`` units/s from ``start``."""

    units: float
    rate: float | None = None
    start: float = 0.0

    def fits(self, units: float, now: float, ttl: float) -> float:
        """When a lease of ``units`` will fit (ask again then)."""
        if not self.rate:
            return now
        return max(now, self.start + units / self.rate - ttl)


def _paced(decision: Decision) -> bool:
    """Approved with a wait only: the pool is at risk and its traffic is paced."""
    mods = decision.modifications
    return (
        decision.decision == "approve_with_modifications"
        and not mods.defer_until
        and not mods.identity_switch
    )


def _allocation(engine: Engine, pool: PoolState, now: float, *, urgent: bool = False) -> Allocation:
    """The pool's allocation as a paced intent would see it now (nothing booked)."""
    to_reset = engine.forecast(pool, now).seconds_to_reset
    window = engine.window_for(pool)
    return allocate(pool, now, 0.0, to_reset, window_seconds=window, urgent=urgent, book=False)


def window_budget(engine: Engine, pool: PoolState, now: float, horizon: float) -> float:
    """The units ``pool``'s holders may spend over ``horizon`` at its pace, their leases in it.

    The pool is allocated as if its leases came back: the headroom for unseen use
    and the urgent reserve are kept from leased units too.
    """
    returned = msgspec.structs.replace(pool, remaining=pool.remaining + pool.leased)
    allocation = _allocation(engine, returned, now)
    budget = max(0.0, allocation.budget)
    if math.isfinite(allocation.rate):
        budget = min(budget, allocation.rate * horizon)
    return budget


def _holders(leases: Iterable[LeaseRecord], pool_id: str) -> list[LeaseRecord]:
    return [lease for lease in leases if lease.pool_id == pool_id]


def _claims(leases: list[LeaseRecord], now: float) -> list[Claim]:
    return [
        Claim(lease.lease_id, _demand_of_lease(lease, now), weight_of(lease.urgency, lease.weight))
        for lease in leases
    ]


def _demand_of_lease(lease: LeaseRecord, now: float) -> float:
    """A live lease's claim: its rate over the rest of its life, else what it has left."""
    left = max(0.0, lease.expires_at - now)
    if lease.rate is None:
        return lease.unspent
    return min(lease.unspent, max(1.0, lease.rate * left * DEMAND_HEADROOM))


# ---------------------------------------------------------------------- holders


def lease_of(engine: Engine, lease_id: str) -> LeaseRecord:
    """The live lease, or a 404 (410 when it has ended) that says what to do."""
    lease = engine.state.leases.get(lease_id)
    if lease is not None:
        return lease
    ended = engine.state.leases_ended.get(lease_id)
    if ended is not None:
        raise Gone("lease_ended", f"lease {lease_id!r} was {ended}; ask for a new one")
    raise UnknownEntity("unknown_lease", f"no lease {lease_id!r}; ask for one first")


def report(
    engine: Engine, lease_id: str, body: LeaseReport, now: float
) -> tuple[Lease, list[Event]]:
    """Spent units (a batch since the last report) and the holder's recent rate."""
    lease = lease_of(engine, lease_id)
    events = [_reported(engine, lease, body, now)]
    events += engine.refresh_forecasts([lease.pool_id], now, correlation_id=lease_id, lazy=True)
    return view(lease, "active"), events


def release(
    engine: Engine, lease_id: str, body: LeaseReport, now: float
) -> tuple[Lease, list[Event]]:
    """The holder is done: its last spend is counted and the unspent units return."""
    lease = lease_of(engine, lease_id)
    events = [_reported(engine, lease, body, now)] if body.spent or body.rate is not None else []
    events.append(_end(engine, lease, "released", now, "released by its holder"))
    events += engine.refresh_forecasts([lease.pool_id], now, correlation_id=lease_id, lazy=True)
    return view(lease, "released"), events


def _reported(engine: Engine, lease: LeaseRecord, body: LeaseReport, now: float) -> Event:
    return engine.emit(
        EventType.LEASE_REPORTED,
        now,
        {"lease_id": lease.lease_id, "spent": body.spent, "rate": body.rate},
        dimensions=_dims(lease),
        source=Source(origin_kind="client", origin_id=lease.agent_id),
        pool_id=lease.pool_id,
        correlation_id=lease.lease_id,
    )


def _end(engine: Engine, lease: LeaseRecord, status: str, now: float, reason: str) -> Event:
    return engine.emit(
        EventType.LEASE_ENDED,
        now,
        {
            "lease_id": lease.lease_id,
            "status": status,
            "returned": lease.unspent,
            "spent": lease.spent,
            "reason": reason,
        },
        dimensions=_dims(lease),
        pool_id=lease.pool_id,
        correlation_id=lease.lease_id,
    )


def _dims(lease: LeaseRecord) -> Dimensions:
    return Dimensions(
        agent_id=lease.agent_id,
        identity_id=lease.identity_id,
        workload_id=lease.workload_id,
        scope_id=lease.scope_id,
    )


# ---------------------------------------------------------------------- upkeep


def maintain(engine: Engine, now: float) -> list[Event]:
    """Expire leases past their time; shrink or revoke where a pool's forecast turned."""
    state = engine.state
    events: list[Event] = []
    for lease in [lease for lease in state.leases.values() if lease.expires_at <= now]:
        events.append(_end(engine, lease, "expired", now, "its time ran out"))
    touched = sorted({lease.pool_id for lease in state.leases.values()})
    for pool_id in touched:
        pool = state.pools.get(pool_id)
        if pool is not None:
            events += _rebalance(engine, pool, now)
    freed = sorted({e.pool_id for e in events if e.pool_id})
    if freed:
        events += engine.refresh_forecasts(freed, now, lazy=True)
    return events


def _turned(pool: PoolState, now: float) -> str | None:
    """Why leases of ``pool`` must be looked at again, or None while all is well."""
    if drift_weight(pool.drift_score, pool.drift_ts, now) > DRIFT_ALERT:
        return f"drift on {pool.pool_id}: consumption ratelord did not see"
    if pool.posture != "OK":
        return f"the forecast of {pool.pool_id} turned {pool.posture}"
    return None


def _rebalance(engine: Engine, pool: PoolState, now: float) -> list[Event]:
    why = _turned(pool, now)
    if why is None:
        return []
    holders = _holders(engine.state.leases.values(), pool.pool_id)
    horizon = max(lease.expires_at - now for lease in holders)
    budget = window_budget(engine, pool, now, horizon)
    shares = fair_shares(budget, _claims(holders, now))
    events: list[Event] = []
    for lease in holders:
        share = shares[lease.lease_id]
        if lease.unspent <= share * SHRINK_SLACK + 1.0:
            continue
        revoked = share < 1.0
        events.append(_revise(engine, lease, lease.spent + math.floor(share), why, revoked, now))
        if revoked:
            events.append(_end(engine, lease, "revoked", now, why))
    return events


def _revise(
    engine: Engine, lease: LeaseRecord, granted: float, why: str, revoked: bool, now: float
) -> Event:
    """A shrink, pushed on the event stream as ``lease_revised`` (which holders watch).

    A revocation is a shrink to what was spent (``revoked``: true), then the lease's end.
    """
    return engine.emit(
        EventType.LEASE_REVISED,
        now,
        {
            "lease_id": lease.lease_id,
            "granted": lease.spent if revoked else granted,
            "from": lease.granted,
            "revoked": revoked,
            "reason": why,
        },
        dimensions=_dims(lease),
        pool_id=lease.pool_id,
        correlation_id=lease.lease_id,
    )


# ---------------------------------------------------------------------- views


def view(
    lease: LeaseRecord,
    status: str,
    *,
    evaluation: Evaluation | None = None,
    reason: str | None = None,
) -> Lease:
    return Lease(
        lease_id=lease.lease_id,
        status=status,  # type: ignore[arg-type]
        holder=lease.agent_id,
        identity_id=lease.identity_id,
        pool_id=lease.pool_id,
        urgency=lease.urgency,  # type: ignore[arg-type]
        requested=lease.requested,
        granted=lease.granted,
        spent=lease.spent,
        available=lease.unspent,
        expires_at=iso(lease.expires_at),
        rate=lease.rate,
        reason=reason,
        evaluation=evaluation,
    )
