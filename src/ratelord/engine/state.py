"""Projections: every in-memory view of ratelord, rebuilt from events by :func:`State.apply`.

Nothing in here reads the clock: an event's ``ts_event`` is the only time an
``apply`` sees, so replaying the same log gives byte-identical state (that is
what snapshots and ``ratelord rebuild`` check).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET

from ratelord.engine import refill
from ratelord.engine.budgets import BudgetLedger, apply_money, settle
from ratelord.engine.clock import parse_iso
from ratelord.engine.events import (
    ApprovalRevoked,
    ConstraintObserved,
    DriftDetected,
    Event,
    ForecastComputed,
    IdentityQuarantined,
    IdentityRegistered,
    IdentityRevoked,
    IdentityRotated,
    IntentDecided,
    IntentsDecided,
    PolicyRejected,
    PolicyUpdated,
    PostureChanged,
    PrincipalDiscovered,
    ProviderError,
    ProviderPollObserved,
    ResetObserved,
    SystemStarted,
    UsageObserved,
    UsageReported,
    event_type_of,
)
from ratelord.engine.forecast import (
    Arrivals,
    BurnState,
    ForecastSnapshot,
    drift_weight,
    note,
    observe,
)

K = TypeVar("K")
V = TypeVar("V")
E = TypeVar("E", bound=Event)

HISTORY_POINTS = 240
DEDUPE_MEMORY = 50_000
CHARGES_MEMORY = 20_000
PROBES_MEMORY = 1_000
MINUTE_BUCKETS = 30
OBSERVATION_GAP_WEIGHT = 0.1
#: A call that went at once this shortly before an observation may not have been sent yet
#: (a client that waits between requests after asking, as PyGithub does).  Not the lease
#: holders' reporting lag (``lease_state.IN_FLIGHT_SECONDS``).
SEND_LAG_SECONDS = 0.5
#: Calls that went at once within this long of each other are noted as one (see ``_open_slot``).
SENT_SLOT_SECONDS = 0.05
#: Estimate error tracking: smoothing weight, the quantile's z (P90), samples before it counts.
ESTIMATE_ALPHA = 0.1
ESTIMATE_Z = 1.2816
ESTIMATE_MIN_SAMPLES = 5
#: Recent reconciled calls whose actual ÷ reserved bound one call's (see ``estimate_bound``).
ESTIMATE_BOUND_SAMPLES = 64
#: An unconfirmed reset is counted on at most this fraction of the window after it is due
#: (beyond the lateness the provider has shown).
RESET_GRACE_FRACTION = 0.05


class IdentityRecord(msgspec.Struct, kw_only=True):
    identity_id: str
    provider_id: str
    principal: str | None
    kind: str
    scope_id: str
    labels: dict[str, str]
    status: str = "active"
    status_reason: str | None = None
    secret_ref: str | None = None
    token_fingerprint: str | None = None
    registered_at: float = 0.0
    auth_failures: int = 0
    #: When a poll of it last succeeded (a polled principal's pools are all known).
    last_polled_at: float | None = None
    #: Its last poll's failure (kind, message) until a poll succeeds or it is revoked.
    poll_error_kind: str | None = None
    poll_error: str | None = None


class PoolState(msgspec.Struct, kw_only=True):
    """One real budget: (provider, resource, principal)."""

    pool_id: str
    provider_id: str
    resource: str
    principal: str
    unit: str = "requests"
    limit: float | None = None
    remaining: float = 0.0  # ratelord's estimate: last observation minus local debits since
    used: float | None = None
    reset_at: float | None = None
    window: str = "unknown"
    window_seconds: float | None = None
    observed_remaining: float | None = None
    last_observed_at: float | None = None
    reserved_since_observation: float = 0.0
    #: Of those, the calls that went at once (not told to wait): the provider has seen them.
    immediate_since_observation: float = 0.0
    #: Calls that went at once at the instant ``latest_at`` (the latest such instant), in
    #: units: an observation at that very instant may not have seen them yet.
    latest_at: float = 0.0
    latest_immediate: float = 0.0
    #: Calls that went at once lately, in slots of ``SENT_SLOT_SECONDS``: (when, units).
    #: Clients in parallel may all still be on their way when the provider is read.
    sent_lately: list[tuple[float, float]] = []
    #: The open slot: when it began, and its units.
    sent_at: float = 0.0
    sent_units: float = 0.0
    #: Approved calls told to wait: (starts_at, cost).  The provider cannot have seen them yet.
    pending: list[tuple[float, float]] = []
    burn: BurnState = msgspec.field(default_factory=BurnState)
    #: Consumption ratelord did not approve (seen as drops between observations): the burn
    #: that decides the risk of exhaustion, and its chunks, that size the headroom.
    unseen_burn: BurnState = msgspec.field(default_factory=BurnState)
    unseen: Arrivals = msgspec.field(default_factory=Arrivals)
    #: Approved high-urgency spending, that sizes the reserve kept for urgent work.
    urgent: Arrivals = msgspec.field(default_factory=Arrivals)
    #: Seconds between the provider's observations (exponentially weighted): how long
    #: consumption ratelord cannot see can go unnoticed.
    observation_gap: float = 10.0
    #: How long after its announced time the provider has been seen still before a reset.
    reset_lateness: float = 0.0
    #: Debits whose call lands at or after ``reset_at``, by the start of the window they
    #: land in (``reset_at`` rolled forward by whole windows): they spend that window,
    #: not the one the last observation saw.  Kept per window because, with no
    #: observation for longer than a window, calls told to wait land a window later
    #: than calls that go now, and neither count may wipe the other.
    #: ``(window start, units)`` pairs, oldest first; one or two in practice.
    spent_by_window: list[tuple[float, float]] = []
    #: When the current run of demand began, and the last instant it is known to last until.
    demand_since: float | None = None
    demand_last: float | None = None
    #: When the provider was last seen to raise the limit (budget that came mid-window).
    raised_at: float | None = None
    drift_score: float = 0.0
    drift_ts: float | None = None
    drift_count: int = 0
    posture: str = "OK"
    forecast: ForecastSnapshot | None = None
    paced_until: float = 0.0
    #: Units granted to leases and not yet reported spent: already out of ``remaining``.
    leased: float = 0.0
    window_by_agent: dict[str, float] = {}
    window_by_identity: dict[str, float] = {}
    window_by_scope: dict[str, float] = {}
    history: list[tuple[float, float]] = []
    version: int = 0
    #: Refilling pools (token buckets, see engine.refill): units per second, 0 otherwise.
    refill_rate: float = 0.0
    #: When ``remaining``/``shortfall`` were last brought up to date (refilling pools).
    level_ts: float | None = None
    #: What approved calls owe beyond the balance (refilling pools; ``remaining`` stays >= 0).
    shortfall: float = 0.0
    #: Reconciled intents: actual ÷ reserved, smoothed (how good the estimates are),
    #: and its variance (how much one call's error can stray from that).
    estimate_ratio: float | None = None
    estimate_variance: float = 0.0
    estimate_samples: int = 0
    #: The last :data:`ESTIMATE_BOUND_SAMPLES` ratios, and the most one call's ratio is
    #: seen to reach by them: their largest, plus the range over their count (the
    #: unbiased end of a bounded spread); None until that many calls were reconciled.
    estimate_recent: list[float] = []
    estimate_bound: float | None = None

    def record_history(self, ts: float) -> None:
        self.history.append((ts, self.remaining))
        if len(self.history) > HISTORY_POINTS:
            del self.history[: len(self.history) - HISTORY_POINTS]


class ProviderStatus(msgspec.Struct, kw_only=True):
    provider_id: str
    last_success_at: float | None = None
    last_error_at: float | None = None
    last_error_kind: str | None = None
    last_error_message: str | None = None
    consecutive_errors: int = 0
    failing_identities: dict[str, str] = {}

    @property
    def degraded(self) -> bool:
        return bool(self.failing_identities)


class Stats(msgspec.Struct, kw_only=True):
    started_at: float | None = None
    boots: int = 0
    intents_total: int = 0
    decisions: dict[str, int] = {}
    #: (minute since epoch, intents, denials), newest last.
    minutes: list[tuple[int, int, int]] = []
    rules_fired: dict[str, int] = {}
    policy_version: str | None = None
    policy_rejections: int = 0

    def count_decision(self, ts: float, decision: str, n: int = 1) -> None:
        """Count ``n`` decisions of one kind made at ``ts``."""
        self.intents_total += n
        self.decisions[decision] = self.decisions.get(decision, 0) + n
        minute = int(ts // 60)
        denied = n if decision == "deny_with_reason" else 0
        if self.minutes and self.minutes[-1][0] == minute:
            _, count, denials = self.minutes[-1]
            self.minutes[-1] = (minute, count + n, denials + denied)
        else:
            self.minutes.append((minute, n, denied))
            if len(self.minutes) > MINUTE_BUCKETS:
                del self.minutes[0]


class LeaseRecord(msgspec.Struct, kw_only=True):
    """A live lease: ``granted`` units reserved for a holder until ``expires_at``.

    ``pools``: what one unit of the lease holds of each pool — ``{pool: 1}`` for a
    lease of one resource, the workload's costs for a lease over a workload's
    pools (all of them or none).  ``granted`` and ``spent`` count lease units.
    """

    lease_id: str
    agent_id: str
    identity_id: str
    workload_id: str
    scope_id: str
    pools: dict[str, float]
    urgency: str
    weight: float
    requested: float
    granted: float
    spent: float = 0.0
    rate: float | None = None
    granted_at: float
    expires_at: float

    @property
    def unspent(self) -> float:
        return max(0.0, self.granted - self.spent)

    @property
    def pool_id(self) -> str | None:
        """The lease's pool, when it holds one (None: a lease over several pools)."""
        return next(iter(self.pools)) if len(self.pools) == 1 else None


