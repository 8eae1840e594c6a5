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
* **urgent work first**: a lease of lower urgency is granted outside the urgent
  reserve, and gives units back when urgent work arrives after it (see :func:`maintain`).
* **the reset**: a lease ends at the pool's reset at the latest, so units of one
  window are never carried into the next; once a reset has passed (not yet
  observed) the pool reads as refilled and a lease's units count in the new window.

:func:`maintain` runs on the daemon's clock (and the simulator's): it expires
leases past their time; when a pool's forecast turns (WARN/CRIT) or drift
appears, it shrinks leases above their fair share of the paced budget; when the
urgent reserve (or the headroom for unseen use) grows beyond what the pool has
unleased, it shrinks leases of lower urgency by what is missing.  A lease whose
share is under one unit is revoked.  Nothing here reads the clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from ratelord.engine.allocation import Allocation, allocate
from ratelord.engine.arbitration import _Arbiter
from ratelord.engine.charges import ChargeError, NotChargeable, validate_intent
from ratelord.engine.clock import iso
from ratelord.engine.core import Engine, EngineError, Gone, UnknownEntity
from ratelord.engine.events import (
    Dimensions,
    Event,
    LeaseDecidedPayload,
    LeaseEndedPayload,
    LeaseReportedPayload,
    LeaseRevisedPayload,
    Source,
)
from ratelord.engine.forecast import drift_weight
from ratelord.engine.lease_state import IN_FLIGHT_SECONDS
from ratelord.engine.state import LeaseRecord, PoolState, State, effective_remaining
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
    """Grant all, part or none of ``request``; the lease and its (one) event.

    :class:`EngineError` (400, nothing logged) for what an intent is refused for
    too: a workload that is not configured and no resource (a guess of its pools).
    """
    if request.resource is None:
        try:
            validate_intent(engine.config.workloads, _as_intent(request, request.units))
        except ChargeError as exc:
            raise EngineError(exc.code, exc.message) from None
    lease_id = engine.ids("lse")
    sizing = _Sizing(engine, request, now, lease_id).run()
    dims = Dimensions(
        agent_id=request.agent_id,
        identity_id=request.identity_id,
        workload_id=request.workload_id,
        scope_id=request.scope_id,
    )
    evaluation = sizing.decision.evaluation if sizing.decision else None
    pool_id = next(iter(sizing.pools)) if len(sizing.pools) == 1 else None
    payload = LeaseDecidedPayload(
        lease_id=lease_id,
        status="active" if sizing.granted > 0 else "refused",
        pool_id=pool_id,
        pools=sizing.pools,
        requested=request.units,
        granted=sizing.granted,
        urgency=request.urgency,
        weight=request.weight,
        rate=request.rate,
        expires_at=sizing.expires_at,
        reason=sizing.reason,
        defer_until=sizing.defer_until,
        identity_switch=sizing.identity_switch,
        paced=sizing.paced,
        rules_fired=evaluation.rules_fired if evaluation else [],
        p_exhaustion=evaluation.p_exhaustion if evaluation else None,
    )
    event = engine.emit(
        payload,
        now,
        dimensions=dims,
        source=Source(origin_kind="client", origin_id=request.agent_id),
        pool_id=pool_id or sizing.tightest,
        correlation_id=lease_id,
    )
    events = [event]
    if sizing.granted > 0:
        events += engine.refresh_forecasts(list(sizing.pools), now, correlation_id=lease_id)
    record = engine.state.leases.get(lease_id)
    if record is not None:
        return view(record, "active", evaluation=evaluation, reason=sizing.reason), events
    return (
        Lease(
            lease_id=lease_id,
            status="refused",
            holder=request.agent_id,
            identity_id=request.identity_id,
            workload_id=request.workload_id,
            pool_id=pool_id,
            pools=sizing.pools,
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


def _as_intent(r: LeaseRequest, cost: float) -> IntentRequest:
    """The intent a lease of ``cost`` units is decided as."""
    return IntentRequest(
        agent_id=r.agent_id,
        identity_id=r.identity_id,
        workload_id=r.workload_id,
        scope_id=r.scope_id,
        urgency=r.urgency,
        resource=r.resource,
        cost=cost,
        labels=r.labels,
    )


@dataclass(slots=True)
class _Outcome:
    granted: float = 0.0
    #: Pool id → units of it one lease unit holds (the workload's costs; one pool: 1).
    pools: dict[str, float] = field(default_factory=dict)
    #: The pool that limited the grant most.
    tightest: str | None = None
    expires_at: float = 0.0
    reason: str | None = None
    defer_until: str | None = None
    identity_switch: str | None = None
    decision: Decision | None = None
    #: Pool id → its pacing cursor once this lease's units are booked (paced pools only).
    paced: dict[str, float] = field(default_factory=dict)


class _Sizing:
    """One lease request's sizing; a class only to keep the steps small and named.

    Sizes are in the lease's units; a workload lease's unit holds ``per`` units
    of each of its pools (the workload's costs), and each pool's limits are
    divided by its ``per`` to compare them.  All the pools or none: the grant is
    the smallest any pool allows.
    """

    def __init__(self, engine: Engine, request: LeaseRequest, now: float, lease_id: str):
        self.engine = engine
        self.request = request
        self.now = now
        self.lease_id = lease_id

    def _arbiter(self, cost: float) -> _Arbiter:
        return _Arbiter(self.engine, _as_intent(self.request, cost), self.now, self.lease_id)

    def _per_unit(self) -> dict[str, float]:
        """Pool id → units of it one unit of the lease holds (charges of a one-unit intent)."""
        record = self.engine.state.identities.get(self.request.identity_id)
        if record is None:
            return {}
        try:
            charges = self._arbiter(1.0)._charges(record)
        except NotChargeable:
            return {}
        return {pool_id: per for pool_id, per in sorted(charges.items()) if per > 0}

    def run(self) -> _Outcome:
        request, state = self.request, self.engine.state
        outcome = _Outcome()
        arbiter = self._arbiter(request.units)
        decision = arbiter.run().decision
        outcome.decision = decision
        if arbiter.budget is not None and arbiter.budget.money:
            outcome.reason = (
                f"{request.resource or 'this resource'} counts in money budget "
                f"{arbiter.budget.views[0].budget_id!r}, which a lease cannot charge: ask per call"
            )
            return outcome
        per = self._per_unit()
        pools = [state.pools.get(pool_id) for pool_id in per]
        if not per or any(pool is None for pool in pools):
            outcome.reason = decision.reason or "the pool has not been observed yet; retry shortly"
            return outcome
        outcome.pools = per
        limits = [_Limits(self, pool, per[pool.pool_id]) for pool in pools if pool is not None]
        ttl = min(limit.ttl for limit in limits)
        outcome.expires_at = self.now + ttl
        ceiling = self._ceiling(decision, limits)
        if ceiling is None:
            self._refused(outcome, decision)
            return outcome
        size, paced = ceiling
        demand = demand_of(request.units, request.rate, ttl)
        weight = weight_of(request.urgency, request.weight)
        for limit in limits:
            limit.size(ttl, demand, weight, paced=paced)
        tightest = min(limits, key=lambda limit: limit.most)
        outcome.tightest = tightest.pool.pool_id
        granted = _in_calls(min(size, tightest.most), request.units, request.min_units)
        if granted < max(request.min_units, 1e-9):
            outcome.reason = (
                f"only {granted:g} of {tightest.name} can be leased now "
                f"(asked {request.units:g}, at least {request.min_units:g}); "
                "ask per call or retry later"
            )
            fits = max(limit.fits(request.min_units, self.now, ttl) for limit in limits)
            outcome.defer_until = iso(fits)
            return outcome
        outcome.granted = granted
        outcome.paced = {
            limit.pool.pool_id: limit.cursor(granted) for limit in limits if limit.budget.rate
        }
        if granted < request.units:
            outcome.reason = decision.reason or (
                f"granted {granted:g} of {request.units:g}: "
                f"the fair share of {tightest.name} for {ttl:.0f} s"
            )
        return outcome

    def _ceiling(self, decision: Decision, limits: list[_Limits]) -> tuple[float, bool] | None:
        """The most the policy and the floor allow (lease units), and whether it is paced.

        None: nothing may be leased.
        """
        if decision.decision == "approve":
            return math.inf, False
        if _paced(decision):
            return math.inf, True
        # The whole ask did not fit (floor, policy): halve it until one does.
        request = self.request
        size = min(request.units, min(limit.remaining / limit.per for limit in limits))
        smallest = max(request.min_units, min(1.0, request.units))
        while size >= smallest:
            smaller = self._arbiter(size).run().decision
            if smaller.decision == "approve":
                return size, False
            if _paced(smaller):
                return size, True
            size /= 2
        return None

    def _refused(self, outcome: _Outcome, decision: Decision) -> None:
        mods = decision.modifications
        outcome.reason = decision.reason or "refused by policy"
        outcome.defer_until = mods.defer_until
        outcome.identity_switch = mods.identity_switch


class _Limits:
    """What one pool of the lease allows, in lease units (its own units / ``per``)."""

    def __init__(self, sizing: _Sizing, pool: PoolState, per: float) -> None:
        self.sizing = sizing
        self.pool = pool
        self.name = pool.pool_id
        self.per = per
        engine, now = sizing.engine, sizing.now
        self.remaining = effective_remaining(pool, now)
        self.to_reset = engine.forecast(pool, now).seconds_to_reset
        self.ttl, self.at_reset = self._ttl(sizing.request.ttl_seconds)
        self.budget = _Budget(math.inf)
        self.most = math.inf

    def _ttl(self, asked: float) -> tuple[float, bool]:
        """The requested lifetime, ending at the pool's (next plausible) reset at the latest;
        and whether the reset ends it."""
        pool, ttl = self.pool, asked
        if pool.reset_at is not None and pool.reset_at > self.sizing.now:
            ttl = min(ttl, pool.reset_at - self.sizing.now)
        elif pool.reset_at is not None and self.to_reset is not None:
            ttl = min(ttl, self.to_reset)  # passed, not observed yet: the next one, or imminent
        return max(ttl, 0.001), ttl < asked

    def size(self, ttl: float, demand: float, weight: float, *, paced: bool) -> None:
        """The most this pool lets the lease have: its pace, its fair share, what is left."""
        engine, pool, now = self.sizing.engine, self.pool, self.sizing.now
        # A lease that ends at the reset may have every unit paced until the window's end
        # (its skew included): its holder spends them before the reset, where calls paced
        # one by one into the skew would land in the next window.
        horizon = ttl
        if ttl >= self.ttl and self.at_reset and self.to_reset is not None:
            horizon = max(ttl, self.to_reset)
        if paced:
            self.budget = self._paced(horizon)
        claims = _claims(_holders(engine.state.leases.values(), pool.pool_id), now, pool.pool_id)
        claims.append(Claim(self.sizing.lease_id, demand * self.per, weight))
        shared = (
            window_budget(engine, pool, now, horizon)
            if self.budget.rate
            else self.remaining + pool.leased
        )
        share = fair_shares(shared, claims)[self.sizing.lease_id]
        self.most = max(0.0, min(share, self.budget.units, self.remaining)) / self.per

    def _paced(self, horizon: float) -> _Budget:
        """The paced flow: what fits between the pool's pacing cursor and ``horizon``.

        The pace is an intent's (:mod:`.allocation`): the budget left after the
        headroom for unseen use and the urgent reserve, spread over the time
        demand is trusted to last.  Intents and leases share one cursor
        (``pool.paced_until``): each paced grant moves it on by the time its
        units occupy at that pace, so a holder that spends its lease at once and
        asks again cannot outrun it.
        """
        sizing = self.sizing
        urgent = sizing.request.urgency == "high"
        allocation = _allocation(sizing.engine, self.pool, sizing.now, urgent=urgent)
        if not math.isfinite(allocation.rate):
            return _Budget(max(0.0, allocation.budget))
        start = max(self.pool.paced_until, sizing.now)
        if self.to_reset is not None and start >= sizing.now + self.to_reset:
            start = sizing.now  # booked to the reset, budget left: spread from now, as intents
        units = min(allocation.budget, max(0.0, sizing.now + horizon - start) * allocation.rate)
        return _Budget(max(0.0, units), allocation.rate, start)

    def cursor(self, granted: float) -> float:
        """The pool's pacing cursor once ``granted`` lease units are booked on it.

        A lease that ends at the reset books the pace to the reset: its holder
        spends its units before it, and budget left in the window (headroom and
        reserve released, units given back) is then spread from now, as the
        allocation does once the slots booked reach the reset, not paced into
        the reset's skew, where calls would land in the next window.
        """
        budget = self.budget
        assert budget.rate
        cursor = budget.start + granted * self.per / budget.rate
        if self.at_reset and self.to_reset is not None:
            cursor = max(cursor, self.sizing.now + self.to_reset)
        return cursor

    def fits(self, units: float, now: float, ttl: float) -> float:
        """When a lease of ``units`` (lease units) will fit this pool's pace."""
        return self.budget.fits(units * self.per, now, ttl)


def _in_calls(most: float, units: float, call: float) -> float:
    """What to grant of ``units`` when at most ``most`` may be: a whole number of ``call``
    (``min_units``, the least worth having: one call).

    A part of a call left in a lease serves no call: it is stranded until the lease
    ends, while calls that would fit it were told to wait.  Without a call size:
    whole units (thousandths below one).
    """
    most = max(0.0, min(most, units))
    if call > 0:
        return math.floor(most / call + 1e-9) * call
    if most >= 1.0:
        return float(math.floor(most + 1e-9))
    return math.floor(most * 1000) / 1000


@dataclass(frozen=True, slots=True)
class _Budget:
    """The most one lease may take of a pool (its units); paced: ``rate`` units/s from ``start``."""

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


def _allocation(
    engine: Engine, pool: PoolState, now: float, *, urgent: bool = False, floor: bool = True
) -> Allocation:
    """The pool's allocation as a paced intent would see it now (nothing booked)."""
    to_reset = engine.forecast(pool, now).seconds_to_reset
    window = engine.window_for(pool)
    return allocate(
        pool, now, 0.0, to_reset, window_seconds=window, urgent=urgent, book=False, floor=floor
    )


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
    return [lease for lease in leases if pool_id in lease.pools]


def _claims(leases: list[LeaseRecord], now: float, pool_id: str) -> list[Claim]:
    """Each holder's claim on ``pool_id``, in its units."""
    return [
        Claim(
            lease.lease_id,
            _demand_of_lease(lease, now) * lease.pools[pool_id],
            weight_of(lease.urgency, lease.weight),
        )
        for lease in leases
    ]


def _demand_of_lease(lease: LeaseRecord, now: float) -> float:
    """A live lease's claim (lease units): its rate over the rest of its life, else what it
    has left."""
    left = max(0.0, lease.expires_at - now)
    if lease.rate is None:
        return lease.unspent
    return min(lease.unspent, max(1.0, lease.rate * left * DEMAND_HEADROOM))


# ---------------------------------------------------------------------- holders


def lease_of(engine: Engine, lease_id: str, *, ended: bool = False) -> LeaseRecord:
    """The live lease (or, with ``ended``, one that ended lately), else a 404 (410 once it
    has ended) that says what to do."""
    state = engine.state
    lease = state.leases.get(lease_id) or (state.leases_closed.get(lease_id) if ended else None)
    if lease is not None:
        return lease
    status = state.leases_ended.get(lease_id)
    if status is not None:
        raise Gone("lease_ended", f"lease {lease_id!r} was {status}; ask for a new one")
    raise UnknownEntity("unknown_lease", f"no lease {lease_id!r}; ask for one first")


def report(
    engine: Engine, lease_id: str, body: LeaseReport, now: float
) -> tuple[Lease, list[Event]]:
    """Spent units (a batch since the last report) and the holder's recent rate.

    A lease that ended (revoked, expired) before its holder learnt of it still
    takes the report of what was spent from it: the units reached the provider.
    """
    lease = lease_of(engine, lease_id, ended=body.spent > 0)
    events = [_reported(engine, lease, body, now)]
    events += engine.refresh_forecasts(list(lease.pools), now, correlation_id=lease_id, lazy=True)
    return view(lease, _status(engine, lease)), events


def release(
    engine: Engine, lease_id: str, body: LeaseReport, now: float
) -> tuple[Lease, list[Event]]:
    """The holder is done: its last spend is counted and the unspent units return."""
    lease = lease_of(engine, lease_id, ended=body.spent > 0)
    live = lease_id in engine.state.leases
    events = [_reported(engine, lease, body, now)] if body.spent or body.rate is not None else []
    if live:
        events.append(_end(engine, lease, "released", now, "released by its holder"))
    events += engine.refresh_forecasts(list(lease.pools), now, correlation_id=lease_id, lazy=True)
    return view(lease, "released" if live else _status(engine, lease)), events


def _status(engine: Engine, lease: LeaseRecord) -> str:
    if lease.lease_id in engine.state.leases:
        return "active"
    return engine.state.leases_ended.get(lease.lease_id, "expired")


def _reported(engine: Engine, lease: LeaseRecord, body: LeaseReport, now: float) -> Event:
    live = lease.lease_id in engine.state.leases
    return engine.emit(
        # The rate sizes a live lease only.
        LeaseReportedPayload(
            lease_id=lease.lease_id, spent=body.spent, rate=body.rate if live else None
        ),
        now,
        dimensions=_dims(lease),
        source=Source(origin_kind="client", origin_id=lease.agent_id),
        pool_id=_pool_of(lease),
        correlation_id=lease.lease_id,
    )


def _end(engine: Engine, lease: LeaseRecord, status: str, now: float, reason: str) -> Event:
    return engine.emit(
        LeaseEndedPayload(
            lease_id=lease.lease_id,
            status=status,
            returned=lease.unspent,
            spent=lease.spent,
            reason=reason,
        ),
        now,
        dimensions=_dims(lease),
        pool_id=_pool_of(lease),
        correlation_id=lease.lease_id,
    )


def _dims(lease: LeaseRecord) -> Dimensions:
    return Dimensions(
        agent_id=lease.agent_id,
        identity_id=lease.identity_id,
        workload_id=lease.workload_id,
        scope_id=lease.scope_id,
    )


def _pool_of(lease: LeaseRecord) -> str:
    """The pool a lease's events are filed under: its pool, or a workload lease's first."""
    return lease.pool_id or next(iter(lease.pools))


# ---------------------------------------------------------------------- upkeep


def maintain(engine: Engine, now: float) -> list[Event]:
    """Expire leases past their time; shrink or revoke where a pool's forecast turned or
    urgent work needs what leases hold."""
    state = engine.state
    events: list[Event] = []
    for lease in [lease for lease in state.leases.values() if lease.expires_at <= now]:
        events.append(_end(engine, lease, "expired", now, "its time ran out"))
    touched = sorted({pool_id for lease in state.leases.values() for pool_id in lease.pools})
    # A lease over several pools keeps the least of what each turned pool leaves it.
    shrunk: dict[str, tuple[float, str]] = {}
    for pool_id in touched:
        pool = state.pools.get(pool_id)
        if pool is not None:
            found = _rebalance(engine, pool, now) | _reclaim(engine, pool, now)
            for lease_id, (share, why) in found.items():
                if lease_id not in shrunk or share < shrunk[lease_id][0]:
                    shrunk[lease_id] = (share, why)
    for lease_id, (share, why) in shrunk.items():
        lease = state.leases[lease_id]
        revoked = share < 1.0
        events.append(_revise(engine, lease, lease.spent + math.floor(share), why, revoked, now))
        if revoked:
            events.append(_end(engine, lease, "revoked", now, why))
    freed = sorted({pool_id for e in events for pool_id in _pools_of(state, e.correlation_id)})
    if freed:
        events += engine.refresh_forecasts(freed, now, lazy=True)
    return events


def _pools_of(state: State, lease_id: str | None) -> list[str]:
    lease = state.leases.get(lease_id or "") or state.leases_closed.get(lease_id or "")
    return list(lease.pools) if lease is not None else []


def _turned(pool: PoolState, now: float) -> str | None:
    """Why leases of ``pool`` must be looked at again, or None while all is well."""
    if drift_weight(pool.drift_score, pool.drift_ts, now) > DRIFT_ALERT:
        return f"drift on {pool.pool_id}: consumption ratelord did not see"
    if pool.posture != "OK":
        return f"the forecast of {pool.pool_id} turned {pool.posture}"
    return None


def _rebalance(engine: Engine, pool: PoolState, now: float) -> dict[str, tuple[float, str]]:
    """Leases of ``pool`` above their fair share of its paced budget: lease id → (the share,
    in lease units; why)."""
    why = _turned(pool, now)
    if why is None:
        return {}
    holders = _holders(engine.state.leases.values(), pool.pool_id)
    horizon = max(lease.expires_at - now for lease in holders)
    budget = window_budget(engine, pool, now, horizon)
    shares = fair_shares(budget, _claims(holders, now, pool.pool_id))
    shrunk: dict[str, tuple[float, str]] = {}
    for lease in holders:
        share = shares[lease.lease_id] / lease.pools[pool.pool_id]
        if lease.unspent > share * SHRINK_SLACK + 1.0:
            shrunk[lease.lease_id] = (share, why)
    return shrunk


def _reclaim(engine: Engine, pool: PoolState, now: float) -> dict[str, tuple[float, str]]:
    """Leases that hold units the pool no longer has, or that urgent work needs: lease id
    → (what it keeps, in lease units; why).

    A lease is granted outside the urgent reserve and the headroom for unseen use,
    but both grow when urgent work (or unseen use) arrives after it: then the
    lower-urgency leases give back what the pool lacks.  And when the provider says
    it has fewer units than the leases hold (a limit cut, use nobody saw), they hold
    units that are not there: leases give them back, lower urgency first.  Each gives
    in proportion to what it holds, keeping what its holder may have spent and not
    reported yet.
    """
    pool_id = pool.pool_id
    holders = [
        lease for lease in _holders(engine.state.leases.values(), pool_id) if lease.unspent > 0
    ]
    lower = [lease for lease in holders if lease.urgency != "high"]
    # Units leased that the provider's last word does not cover, until the window ends.
    missing = pool.shortfall if pool.reset_at is None or now < pool.reset_at else 0.0
    have = effective_remaining(pool, now) - missing
    held = _held(lower, pool_id)
    returned = msgspec.structs.replace(pool, remaining=max(0.0, have) + held)
    # The reserve's floor for urgent work not seen yet is kept once urgent work was seen
    # (as paced intents keep it): no lease is cut for urgency that never came.
    allocation = _allocation(engine, returned, now, floor=pool.urgent.count > 0)
    short = allocation.headroom + allocation.reserve - have
    kept: dict[str, tuple[float, str]] = {}
    if short >= 1.0 and held > 0:
        why = (
            f"urgent work needs {allocation.reserve:,.0f} of {pool_id} (and "
            f"{allocation.headroom:,.0f} kept for unseen use): leases give back {short:,.0f}"
        )
        kept |= _give_back_part(lower, pool_id, short, why)
    urgent = [lease for lease in holders if lease.urgency == "high"]
    still = missing - min(short, held)
    if still >= 1.0 and urgent:
        why = f"the provider has {still:,.0f} of {pool_id} fewer than leases hold"
        kept |= _give_back_part(urgent, pool_id, still, why)
    return kept


def _held(leases: list[LeaseRecord], pool_id: str) -> float:
    """Units of ``pool_id`` the leases hold unspent."""
    return sum(lease.unspent * lease.pools[pool_id] for lease in leases)


def _give_back_part(
    leases: list[LeaseRecord], pool_id: str, units: float, why: str
) -> dict[str, tuple[float, str]]:
    """``units`` of ``pool_id`` given back by ``leases``, each in proportion to what it holds,
    keeping what it may have spent unreported: lease id → (what it keeps; why)."""
    held = _held(leases, pool_id)
    give = min(1.0, units / held) if held > 0 else 0.0
    kept: dict[str, tuple[float, str]] = {}
    for lease in leases:
        keep = max(lease.unspent * (1.0 - give), (lease.rate or 0.0) * IN_FLIGHT_SECONDS)
        if keep < lease.unspent - 1.0:
            kept[lease.lease_id] = (keep, why)
    return kept


def _revise(
    engine: Engine, lease: LeaseRecord, granted: float, why: str, revoked: bool, now: float
) -> Event:
    """A shrink, pushed on the event stream as ``lease_revised`` (which holders watch).

    A revocation is a shrink to what was spent (``revoked``: true), then the lease's end.
    """
    return engine.emit(
        LeaseRevisedPayload(
            lease_id=lease.lease_id,
            granted=lease.spent if revoked else granted,
            from_=lease.granted,
            revoked=revoked,
            reason=why,
        ),
        now,
        dimensions=_dims(lease),
        pool_id=_pool_of(lease),
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
        workload_id=lease.workload_id,
        pool_id=lease.pool_id,
        pools=lease.pools,
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
