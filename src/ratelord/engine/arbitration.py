"""Intent arbitration (SPEC §7): intent → pools → forecasts → policy → decision.

:func:`decide` is the daemon's hot path.  It does no I/O; the caller appends
the returned events and answers only after they are durable.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from difflib import get_close_matches
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import UNSET

from ratelord.engine import budgets, refill
from ratelord.engine.allocation import Allocation, allocate, before_resets, recheck_at
from ratelord.engine.charges import ChargeError, NotChargeable, resolve_charges, validate_intent
from ratelord.engine.clock import iso
from ratelord.engine.core import EngineError, finite
from ratelord.engine.decimals import round3, round4
from ratelord.engine.diagnosis import describe, failing_members
from ratelord.engine.events import (
    DecidedModifications,
    Dimensions,
    Event,
    IntentDecidedPayload,
    IntentSubmittedPayload,
    PolicyShadowedPayload,
    PolicyTriggeredPayload,
    ShadowedRule,
    Source,
)
from ratelord.engine.forecast import ForecastResult
from ratelord.engine.policy import PHYSICAL_FLOOR_RULE, Action, FiredRule
from ratelord.engine.state import IdentityRecord, PoolState, effective_remaining
from ratelord.llm import PriceTable
from ratelord.schema import (
    Decision,
    Evaluation,
    IntentRequest,
    Modifications,
    PoolAllocation,
    PoolRisk,
)

if TYPE_CHECKING:
    from ratelord.engine.core import Engine

_RANK = {
    Action.APPROVE: 0,
    Action.SHAPE: 1,
    Action.SWITCH_IDENTITY: 2,
    Action.DEFER: 3,
    Action.DENY: 4,
}
#: Fail-safe: a degraded provider or a stale forecast counts as at least this risky.
FAIL_SAFE_RISK = 0.75
#: Waits on refilling pools are stretched by this factor (and a millisecond).
REFILL_MARGIN = 1.001
#: An approval with a wait stays valid this long past its slot (or a tenth of the wait).
APPROVAL_GRACE_SECONDS = 5.0
#: The physical floor's (policy, rule): its deferrals ask again before the reset.
FLOOR = (PHYSICAL_FLOOR_RULE.policy_id, PHYSICAL_FLOOR_RULE.name)
#: Seconds a first call on an unobserved pool holds back the next one (its report may be lost).
PROBE_SECONDS = 60.0


class Ruling(msgspec.Struct, frozen=True):
    """What the arbiter made of one intent, before any event records it (see :func:`decide`)."""

    decision: Decision
    #: the rules that fired, each with the pool it fired on
    fired: list[tuple[FiredRule, str]]
    #: pool id → cost to reserve (empty when nothing is: a denial or a deferral)
    charges: dict[str, float]
    #: whether the allocation booked a pacing slot for it
    paced: bool


class Decided(msgspec.Struct, frozen=True):
    """What :func:`decide` made of one intent (a frozen Struct: cheaper than a dataclass)."""

    decision: Decision
    #: every event it emitted (already applied to the projections), to be committed
    events: list[Event]
    #: pool id → cost reserved (empty when nothing was: a denial or a deferral)
    charges: dict[str, float]
    #: rules whose condition failed at run time (counted as not fired)
    policy_errors: list[str]


class PoolView(msgspec.Struct):
    """One pool as one intent sees it."""

    pool_id: str
    cost: float
    pool: PoolState | None
    base: ForecastResult | None = None
    with_intent: ForecastResult | None = None
    p: float = 0.0
    p_with: float = 0.0
    fail_safe: str | None = None

    def risk(self) -> PoolRisk:
        pool, base = self.pool, self.base
        # A risk of 0 (the common case) needs no rounding, which is costly for a float.
        p = round4(self.p) if self.p else self.p
        p_with = round4(self.p_with) if self.p_with else self.p_with
        if pool is None or base is None:
            return PoolRisk(
                pool_id=self.pool_id,
                cost=self.cost,
                remaining=pool.remaining if pool else None,
                limit=pool.limit if pool else None,
                p_exhaustion=p,
                p_exhaustion_with_intent=p_with,
                tte_p99_seconds=None,
                seconds_to_reset=None,
                posture=pool.posture if pool else "OK",  # type: ignore[arg-type]
            )
        to_reset = base.seconds_to_reset
        return PoolRisk(
            pool_id=self.pool_id,
            cost=self.cost,
            remaining=pool.remaining,
            limit=pool.limit,
            p_exhaustion=p,
            p_exhaustion_with_intent=p_with,
            tte_p99_seconds=finite(base.tte_p99),
            seconds_to_reset=None if to_reset is None else finite(to_reset),
            posture=pool.posture,  # type: ignore[arg-type]
        )


def decide(engine: Engine, request: IntentRequest, now: float) -> Decided:
    """Decide one intent; :class:`EngineError` (400, nothing logged) when it is malformed."""
    try:
        validate_intent(engine.config.workloads, request)
    except ChargeError as exc:
        raise EngineError(exc.code, exc.message) from None
    intent_id = engine.ids.new("int")
    dims = Dimensions(
        agent_id=request.agent_id,
        identity_id=request.identity_id,
        workload_id=request.workload_id,
        scope_id=request.scope_id,
    )
    source = Source(origin_kind="client", origin_id=request.agent_id)
    submitted = engine.emit(
        IntentSubmittedPayload(
            intent_id=intent_id,
            urgency=request.urgency,
            resource=request.resource,
            cost=request.cost,
            costs=request.costs or UNSET,
            labels=request.labels,
        ),
        now,
        dimensions=dims,
        source=source,
        correlation_id=intent_id,
    )
    events = [submitted]
    arbiter = _Arbiter(engine, request, now, intent_id)
    ruling = arbiter.run()
    decision, charges = ruling.decision, ruling.charges
    for rule, pool_id in ruling.fired:
        events.append(
            engine.emit(
                PolicyTriggeredPayload(
                    intent_id=intent_id,
                    policy_id=rule.policy_id,
                    rule=rule.rule,
                    kind=rule.kind,
                    action=str(rule.action),
                    priority=rule.priority,
                    reason=rule.reason,
                    policy_version=engine.policy.version,
                ),
                now,
                dimensions=dims,
                source=source,
                pool_id=pool_id,
                correlation_id=intent_id,
                causation_id=submitted.event_id,
            )
        )
    evaluation = decision.evaluation
    mods = decision.modifications
    events.append(
        engine.emit(
            IntentDecidedPayload(
                intent_id=intent_id,
                decision=decision.decision,
                modifications=DecidedModifications(
                    wait_seconds=mods.wait_seconds,
                    defer_until=mods.defer_until,
                    identity_switch=mods.identity_switch,
                ),
                reason=decision.reason,
                rules_fired=evaluation.rules_fired if evaluation else [],
                tightest_pool=evaluation.tightest_pool if evaluation else None,
                p_exhaustion=evaluation.p_exhaustion if evaluation else None,
                charges=charges,
                urgency=request.urgency,
                paced=ruling.paced,
                pacing=arbiter.pacing or UNSET,
                policy_errors=arbiter.policy_errors or UNSET,
                probes=arbiter.probes or UNSET,
                money=arbiter.money(charges) or UNSET,
            ),
            now,
            dimensions=dims,
            source=source,
            pool_id=evaluation.tightest_pool if evaluation else None,
            correlation_id=intent_id,
            causation_id=submitted.event_id,
        )
    )
    if arbiter.shadowed:
        events.append(_shadowed(engine, arbiter.shadowed, decision, intent_id, now, events[-1]))
    if charges:
        events += engine.refresh_forecasts(list(charges), now, correlation_id=intent_id, lazy=True)
    return Decided(decision, events, charges, arbiter.policy_errors)


class _Arbiter:
    """One intent's evaluation; a class only to keep the steps small and named."""

    __slots__ = (
        "budget",
        "engine",
        "intent_id",
        "now",
        "pacing",
        "policy_errors",
        "probes",
        "request",
        "shadowed",
        "state",
    )

    def __init__(self, engine: Engine, request: IntentRequest, now: float, intent_id: str):
        self.engine = engine
        self.state = engine.state
        self.request = request
        self.now = now
        self.intent_id = intent_id
        #: rules whose condition failed at run time (counted as not fired): surfaced, not hidden
        self.policy_errors: list[str] = []
        #: pool → pacing cursor once this intent is booked (only when it was paced)
        self.pacing: dict[str, float] = {}
        #: shadow-mode rules that held, with their pool: logged, never decisive
        self.shadowed: list[tuple[FiredRule, str]] = []
        #: unobserved pools this intent is the first call on
        self.probes: list[str] = []
        #: the money budgets the intent matches, and what they make of it
        self.budget: budgets.Assessment | None = None

    def run(self) -> Ruling:
        request = self.request
        record = self.state.identities.get(request.identity_id)
        if record is None:
            return self._deny(
                f"unknown identity {request.identity_id!r}: register it first "
                f"(ratelord identity add {request.identity_id} --provider ...)"
            )
        if record.status != "active":
            why = f" ({record.status_reason})" if record.status_reason else ""
            return self._deny(f"identity {record.identity_id!r} is {record.status}{why}")
        try:
            charges = self._charges(record)
        except NotChargeable as refused:
            return self._deny(str(refused))
        over_budget = self._budgets(record, charges)
        if over_budget is not None:
            return self._deny(over_budget)
        views = [self._view(record, pool_id, cost) for pool_id, cost in charges.items()]
        unknown = [v for v in views if v.pool is None]
        if unknown:  # unknown risk: never approved blind
            evaluation = self._evaluation(views, unknown[0], [])
            refusal = self._unknown_pools(record, [v.pool_id for v in unknown])
            if refusal is not None:
                return self._deny(refusal, evaluation)
            self.probes = [v.pool_id for v in unknown]
            reason = (
                f"approved as the first call on {', '.join(self.probes)} (not observed yet): "
                "report its response's rate-limit headers (POST /v1/usage); until then "
                "other calls on it are refused"
            )
            return Ruling(self._decision("approve", evaluation, reason=reason), [], charges, False)
        fired: list[tuple[FiredRule, str]] = []
        winner: tuple[FiredRule, PoolView] | None = None
        for view in views:
            outcome = self.engine.policy.evaluate(PolicyContext(self, record, view))
            self.policy_errors += outcome.errors
            if outcome.shadowed:
                self.shadowed += [(rule, view.pool_id) for rule in outcome.shadowed]
            for rule in outcome.fired:
                fired.append((rule, view.pool_id))
            best = self._honest(record, view, outcome.winner)
            if best is not None and (
                winner is None or _RANK[best.action] > _RANK[winner[0].action]
            ):
                winner = (best, view)
        tightest = (
            views[0]
            if len(views) == 1
            else max(views, key=lambda v: (v.p_with, -_tte(v)), default=None)
        )
        # A rule that fired on two pools is one rule fired.
        rules = list(dict.fromkeys(f"{r.policy_id}/{r.rule}" for r, _ in fired)) if fired else []
        evaluation = self._evaluation(views, tightest, rules)
        if winner is None or winner[0].action == Action.APPROVE:
            if request.urgency == "high":
                return Ruling(self._decision("approve", evaluation), fired, charges, False)
            # Policy approves; the allocation still keeps headroom and the urgent reserve
            # (nothing to keep while no unseen use nor urgent work was ever seen).
            if any([_holds_back(v) for v in views]):
                return self._allocated(views, evaluation, fired, charges, None, pace=False)
            return Ruling(self._decision("approve", evaluation), fired, charges, False)
        rule, view = winner
        action = rule.action
        if action == Action.SWITCH_IDENTITY:
            switched = self._switch(record, rule, views)
            if switched is not None:
                identity_id, new_charges, allocations = switched
                evaluation.allocation = [_allocation_view(a) for a in allocations]
                wait = max((a.wait for a in allocations), default=0.0)
                self.pacing = {a.pool_id: a.cursor for a in allocations}
                mods = Modifications(identity_switch=identity_id, wait_seconds=round3(wait))
                reason = f"{rule.reason}; use identity {identity_id!r}, which has room"
                decision = self._decision("approve_with_modifications", evaluation, mods, reason)
                decision.valid_until = self._valid_until(wait)
                return Ruling(decision, fired, new_charges, bool(self.pacing))
            action = Action.SHAPE  # no other identity has room: pace on this one
        if action in (Action.SHAPE, Action.DEFER) and _refilling(view, rule):
            return self._refill(rule, views, evaluation, fired, charges)
        if action == Action.SHAPE and "wait_seconds" not in rule.params:
            return self._allocated(views, evaluation, fired, charges, rule.reason, pace=True)
        if action == Action.SHAPE:
            wait = self._wait(rule)
            mods = Modifications(wait_seconds=round3(wait))
            decision = self._decision("approve_with_modifications", evaluation, mods, rule.reason)
            decision.valid_until = self._valid_until(wait)
            return Ruling(decision, fired, charges, False)
        if action == Action.DEFER:
            horizon = view.base.seconds_to_reset if view.base else None
            if horizon is not None and (
                view.pool is None or view.pool.limit is None or view.cost <= view.pool.limit
            ):
                mods = Modifications(defer_until=iso(self.now + horizon))
                reason = f"{rule.reason}; retry after the reset at {mods.defer_until}"
                if (rule.policy_id, rule.rule) == FLOOR and view.pool is not None:
                    # Budget may come back before the reset (see allocation.recheck_at).
                    window = self.engine.window_for(view.pool)
                    mods.defer_until = iso(recheck_at(self.now, horizon, window))
                    reason = (
                        f"{rule.reason}; ask again at {mods.defer_until}, in case budget comes "
                        f"back before the reset at {iso(self.now + horizon)}"
                    )
                return Ruling(
                    self._decision("approve_with_modifications", evaluation, mods, reason),
                    fired,
                    {},
                    False,
                )
            why = "no reset is known" if horizon is None else "the cost exceeds the pool's limit"
            return self._deny(f"{rule.reason}; cannot defer: {why}", evaluation, fired)
        return self._deny(rule.reason, evaluation, fired)

    def _refill(
        self,
        rule: FiredRule,
        views: list[PoolView],
        evaluation: Evaluation,
        fired: list[tuple[FiredRule, str]],
        charges: dict[str, float],
    ) -> Ruling:
        """Pace on refilling pools: wait until every bucket holds its cost, no longer."""
        waits = [
            refill.wait_for(v.pool, v.cost, self.now)
            for v in views
            if v.pool is not None and refill.refills(v.pool)
        ]
        if any(w is None for w in waits):
            return self._deny(
                f"{rule.reason}; cannot wait: the cost exceeds the pool's limit", evaluation, fired
            )
        wait = max(w for w in waits if w is not None)
        if wait > 0:  # the refill rate is measured from rounded headers: arrive just after
            wait = math.ceil((wait * REFILL_MARGIN + 0.001) * 1000) / 1000
        if wait <= 0:
            return Ruling(self._decision("approve", evaluation), fired, charges, False)
        mods = Modifications(wait_seconds=wait)
        reason = f"{rule.reason}; waiting {wait:,.1f} s for the pool to refill"
        decision = self._decision("approve_with_modifications", evaluation, mods, reason)
        decision.valid_until = self._valid_until(wait)
        return Ruling(decision, fired, charges, False)

    # ---------------------------------------------------------------- steps

    def _charges(self, record: IdentityRecord) -> dict[str, float]:
        """Which pools the intent draws from, and how much from each."""
        return resolve_charges(self.engine.config.workloads, self.state, record, self.request)

    def _budgets(self, record: IdentityRecord, charges: dict[str, float]) -> str | None:
        """Why the call would pass a money budget it matches (engine/budgets.py), or None."""
        config, request = self.engine.config, self.request
        if not config.budgets:
            return None
        matched = budgets.matching(
            config.budgets,
            request.agent_id,
            request.workload_id,
            request.identity_id,
            request.labels,
            record.labels,
        )
        if not matched:
            return None
        resources = {pool_id.split(":", 2)[1]: cost for pool_id, cost in charges.items()}
        self.budget = budgets.assess(
            config.prices or PriceTable(),
            self.state.budgets,
            matched,
            request.tokens,
            resources,
            self.now,
        )
        return self.budget.refusal

    def money(self, charges: dict[str, float]) -> dict[str, float]:
        """The money an approval that charges ``charges`` commits (ledger key → amount)."""
        return self.budget.money if charges and self.budget is not None else {}

    def _unknown_pools(self, record: IdentityRecord, pool_ids: list[str]) -> str | None:
        """Why an intent on never-observed pools is refused, or None to let it probe.

        A pool ratelord polls and has not seen does not exist (a typo, a resource the
        principal lacks): refused, with the resources it does have.  A pool only
        responses can reveal (no poll names it: LLM APIs, header-reported identities)
        is learned from one first call — a single one at a time, until its headers
        are reported.
        """
        blind = (
            f"pool {pool_ids[0]} has never been observed, so its budget is unknown and "
            "ratelord does not approve spending it blind"
        )
        if record.poll_error_kind is not None:
            return f"{blind}: {describe(record)}"
        members = [
            i
            for i in self.state.identities.values()
            if i.provider_id == record.provider_id and i.principal == record.principal
        ]
        if any(i.last_polled_at is not None for i in members):
            pools = self.state.pools_of(record.provider_id, record.principal)
            known = sorted(p.resource for p in pools)
            close = get_close_matches(pool_ids[0].split(":")[1], known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return (
                f"{blind}: polls of principal {record.principal} show only "
                f"{', '.join(known) or 'no pools'}{hint}; ask for one of those"
            )
        for pool_id in pool_ids:
            since = self.state.probes.get(pool_id)
            if since is not None and self.now - since < PROBE_SECONDS:
                return (
                    f"pool {pool_id} is not observed yet and its first call is under way: "
                    "ask again once that call's usage is reported (POST /v1/usage)"
                )
        return None

    def _honest(
        self, record: IdentityRecord, view: PoolView, winner: FiredRule | None
    ) -> FiredRule | None:
        """``winner``, with a reason that does not contradict itself under fail-safe.

        Fail-safe raises a pool's risk (and lowers its margin) to count as high;
        a rule then fires whose reason, written for real numbers, would say what
        is not true ("would run out in 825 s, before its reset in 35 s").  When
        the same rule would not have fired on the real numbers, the fail-safe
        is the reason.
        """
        if winner is None or not view.fail_safe:
            return winner
        assert view.base is not None and view.with_intent is not None
        real = PoolView(
            pool_id=view.pool_id,
            cost=view.cost,
            pool=view.pool,
            base=view.base,
            with_intent=view.with_intent,
            p=view.base.p_exhaustion,
            p_with=view.with_intent.p_exhaustion,
        )
        unforced = self.engine.policy.evaluate(PolicyContext(self, record, real)).winner
        if unforced is not None and (unforced.policy_id, unforced.rule) == (
            winner.policy_id,
            winner.rule,
        ):
            return winner
        return replace(
            winner,
            reason=f"fail-safe: {view.fail_safe}, so the risk of {view.pool_id} counts as high "
            f"(rule {winner.policy_id}/{winner.rule})",
        )

    def _view(self, record: IdentityRecord, pool_id: str, cost: float) -> PoolView:
        pool = self.state.pools.get(pool_id)
        if pool is None:
            return PoolView(pool_id, cost, pool)
        base, with_intent = self.engine.forecast_pair(pool, self.now, cost)
        view = PoolView(
            pool_id, cost, pool, base, with_intent, base.p_exhaustion, with_intent.p_exhaustion
        )
        if self.request.urgency != "high":
            stale_after = self.engine.config.stale_after_seconds
            status = self.state.providers.get(pool.provider_id)
            failing = (
                failing_members(self.state, pool)
                if status is not None and status.failing_identities
                else None
            )
            if failing:
                view.fail_safe = f"polls of {', '.join(failing)} are failing"
            elif pool.last_observed_at is None or self.now - pool.last_observed_at > stale_after:
                view.fail_safe = f"forecast for {pool_id} is stale"
            if view.fail_safe:
                view.p = max(view.p, FAIL_SAFE_RISK)
                view.p_with = max(view.p_with, FAIL_SAFE_RISK)
        return view

    def _wait(self, rule: FiredRule) -> float:
        """A policy's fixed wait (``wait_seconds``), bounded by its min/max params."""
        params = rule.params
        wait = max(
            float(params.get("wait_seconds", 0.0)), float(params.get("min_wait_seconds", 0.0))
        )
        if "max_wait_seconds" in params:
            wait = min(wait, float(params["max_wait_seconds"]))
        return max(0.0, wait)

    def _allocate(self, views: list[PoolView], *, pace: bool) -> list[Allocation]:
        """Each observed pool's allocation for this intent (see :mod:`.allocation`)."""
        urgency = self.request.urgency
        book = pace and urgency != "background"
        out: list[Allocation] = []
        for view in views:
            if view.pool is None or view.base is None:
                continue
            out.append(
                allocate(
                    view.pool,
                    self.now,
                    view.cost,
                    view.base.seconds_to_reset,
                    window_seconds=self.engine.window_for(view.pool),
                    urgent=urgency == "high",
                    book=book,
                    floor=pace and _keeps_floor(urgency, view.pool),
                )
            )
        return out

    def _allocated(
        self,
        views: list[PoolView],
        evaluation: Evaluation,
        fired: list[tuple[FiredRule, str]],
        charges: dict[str, float],
        reason: str | None,
        *,
        pace: bool,
    ) -> Ruling:
        """Approve, pace or hold back by the allocation of every pool the intent draws on."""
        allocations = self._allocate(views, pace=pace)
        evaluation.allocation = [_allocation_view(a) for a in allocations]
        short = [a for a in allocations if not a.fits]
        wait = max((a.wait for a in allocations), default=0.0) if pace else 0.0
        wait = before_resets(allocations, wait)
        if pace:  # a fixed wait another shaping rule asks for holds too
            fixed = [self._wait(r) for r, _ in fired if r.action == Action.SHAPE]
            wait = max([wait, *fixed])
        background = self.request.urgency == "background"
        if short or (background and wait > 0):
            why = "; ".join(a.explain() for a in short) or "; ".join(
                a.explain() for a in allocations
            )
            if background and short:
                return self._deny(
                    f"background work is shed while the pool is at risk: {why}", evaluation, fired
                )
            recheck = max(a.recheck_at for a in (short or allocations))
            mods = Modifications(defer_until=iso(recheck))
            text = f"{reason + '; ' if reason else ''}{why}; ask again at {mods.defer_until}"
            return Ruling(
                self._decision("approve_with_modifications", evaluation, mods, text),
                fired,
                {},
                False,
            )
        if pace:
            self.pacing = {a.pool_id: a.cursor for a in allocations}
        if wait <= 0:
            return Ruling(self._decision("approve", evaluation), fired, charges, bool(self.pacing))
        mods = Modifications(wait_seconds=round3(wait))
        text = f"{reason + ': ' if reason else ''}" + "; ".join(a.explain() for a in allocations)
        decision = self._decision("approve_with_modifications", evaluation, mods, text)
        decision.valid_until = self._valid_until(wait)
        return Ruling(decision, fired, charges, True)

    def _valid_until(self, wait: float) -> str | None:
        """An approval with a wait holds until a little after its slot (see Decision)."""
        if wait <= 0:
            return None
        return iso(self.now + wait + max(APPROVAL_GRACE_SECONDS, 0.1 * wait))

    def _switch(
        self, record: IdentityRecord, rule: FiredRule, views: list[PoolView]
    ) -> tuple[str, dict[str, float], list[Allocation]] | None:
        """Another allowed identity with room for the intent in this window.

        Each candidate's pools are allocated like the intent's own (headroom,
        reserve and the pace its own agents have booked count): the one whose
        slot comes first wins, the most spare budget breaking ties.  None when
        no candidate has room: the intent is then paced on its own identity.
        When the rule's ``identities`` include the intent's own, that one is a
        candidate too: the intent stays while its own pools' pace serves it no
        later (sent to wait elsewhere, it would leave its own budget unspent at
        the reset).
        """
        allowed = rule.params.get("identities")
        own_wait = math.inf
        if allowed and any(fnmatchcase(record.identity_id, g) for g in allowed):
            own = self._allocate(views, pace=True)
            if own and all(a.fits for a in own):
                own_wait = max(a.wait for a in own)
        best: tuple[float, float, str, dict[str, float], list[Allocation]] | None = None
        urgent = self.request.urgency == "high"
        for candidate in self.state.identities.values():
            if (
                candidate.identity_id == record.identity_id
                or candidate.status != "active"
                or candidate.provider_id != record.provider_id
                or candidate.principal in (None, record.principal)
                or (allowed and not any(fnmatchcase(candidate.identity_id, g) for g in allowed))
            ):
                continue
            try:
                charges = self._charges(candidate)
            except NotChargeable:
                continue
            allocations: list[Allocation] = []
            for pool_id, cost in charges.items():
                pool = self.state.pools.get(pool_id)
                if pool is None:
                    break
                horizon = self.engine.forecast(pool, self.now).seconds_to_reset
                window = self.engine.window_for(pool)
                allocations.append(
                    allocate(
                        pool,
                        self.now,
                        cost,
                        horizon,
                        window_seconds=window,
                        urgent=urgent,
                        floor=_keeps_floor(self.request.urgency, pool),
                    )
                )
            if len(allocations) != len(charges) or not all(a.fits for a in allocations):
                continue
            wait = max(a.wait for a in allocations)
            spare = min(a.budget for a in allocations)
            if wait >= own_wait:
                continue
            if best is None or (wait, -spare) < (best[0], best[1]):
                best = (wait, -spare, candidate.identity_id, charges, allocations)
        return None if best is None else (best[2], best[3], best[4])

    # ---------------------------------------------------------------- answers

    def _evaluation(
        self, views: list[PoolView], tightest: PoolView | None, rules: list[str]
    ) -> Evaluation:
        summary = _summary(tightest)
        notes = [v.fail_safe for v in views if v.fail_safe]
        if notes:
            summary += "; fail-safe: " + ", ".join(sorted(set(notes))) + " (risk treated as high)"
        if self.policy_errors:
            summary += "; policy errors (rules not applied): " + "; ".join(self.policy_errors)
        pools = [v.risk() for v in views]
        # The tightest pool's figures as its risk rounded them (not rounded twice).
        top = pools[views.index(tightest)] if tightest is not None else None
        return Evaluation(
            as_of=iso(self.now) or "",
            policy_version=self.engine.policy.version,
            tightest_pool=tightest.pool_id if tightest else None,
            p_exhaustion=top.p_exhaustion_with_intent if top is not None else None,
            tte_p99_seconds=top.tte_p99_seconds if top is not None else None,
            rules_fired=rules,
            risk_summary=summary,
            pools=pools,
        )

    def _decision(
        self,
        kind: str,
        evaluation: Evaluation | None,
        modifications: Modifications | None = None,
        reason: str | None = None,
    ) -> Decision:
        return Decision(
            intent_id=self.intent_id,
            decision=kind,  # type: ignore[arg-type]
            modifications=modifications or Modifications(),
            reason=reason,
            evaluation=evaluation,
        )

    def _deny(
        self,
        reason: str,
        evaluation: Evaluation | None = None,
        fired: list[tuple[FiredRule, str]] | None = None,
    ) -> Ruling:
        evaluation = evaluation or Evaluation(
            as_of=iso(self.now) or "",
            policy_version=self.engine.policy.version,
            risk_summary="not evaluated",
        )
        return Ruling(
            self._decision("deny_with_reason", evaluation, None, reason), fired or [], {}, False
        )


class PolicyContext(dict[str, dict[str, Any]]):
    """The policy variables (SPEC §6) of one intent on one pool.

    Each variable's fields are computed when a rule, target or reason first
    reads it: the built-in policy reads four of the ten, so most intents
    never pay for the rest.  Its keys are exactly :data:`~ratelord.engine.policy.VARIABLES`.
    A dict holding the variables built so far (``__missing__`` builds the others), so
    that the rules' reads of a variable already built cost a plain dict lookup.
    ``pool`` and ``intent``, which the physical floor (first in every policy) reads on
    every evaluation, are built with the context: a ``__missing__`` call costs ~1,700
    instructions.
    """

    __slots__ = ("_arbiter", "_base", "_pool_state", "_record", "_view", "_with_intent")

    def __init__(self, arbiter: _Arbiter, record: IdentityRecord, view: PoolView) -> None:
        assert view.pool is not None and view.base is not None and view.with_intent is not None
        self._arbiter = arbiter
        self._record = record
        self._view = view
        self._pool_state: PoolState = view.pool
        self._base: ForecastResult = view.base
        self._with_intent: ForecastResult = view.with_intent
        self["pool"] = self._pool()
        self["intent"] = self._intent()

    def __missing__(self, name: str) -> dict[str, Any]:
        fields = self[name] = _VARIABLE_BUILDERS[name](self)
        return fields

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return self[name] if name in _VARIABLE_BUILDERS else default

    def built(self) -> list[str]:
        """The variables read so far."""
        return list(super().__iter__())

    def __iter__(self) -> Iterator[str]:
        return iter(_VARIABLE_BUILDERS)

    def __len__(self) -> int:
        return len(_VARIABLE_BUILDERS)

    def _intent(self) -> dict[str, Any]:
        request = self._arbiter.request
        return {
            "agent_id": request.agent_id,
            "identity_id": request.identity_id,
            "workload_id": request.workload_id,
            "scope_id": request.scope_id,
            "urgency": request.urgency,
            "cost": float(self._view.cost),
        }

    def _pool(self) -> dict[str, Any]:
        pool, base, now = self._pool_state, self._base, self._arbiter.now
        return {
            "id": pool.pool_id,
            "provider": pool.provider_id,
            "resource": pool.resource,
            "remaining": float(effective_remaining(pool, now)),
            "limit": float(pool.limit) if pool.limit is not None else math.inf,
            "utilization": _utilization(pool),
            "seconds_to_reset": base.seconds_to_reset
            if base.seconds_to_reset is not None
            else math.inf,
        }

    def _tte(self) -> dict[str, Any]:
        base = self._base
        return {
            "p50": base.tte_p50,
            "p90": base.tte_p90,
            "p99": base.tte_p99,
            "p99_with_intent": self._with_intent.tte_p99,
        }

    def _risk(self) -> dict[str, Any]:
        return {"p_exhaustion": self._view.p, "p_exhaustion_with_intent": self._view.p_with}

    def _margin(self) -> dict[str, Any]:
        margin_with = self._with_intent.margin
        if self._view.fail_safe:
            margin_with = min(margin_with, -1.0)
        return {"seconds": self._base.margin, "with_intent_seconds": margin_with}

    def _window_share(self, bucket: dict[str, float], who: str) -> float:
        return bucket.get(who, 0.0) / (sum(self._pool_state.window_by_agent.values()) or 1.0)

    def _identity(self) -> dict[str, Any]:
        record, pool = self._record, self._pool_state
        return {
            "id": record.identity_id,
            "kind": record.kind,
            "labels": record.labels,
            "principal": record.principal or "",
            "burn_share": self._window_share(pool.window_by_identity, record.identity_id),
        }

    def _agent(self) -> dict[str, Any]:
        request, pool = self._arbiter.request, self._pool_state
        return {
            "id": request.agent_id,
            "labels": request.labels,
            "role": request.labels.get("role", ""),
            "burn_share": self._window_share(pool.window_by_agent, request.agent_id),
        }

    def _provider(self) -> dict[str, Any]:
        provider_id = self._record.provider_id
        status = self._arbiter.state.providers.get(provider_id)
        degraded = status is not None and status.degraded
        return {"id": provider_id, "status": "degraded" if degraded else "ok"}

    def _system(self) -> dict[str, Any]:
        providers = self._arbiter.state.providers.values()
        return {"status": "degraded" if any(s.degraded for s in providers) else "ok"}

    def _time(self) -> dict[str, Any]:
        now = self._arbiter.now
        when = datetime.fromtimestamp(now, UTC)
        return {"hour": when.hour, "minute": when.minute, "weekday": when.weekday(), "unix": now}

    def _budget(self) -> dict[str, Any]:
        """The money budget nearest its limit among those the intent matches."""
        assessment = self._arbiter.budget
        if assessment is None:
            return dict(_NO_BUDGET)
        view = assessment.views[0]
        return {
            "id": view.budget_id,
            "period": view.period,
            "spent": view.spent,
            "limit": view.limit,
            "remaining": view.remaining,
            "forecast_end": view.forecast_end,
            "cost": assessment.cost,
            "seconds_to_end": view.seconds_to_end,
        }


#: ``budget`` when the intent matches no money budget: nothing spent, no limit.
_NO_BUDGET: dict[str, Any] = {
    "id": "",
    "period": "",
    "spent": 0.0,
    "limit": math.inf,
    "remaining": math.inf,
    "forecast_end": 0.0,
    "cost": 0.0,
    "seconds_to_end": math.inf,
}


_VARIABLE_BUILDERS: dict[str, Callable[[PolicyContext], dict[str, Any]]] = {
    "intent": PolicyContext._intent,
    "pool": PolicyContext._pool,
    "tte": PolicyContext._tte,
    "risk": PolicyContext._risk,
    "margin": PolicyContext._margin,
    "identity": PolicyContext._identity,
    "agent": PolicyContext._agent,
    "provider": PolicyContext._provider,
    "system": PolicyContext._system,
    "time": PolicyContext._time,
    "budget": PolicyContext._budget,
}


def _refilling(view: PoolView, rule: FiredRule) -> bool:
    """A refilling pool paced by the engine (a rule's own ``wait_seconds`` still wins)."""
    return view.pool is not None and refill.refills(view.pool) and "wait_seconds" not in rule.params


def _holds_back(view: PoolView) -> bool:
    """Whether the allocation may keep part of the pool from a non-urgent intent that the
    policy approves: only once unseen use, urgent work or costlier calls were seen."""
    pool = view.pool
    return pool is not None and (
        pool.unseen.count > 0 or pool.urgent.count > 0 or (pool.estimate_ratio or 1.0) > 1.0
    )


def _keeps_floor(urgency: str, pool: PoolState) -> bool:
    """Whether paced work keeps the urgent reserve's floor (see allocation.RESERVE_FLOOR_FRACTION):
    work that may be shed always does; normal work once urgent work was seen on the pool."""
    return urgency in ("background", "low") or pool.urgent.count > 0


def _allocation_view(a: Allocation) -> PoolAllocation:
    return PoolAllocation(
        pool_id=a.pool_id,
        remaining=round3(a.remaining),
        headroom=round3(a.headroom),
        reserve=round3(a.reserve),
        budget=round3(a.budget),
        horizon_seconds=finite(a.horizon),
        rate_per_second=finite(a.rate),
        wait_seconds=round3(a.wait),
        fits=a.fits,
    )


def _tte(view: PoolView) -> float:
    return view.base.tte_p99 if view.base else math.inf


def _utilization(pool: PoolState) -> float:
    if not pool.limit:
        return 0.0
    used = 1.0 - pool.remaining / pool.limit
    return (used if used < 1.0 else 1.0) if used > 0.0 else 0.0


def _summary(view: PoolView | None) -> str:
    if view is None:
        return "no pool evaluated"
    if view.pool is None or view.base is None:
        return f"pool {view.pool_id} not observed yet: no budget known, nothing reserved"
    pool, base = view.pool, view.base
    limit = _units(pool.limit) if pool.limit is not None else "?"
    reset = (
        f"resets in {_units(base.seconds_to_reset)}s"
        if base.seconds_to_reset is not None
        else "reset unknown"
    )
    tte = "∞" if math.isinf(base.tte_p99) else f"{base.tte_p99:,.0f}s"
    risk = f"{view.p_with:.0%}" if view.p_with else "0%"
    return (
        f"tightest pool {pool.pool_id}: {pool.remaining:,.0f}/{limit} left, "
        f"P(exhaustion before reset) {risk} with this intent, P99 TTE {tte}, {reset}"
    )


def _units(value: float) -> str:
    """``f"{value:,.0f}"``, cached by the whole number it shows: a limit and the seconds to
    a reset move by less than one between decisions, and formatting a float is costly.
    (Both round half to even, so ``round`` gives the same digits.)"""
    if 0 < value < 1e15:
        return _grouped(round(value))
    return f"{value:,.0f}"


@functools.lru_cache(maxsize=256)
def _grouped(count: int) -> str:
    return f"{count:,}"


def _shadowed(
    engine: Engine,
    shadowed: list[tuple[FiredRule, str]],
    decision: Decision,
    intent_id: str,
    now: float,
    decided: Event,
) -> Event:
    """What shadow-mode rules would have decided, beside what was decided."""
    would = max((rule.action for rule, _ in shadowed), key=lambda a: _RANK[a])
    mods = decision.modifications
    actual = (
        Action.DENY
        if decision.decision == "deny_with_reason"
        else Action.DEFER
        if mods.defer_until
        else Action.SWITCH_IDENTITY
        if mods.identity_switch
        else Action.SHAPE
        if decision.decision == "approve_with_modifications"
        else Action.APPROVE
    )
    return engine.emit(
        PolicyShadowedPayload(
            intent_id=intent_id,
            decision=decision.decision,
            would_decide=str(would),
            changes_answer=_RANK[would] > _RANK[actual],
            rules=[
                ShadowedRule(
                    policy_id=rule.policy_id,
                    rule=rule.rule,
                    action=str(rule.action),
                    reason=rule.reason,
                    pool_id=pool_id,
                )
                for rule, pool_id in shadowed
            ],
            policy_version=engine.policy.version,
        ),
        now,
        dimensions=decided.dimensions,
        source=decided.source,
        pool_id=decided.pool_id,
        correlation_id=intent_id,
        causation_id=decided.event_id,
    )