class State(msgspec.Struct, kw_only=True):
    """All projections.  Encodable as a whole (snapshots) with msgspec."""

    identities: dict[str, IdentityRecord] = {}
    pools: dict[str, PoolState] = {}
    providers: dict[str, ProviderStatus] = {}
    stats: Stats = msgspec.field(default_factory=Stats)
    #: Recent dedupe keys, oldest first (a dict keeps insertion order).
    dedupe: dict[str, None] = {}
    #: Recent approved intents' charges (intent id → pool id → cost), for usage corrections.
    charges: dict[str, dict[str, float]] = {}
    #: Live leases by id; ended ones leave, their id → why in ``leases_ended`` (bounded).
    leases: dict[str, LeaseRecord] = {}
    leases_ended: dict[str, str] = {}
    #: The latest ended leases themselves (bounded): a holder that spent from one before it
    #: learnt of its end still reports what it spent.
    leases_closed: dict[str, LeaseRecord] = {}
    #: Recent approvals told to wait: intent id → when the call was to start.
    waiting: dict[str, float] = {}
    #: Approvals revoked before their slot (intent id → why), newest last (bounded).
    revoked: dict[str, str] = {}
    #: Pools not observed yet whose first call was approved (pool id → when), until the
    #: pool is observed: one call at a time learns an unpolled pool (see arbitration).
    probes: dict[str, float] = {}
    #: Money budgets' ledgers (``budget@period`` → money), see engine/budgets.py.
    budgets: dict[str, BudgetLedger] = {}
    #: Recent approved intents' money (intent id → ledger key → estimate), until reported.
    money: dict[str, dict[str, float]] = {}

    # ------------------------------------------------------------------ queries

    def pools_of(self, provider_id: str, principal: str | None) -> list[PoolState]:
        if principal is None:
            return []
        return [
            p
            for p in self.pools.values()
            if p.provider_id == provider_id and p.principal == principal_key(provider_id, principal)
        ]

    def members(self, pool: PoolState) -> list[str]:
        return sorted(
            i.identity_id
            for i in self.identities.values()
            if i.provider_id == pool.provider_id
            and i.principal is not None
            and principal_key(i.provider_id, i.principal) == pool.principal
        )

    def seen(self, dedupe_key: str) -> bool:
        return dedupe_key in self.dedupe

    # ------------------------------------------------------------------ apply

    def apply(self, event: Event) -> None:
        """Fold one event into the projections."""
        handler = _HANDLERS.get(event.event_type)
        if handler is not None:
            handler(self, event)
        if event.dedupe_key is not None:
            self.dedupe[event.dedupe_key] = None
            if len(self.dedupe) > 2 * DEDUPE_MEMORY:
                self.dedupe = _newest(self.dedupe, DEDUPE_MEMORY)

    @staticmethod
    def relevant_types() -> frozenset[str]:
        """Event types that change projections; replay may skip every other type."""
        return frozenset(_HANDLERS)

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    def encode(self) -> bytes:
        """Canonical bytes of the whole state: equal states, equal bytes.

        Keys are sorted, and the state goes once through its declared types so
        that a count held as ``3`` and one held as ``3.0`` encode alike (a
        snapshot decodes numbers into the declared float fields).
        """
        raw = msgspec.json.encode(self, order="sorted")
        return msgspec.json.encode(State.decode(raw), order="sorted")

    @classmethod
    def decode(cls, data: bytes) -> State:
        return msgspec.json.decode(data, type=cls)


def reset_grace(pool: PoolState) -> float:
    """Seconds past the announced reset before ratelord counts on it unconfirmed.

    Resets come late; until the provider confirms one (or this long has passed:
    a client that only learns from responses has nothing to confirm it), the
    reset is imminent, not done.  Two observation gaps, but never more than a
    small part of the window beyond the lateness seen: a pool observed once in
    several windows must not wait a window or more for each reset.
    """
    grace = 2.0 * pool.observation_gap
    if pool.window_seconds:
        grace = min(grace, RESET_GRACE_FRACTION * pool.window_seconds)
    return max(pool.reset_lateness, grace)


def effective_remaining(pool: PoolState, now: float) -> float:
    """A fixed window whose reset has passed since the last observation is full again;
    a refilling pool has refilled since its last event."""
    if pool.refill_rate:
        return max(0.0, refill.balance(pool, now))
    reset_at, limit = pool.reset_at, pool.limit
    # The cheap tests first: this runs on every decision.
    if reset_at is None or now < reset_at or limit is None or pool.window != "fixed":
        return pool.remaining
    # An observation at or after ``reset_at`` did not see the reset: the provider still
    # announced this one (it is late), not the next.  Its word holds for the grace after
    # it (polls come quickly while a reset is overdue, see service.cadence), not until
    # the next observation: that may be a window away.
    grace = reset_grace(pool)
    observed = pool.last_observed_at
    if now < reset_at + grace or (
        observed is not None and reset_at <= observed and now - observed < grace
    ):
        return pool.remaining
    # Refilled to its limit, minus what was spent (or booked) in the window we are in; a
    # window later (no observation since), refilled again.
    current = window_start(pool, now - grace)
    spent = next((units for start, units in pool.spent_by_window if start == current), 0.0)
    return min(limit, max(0.0, limit - spent))


def window_start(pool: PoolState, at: float) -> float:
    """The latest reset at or before ``at``: ``reset_at`` rolled forward by whole windows."""
    reset_at = pool.reset_at
    assert reset_at is not None
    window = pool.window_seconds
    if not window or at < reset_at + window:
        return reset_at
    return reset_at + math.floor((at - reset_at) / window) * window


def this_window(pool: PoolState, lands: float) -> bool:
    """Whether a call landing at ``lands`` may spend the window under way: before its
    reset, or while the reset may still be late (within :func:`reset_grace`: then it is
    counted in both windows)."""
    reset_at = pool.reset_at
    return reset_at is None or lands < reset_at or lands < reset_at + reset_grace(pool)


def book_after_reset(pool: PoolState, lands: float, units: float) -> None:
    """Count ``units`` (negative: given back) in the window a call landing at ``lands`` spends."""
    if pool.reset_at is None or lands < pool.reset_at:
        return
    start = window_start(pool, lands)
    windows = pool.spent_by_window
    for i, (known, spent) in enumerate(windows):
        if known == start:
            windows[i] = (start, max(0.0, spent + units))
            return
    windows.append((start, max(0.0, units)))
    windows.sort()


def _newest(items: dict[K, V], keep: int) -> dict[K, V]:
    """The ``keep`` most recently inserted entries.

    Bounded memories are trimmed in bulk: deleting the oldest key one at a time
    leaves dummies at the front of the dict, and finding the next oldest then
    scans them all (measured: 14 µs per intent once the memory was full).
    """
    return dict(list(items.items())[-keep:])


def principal_key(provider_id: str, principal: str) -> str:
    """The principal as it appears in pool ids: without a leading ``<provider>:``."""
    prefix = provider_id + ":"
    return principal[len(prefix) :] if principal.startswith(prefix) else principal


@functools.lru_cache(maxsize=1024)
def pool_id_for(provider_id: str, resource: str, principal: str) -> str:
    """Cached: every intent names its pools through this."""
    return f"{provider_id}:{resource}:{principal_key(provider_id, principal)}"


# ---------------------------------------------------------------------- handlers

Handler = Callable[[State, Any], None]
_HANDLERS: dict[str, Handler] = {}


def _on(cls: type[E]) -> Callable[[Callable[[State, E], None]], Callable[[State, E], None]]:
    """Register a handler of the typed event ``cls`` (it reads its payload's fields)."""

    def register(fn: Callable[[State, E], None]) -> Callable[[State, E], None]:
        _HANDLERS[event_type_of(cls)] = fn
        return fn

    return register


@_on(SystemStarted)
def _system_started(state: State, event: SystemStarted) -> None:
    state.stats.started_at = event.ts_event
    state.stats.boots += 1


@_on(IdentityRegistered)
def _identity_registered(state: State, event: IdentityRegistered) -> None:
    p = event.payload
    state.identities[p.identity_id] = IdentityRecord(
        identity_id=p.identity_id,
        provider_id=p.provider_id,
        principal=p.principal,
        kind=p.kind,
        scope_id=event.dimensions.scope_id if p.scope_id is UNSET else p.scope_id,
        labels=dict(p.labels),
        secret_ref=p.secret_ref,
        token_fingerprint=p.token_fingerprint,
        registered_at=event.ts_event,
    )


@_on(IdentityRotated)
def _identity_rotated(state: State, event: IdentityRotated) -> None:
    record = state.identities.get(event.dimensions.identity_id)
    if record is not None:
        p = event.payload
        if p.secret_ref is not UNSET:
            record.secret_ref = p.secret_ref
        record.token_fingerprint = None if p.token_fingerprint is UNSET else p.token_fingerprint
        record.auth_failures = 0
        if record.status == "quarantined":
            record.status, record.status_reason = "active", None


@_on(IdentityRevoked)
def _identity_revoked(state: State, event: IdentityRevoked) -> None:
    _identity_status(state, event)


@_on(IdentityQuarantined)
def _identity_quarantined(state: State, event: IdentityQuarantined) -> None:
    _identity_status(state, event)


def _identity_status(state: State, event: IdentityRevoked | IdentityQuarantined) -> None:
    record = state.identities.get(event.dimensions.identity_id)
    if record is not None:
        revoked = isinstance(event, IdentityRevoked)
        record.status = "revoked" if revoked else "quarantined"
        reason = event.payload.reason
        record.status_reason = None if reason is UNSET else reason
        if revoked:  # a revoked identity is not polled: its failures end with it
            record.poll_error_kind = record.poll_error = None
            for status in state.providers.values():
                status.failing_identities.pop(record.identity_id, None)


@_on(PrincipalDiscovered)
def _principal_discovered(state: State, event: PrincipalDiscovered) -> None:
    record = state.identities.get(event.dimensions.identity_id)
    if record is not None:
        record.principal = event.payload.principal


#: The events that observe a pool (and create it when it is new).
PoolEvent = ConstraintObserved | UsageObserved | ResetObserved | DriftDetected


def _pool(state: State, event: PoolEvent) -> PoolState:
    pool_id = event.pool_id
    assert pool_id is not None, f"{event.event_type} without pool_id"
    pool = state.pools.get(pool_id)
    if pool is None:
        state.probes.pop(pool_id, None)
        p = event.payload
        pool = PoolState(
            pool_id=pool_id,
            provider_id=event.provider_id or "unknown",
            resource=p.resource,
            principal=p.principal,
            unseen=Arrivals(since=event.ts_event),
            urgent=Arrivals(since=event.ts_event),
        )
        state.pools[pool_id] = pool
    return pool


@_on(ConstraintObserved)
def _constraint_observed(state: State, event: ConstraintObserved) -> None:
    pool = _pool(state, event)
    p = event.payload
    if pool.limit is not None and p.limit is not None and p.limit > pool.limit:
        pool.raised_at = event.ts_event
    pool.limit = p.limit
    if p.unit is not UNSET:
        pool.unit = p.unit
    if p.window is not UNSET:
        pool.window = p.window
    if p.window_seconds is not UNSET:
        pool.window_seconds = p.window_seconds
    pool.refill_rate = 0.0
    if pool.window == refill.REFILL and pool.limit and pool.window_seconds:
        pool.refill_rate = pool.limit / pool.window_seconds
    if p.reset_at is not None:
        pool.reset_at = p.reset_at
    _recount_after_reset(pool)
    pool.version += 1


def _open_slot(pool: PoolState, at: float, cost: float) -> None:
    """Close the slot of calls that went at once (see ``PoolState.sent_lately``) and open
    one at ``at``: a few slots, whatever the rate of calls; the old ones are forgotten."""
    sent = pool.sent_lately
    if pool.sent_units:
        sent.append((pool.sent_at, pool.sent_units))
        if len(sent) > SEND_LAG_SECONDS / SENT_SLOT_SECONDS:
            pool.sent_lately = [(t, c) for t, c in sent if t > at - SEND_LAG_SECONDS]
    pool.sent_at, pool.sent_units = at, cost


def _sent_lately(pool: PoolState, now: float) -> float:
    """Units of calls that went at once less than the send lag before ``now`` (not at it:
    calls of that very instant count as not seen anyway)."""
    slots = [*pool.sent_lately, (pool.sent_at, pool.sent_units)]
    return sum(c for t, c in slots if 0.0 < now - t < SEND_LAG_SECONDS)


def _recount_after_reset(pool: PoolState) -> None:
    """Calls told to wait past the (new) reset spend the window after it."""
    pool.spent_by_window = []
    for lands, cost in pool.pending:
        book_after_reset(pool, lands, cost)


@_on(UsageObserved)
def _usage_observed(state: State, event: UsageObserved) -> None:
    pool = _pool(state, event)
    p = event.payload
    # Calls that went at once at this very instant may not have reached the provider
    # either: they count as not seen, and as landed by the next observation.
    instant = pool.latest_immediate if pool.latest_at >= event.ts_event else 0.0
    due_now = [(t, c) for t, c in pool.pending if t == event.ts_event] if pool.pending else []
    if p.own_call and (instant or due_now):
        instant, due_now = _without_own_call(float(p.own_call), instant, due_now)
    remaining = float(p.remaining)
    previous = pool.observed_remaining
    if (
        previous is not None
        and not p.unaccounted
        and not pool.leased
        and p.reset_at == pool.reset_at
        and remaining.is_integer()
    ):
        # The provider shows whole units, rounded down; ratelord counted what landed since
        # its last word, to the fraction (real costs reported): when that count agrees
        # with the whole units shown, it is the more precise (the last unit of a small
        # window is not lost to rounding).
        landed = pool.immediate_since_observation - instant
        landed += sum(c for t, c in pool.pending if t < event.ts_event)
        believed = previous - landed
        if remaining <= believed < remaining + 1.0:
            remaining = believed
        elif believed < remaining and (lately := _sent_lately(pool, event.ts_event)):
            # The provider shows more than ratelord counted, just after calls went at once:
            # they may still be on their way (PyGithub, asked by its auth, waits 0.25 s
            # before it sends). They count as not seen until the next observation.
            remaining = max(believed, remaining - lately)
    # A call due at the very instant of the observation may not have reached the provider
    # yet: it stays pending until an observation after it (counted as landed by both).
    pool.pending = [(t, c) for t, c in pool.pending if t > event.ts_event] + due_now
    pool.observed_remaining = remaining
    # Calls told to wait past the reset spend the next window, not what is observed now.
    reset = pool.reset_at if p.reset_at is None else p.reset_at
    due = reset + reset_grace(pool) if reset is not None else math.inf
    pending = sum(c for t, c in pool.pending if t < due) + pool.leased + instant
    level = pool.observed_remaining - pending
    pool.remaining, pool.shortfall = max(0.0, level), max(0.0, -level)
    pool.level_ts = event.ts_event
    pool.used = p.used
    if (
        pool.reset_at is not None
        and event.ts_event > pool.reset_at
        and p.reset_at is not None
        and p.reset_at <= pool.reset_at + 1.0
    ):
        # The announced reset has passed and the provider still reports the old window.
        pool.reset_lateness = max(pool.reset_lateness, event.ts_event - pool.reset_at)
    if pool.last_observed_at is not None and event.ts_event > pool.last_observed_at:
        gap = event.ts_event - pool.last_observed_at
        pool.observation_gap += OBSERVATION_GAP_WEIGHT * (gap - pool.observation_gap)
    pool.last_observed_at = event.ts_event
    pool.reserved_since_observation = instant
    pool.immediate_since_observation = instant
    if p.reset_at is not None:
        pool.reset_at = p.reset_at
    _recount_after_reset(pool)
    unaccounted = float(p.unaccounted)
    if unaccounted > 0:
        observe(pool.burn, unaccounted, event.ts_event)
        observe(pool.unseen_burn, unaccounted, event.ts_event)
        note(pool.unseen, unaccounted, event.ts_event)
    pool.record_history(event.ts_event)
    pool.version += 1


def _without_own_call(
    own: float, instant: float, due_now: list[tuple[float, float]]
) -> tuple[float, list[tuple[float, float]]]:
    """A response's own headers: its call (``own`` units) has reached the provider, even
    at the very instant it was approved (``instant``) or due (``due_now``), so it is not
    among the calls that may still be on their way."""
    if instant >= own - 1e-9:
        return max(0.0, instant - own), due_now
    for index, (_, cost) in enumerate(due_now):
        if abs(cost - own) < 1e-9:
            return instant, due_now[:index] + due_now[index + 1 :]
    return instant, due_now


def _attribute(pool: PoolState, dims: dict[str, str], amount: float) -> None:
    # Unrolled: this runs for every approved intent.
    who = dims.get("agent_id")
    if who:
        bucket = pool.window_by_agent
        bucket[who] = bucket.get(who, 0.0) + amount
    who = dims.get("identity_id")
    if who:
        bucket = pool.window_by_identity
        bucket[who] = bucket.get(who, 0.0) + amount
    who = dims.get("scope_id")
    if who:
        bucket = pool.window_by_scope
        bucket[who] = bucket.get(who, 0.0) + amount


@_on(ResetObserved)
def _reset_observed(state: State, event: ResetObserved) -> None:
    pool = _pool(state, event)
    if event.payload.reset_at is not UNSET:
        pool.reset_at = event.payload.reset_at
    _recount_after_reset(pool)
    pool.window_by_agent = {}
    pool.window_by_identity = {}
    pool.window_by_scope = {}
    pool.paced_until = 0.0
    pool.version += 1


@_on(DriftDetected)
def _drift_detected(state: State, event: DriftDetected) -> None:
    pool = _pool(state, event)
    pool.drift_score = drift_weight(pool.drift_score, pool.drift_ts, event.ts_event) + 1.0
    pool.drift_ts = event.ts_event
    pool.drift_count += 1
    pool.version += 1


@_on(ForecastComputed)
def _forecast_computed(state: State, event: ForecastComputed) -> None:
    pool = state.pools.get(event.pool_id or "")
    if pool is not None:
        pool.forecast = event.payload


@_on(PostureChanged)
def _posture_changed(state: State, event: PostureChanged) -> None:
    pool = state.pools.get(event.pool_id or "")
    if pool is not None:
        pool.posture = event.payload.to


@_on(IntentDecided)
def _intent_decided(state: State, event: IntentDecided) -> None:
    p = event.payload
    state.stats.count_decision(event.ts_event, p.decision)
    for rule in p.rules_fired:
        state.stats.rules_fired[rule] = state.stats.rules_fired.get(rule, 0) + 1
    _note_demand(state, event)
    mods = p.modifications
    if p.decision == "deny_with_reason" or mods.defer_until:
        return
    probes = p.probes
    if probes:
        for pool_id in probes:
            state.probes[pool_id] = event.ts_event
        if len(state.probes) > 2 * PROBES_MEMORY:
            state.probes = _newest(state.probes, PROBES_MEMORY)
    dimensions = event.dimensions
    dims = {
        "agent_id": dimensions.agent_id,
        "identity_id": mods.identity_switch or dimensions.identity_id,
        "scope_id": dimensions.scope_id,
    }
    wait = mods.wait_seconds
    starts_at = event.ts_event + float(wait) if wait else event.ts_event
    urgent = p.urgency == "high"
    pacing = None if p.pacing is UNSET else p.pacing
    charges = p.charges
    state.charges[p.intent_id] = dict(charges)
    if len(state.charges) > 2 * CHARGES_MEMORY:
        state.charges = _newest(state.charges, CHARGES_MEMORY)
    if p.money:
        apply_money(state.budgets, p.money, settles=False)
        state.money[p.intent_id] = dict(p.money)
        if len(state.money) > 2 * CHARGES_MEMORY:
            state.money = _newest(state.money, CHARGES_MEMORY)
    if starts_at > event.ts_event:
        state.waiting[p.intent_id] = starts_at
        if len(state.waiting) > 2 * CHARGES_MEMORY:
            state.waiting = _newest(state.waiting, CHARGES_MEMORY)
    for pool_id, cost in charges.items():
        pool = state.pools.get(pool_id)
        if pool is None:
            continue
        _debit(pool, cost, event.ts_event, dims, lands=starts_at)
        if starts_at > event.ts_event:
            pool.pending.append((starts_at, cost))
        else:
            if pool.latest_at == event.ts_event:
                pool.latest_immediate += cost
            else:
                pool.latest_at, pool.latest_immediate = event.ts_event, cost
            if event.ts_event - pool.sent_at < SENT_SLOT_SECONDS:
                pool.sent_units += cost
            else:
                _open_slot(pool, event.ts_event, cost)
        if urgent:
            note(pool.urgent, cost, event.ts_event)
        if pacing is None:
            if p.paced:
                pool.paced_until = max(pool.paced_until, starts_at)
        elif pool_id in pacing:
            pool.paced_until = max(pool.paced_until, float(pacing[pool_id]))


#: Demand that pauses longer than this has stopped; when it comes back, it is a new run.
DEMAND_GAP_SECONDS = 120.0


def _note_demand(state: State, event: IntentDecided) -> None:
    """How long the demand on a pool has lasted (the allocation trusts it to last as long)."""
    p = event.payload
    ts = event.ts_event
    until = ts
    defer_until = p.modifications.defer_until
    if defer_until:
        until = max(ts, parse_iso(defer_until))
    charges = p.charges
    pools = state.pools
    if event.pool_id and (not charges or event.pool_id not in charges):
        pool = pools.get(event.pool_id)
        if pool is not None:
            note_demand(pool, ts, until)
    for pool_id in charges or ():
        pool = pools.get(pool_id)
        if pool is not None:
            note_demand(pool, ts, until)


def note_demand(pool: PoolState, ts: float, until: float) -> None:
    """Demand on ``pool`` at ``ts``, known to last until ``until``: a new run after a gap."""
    if pool.demand_last is None or ts - pool.demand_last > DEMAND_GAP_SECONDS:
        pool.demand_since = ts
    last = pool.demand_last or until
    pool.demand_last = last if last > until else until


@_on(IntentsDecided)
def _intents_decided(state: State, event: IntentsDecided) -> None:
    """Identical intents of a batch, approved as one: each counted, their total debited."""
    p = event.payload
    ids = p.intent_ids
    state.stats.count_decision(event.ts_event, p.decision, len(ids))
    for intent_id in ids:
        state.charges[intent_id] = dict(p.charges)
    if len(state.charges) > 2 * CHARGES_MEMORY:
        state.charges = _newest(state.charges, CHARGES_MEMORY)
    dims = {
        "agent_id": event.dimensions.agent_id,
        "identity_id": event.dimensions.identity_id,
        "scope_id": event.dimensions.scope_id,
    }
    for pool_id, cost in p.charges.items():
        pool = state.pools.get(pool_id)
        if pool is not None:
            _debit(pool, cost * len(ids), event.ts_event, dims)


@_on(ApprovalRevoked)
def _approval_revoked(state: State, event: ApprovalRevoked) -> None:
    """An approval that waited no longer holds: its reservation goes back to its pools."""
    intent_id = event.payload.intent_id
    starts_at = state.waiting.pop(intent_id, None)
    for pool_id, cost in (state.charges.pop(intent_id, None) or {}).items():
        pool = state.pools.get(pool_id)
        if pool is not None and cost:
            _debit(pool, -cost, event.ts_event, {}, lands=starts_at, waited=True)
            if starts_at is not None:
                _repend(pool, starts_at, -cost)
            if not pool.refill_rate and pool.observed_remaining is not None:
                # The estimate may have been clamped at zero: never credit beyond what the
                # provider's last word, less what is still due, leaves.
                due = sum(c for _, c in pool.pending) + pool.leased
                level = pool.observed_remaining - due - pool.immediate_since_observation
                pool.remaining = max(0.0, min(pool.remaining, level))
    state.revoked[intent_id] = event.payload.reason
    if len(state.revoked) > 2 * CHARGES_MEMORY:
        state.revoked = _newest(state.revoked, CHARGES_MEMORY)


@_on(UsageReported)
def _usage_reported(state: State, event: UsageReported) -> None:
    dims = {
        "agent_id": event.dimensions.agent_id,
        "identity_id": event.dimensions.identity_id,
        "scope_id": event.dimensions.scope_id,
    }
    p = event.payload
    intent_id = p.intent_id or ""
    reserved = state.charges.get(intent_id)
    starts_at = state.waiting.get(intent_id)
    if p.money is not UNSET:  # the call's real cost: its estimate is settled
        apply_money(state.budgets, p.money, settles=True)
        settle(state.budgets, state.money.pop(intent_id, {}))
    for pool_id in reserved or ():
        # A first call that has reported ends its probe, even when its answer named no
        # pool (a failed call, headers for other resources): the next call may probe.
        state.probes.pop(pool_id, None)
    for pool_id, delta in p.corrections.items():
        pool = state.pools.get(pool_id)
        if pool is not None and delta:
            if starts_at is None:
                _debit(pool, delta, event.ts_event, dims)
            elif _repend(pool, starts_at, delta):
                # Still pending: it lands (corrected) with the calls told to wait.
                _debit(pool, delta, event.ts_event, dims, lands=starts_at, waited=True)
            elif pool.last_observed_at is None or starts_at >= pool.last_observed_at:
                _debit(pool, delta, event.ts_event, dims)
            # else: an observation after the call already counted what it really spent.
        if reserved is not None and pool_id in reserved:
            if pool is not None and reserved[pool_id] > 0:
                _track_estimate(pool, (reserved[pool_id] + delta) / reserved[pool_id])
            reserved[pool_id] += delta  # a second report of the same intent corrects nothing


def _track_estimate(pool: PoolState, ratio: float) -> None:
    """Smooth actual ÷ reserved (and its variance) over the pool's recent reconciled calls."""
    previous = pool.estimate_ratio
    if previous is None:
        pool.estimate_ratio = ratio
    else:
        diff = ratio - previous
        pool.estimate_ratio = previous + ESTIMATE_ALPHA * diff
        pool.estimate_variance = (1 - ESTIMATE_ALPHA) * (
            pool.estimate_variance + ESTIMATE_ALPHA * diff * diff
        )
    pool.estimate_samples += 1
    recent = pool.estimate_recent
    recent.append(ratio)
    if len(recent) > ESTIMATE_BOUND_SAMPLES:
        del recent[0]
    if len(recent) == ESTIMATE_BOUND_SAMPLES:
        high = max(recent)
        pool.estimate_bound = high + (high - min(recent)) / (ESTIMATE_BOUND_SAMPLES - 1)


def estimate_inflation(pool: PoolState, z: float = ESTIMATE_Z) -> float:
    """How many times its estimate a call on ``pool`` may really spend, at least 1.

    By default the P90 of the observed actual ÷ reserved (smoothed mean + 1.28 σ;
    ``z`` picks another quantile), once :data:`ESTIMATE_MIN_SAMPLES` calls were
    reconciled: the forecast of an intent counts its cost this many times, so
    estimates that run low (a prompt the heuristic under-counts) are not trusted
    at face value.
    """
    if pool.estimate_ratio is None or pool.estimate_samples < ESTIMATE_MIN_SAMPLES:
        return 1.0
    return max(1.0, pool.estimate_ratio + z * math.sqrt(pool.estimate_variance))


def _repend(pool: PoolState, starts_at: float, delta: float) -> bool:
    """A call told to wait until ``starts_at`` will spend ``delta`` more (or less: not at all).

    False when no observation is waiting for it any more (none pending at that time)."""
    for index, (t, cost) in enumerate(pool.pending):
        if t == starts_at:
            if cost + delta > 0:
                pool.pending[index] = (t, cost + delta)
            else:
                del pool.pending[index]
            return True
    return False


def _debit(
    pool: PoolState,
    cost: float,
    ts: float,
    dims: dict[str, str],
    lands: float | None = None,
    *,
    waited: bool = False,
) -> None:
    """Local accounting: an approved (or corrected) cost leaves the pool's estimate.

    ``lands`` is when the call reaches the provider: a call landing after the
    known reset spends the next window (see :func:`effective_remaining`), not
    this one's estimate (a call paced by another pool past this one's reset).
    ``waited``: the cost of a call told to wait (never one that went at once).
    """
    if pool.refill_rate:
        refill.debit(pool, cost, ts)
    elif lands is None or this_window(pool, lands):
        left = pool.remaining - cost
        pool.remaining = left if left > 0.0 else 0.0
    pool.reserved_since_observation += cost
    if not waited and (lands is None or lands <= ts):
        pool.immediate_since_observation += cost
    book_after_reset(pool, ts if lands is None else lands, cost)
    if cost > 0:
        observe(pool.burn, cost, ts)
    _attribute(pool, dims, cost)
    pool.record_history(ts)
    pool.version += 1


@_on(ProviderPollObserved)
def _poll_observed(state: State, event: ProviderPollObserved) -> None:
    status = _provider(state, event)
    status.last_success_at = event.ts_event
    status.consecutive_errors = 0
    status.failing_identities.pop(event.dimensions.identity_id, None)
    record = state.identities.get(event.dimensions.identity_id)
    if record is not None:
        record.auth_failures = 0
        record.poll_error_kind = record.poll_error = None
        record.last_polled_at = event.ts_event


@_on(ProviderError)
def _provider_error(state: State, event: ProviderError) -> None:
    status = _provider(state, event)
    p = event.payload
    status.last_error_at = event.ts_event
    status.last_error_kind = p.kind
    status.last_error_message = p.message
    status.consecutive_errors += 1
    record = state.identities.get(event.dimensions.identity_id)
    if record is not None and record.status == "revoked":
        return  # a poll that was under way when it was revoked
    status.failing_identities[event.dimensions.identity_id] = p.kind
    if record is not None:
        record.poll_error_kind = p.kind
        record.poll_error = p.message
        if p.kind == "auth":
            record.auth_failures += 1


def _provider(state: State, event: Event) -> ProviderStatus:
    provider_id = event.provider_id or "unknown"
    status = state.providers.get(provider_id)
    if status is None:
        status = state.providers[provider_id] = ProviderStatus(provider_id=provider_id)
    return status


@_on(PolicyUpdated)
def _policy_updated(state: State, event: PolicyUpdated) -> None:
    state.stats.policy_version = event.payload.version


@_on(PolicyRejected)
def _policy_rejected(state: State, event: PolicyRejected) -> None:
    state.stats.policy_rejections += 1


# Lease events have their own module; their handlers join the table here.
from ratelord.engine.lease_state import HANDLERS as _LEASE_HANDLERS  # noqa: E402

_HANDLERS.update(_LEASE_HANDLERS)
