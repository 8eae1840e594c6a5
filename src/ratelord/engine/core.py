"""The engine façade: commands in, events out.

Every command builds its events with :meth:`Engine.emit`, which applies each
event to the projections at once and returns it; the caller (daemon or
simulator) then appends the returned events to its log.  Because the store
appends events in the order they were made, the log replays into exactly the
state the engine had.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgspec

from ratelord.engine import forecast as fc
from ratelord.engine import refill
from ratelord.engine.budgets import Budget
from ratelord.engine.clock import iso
from ratelord.engine.decimals import round3, round4, round6
from ratelord.engine.events import (
    DAEMON_SOURCE,
    SENTINEL_UNKNOWN,
    SYSTEM_DIMENSIONS,
    Dimensions,
    Event,
    IdentityChangedPayload,
    IdentityQuarantinedPayload,
    IdentityRegisteredPayload,
    IdentityRevokedPayload,
    IdentityRotatedPayload,
    IdFactory,
    Payload,
    PolicyRejectedPayload,
    PolicyUpdatedPayload,
    PostureChangedPayload,
    Source,
    SystemStartedPayload,
    SystemStoppedPayload,
    ThrottleAdvisedPayload,
    event_class_of,
)
from ratelord.engine.policy import CompiledPolicy, PolicyError
from ratelord.engine.state import (
    IdentityRecord,
    PoolState,
    State,
    effective_remaining,
    estimate_inflation,
    reset_grace,
)
from ratelord.llm import PriceTable
from ratelord.schema import Identity, IdentityCreate

#: A forecast is re-emitted when P50 TTE moves by this fraction, or p(exhaustion) by this much.
TTE_CHANGE = 0.10
RISK_CHANGE = 0.05
LAZY_REFRESH_SECONDS = 0.5
LAZY_REFRESH_FRACTION = 0.01


class EngineConfig(msgspec.Struct, kw_only=True, frozen=True):
    """Engine settings (from the daemon's config file or a scenario)."""

    #: workload id → {resource: default cost}
    workloads: dict[str, dict[str, float]] = {}
    #: drift threshold as a fraction of the pool's limit (SPEC §4: 5 %)
    drift_threshold: float = 0.05
    #: an observation older than this makes a forecast stale (fail-safe for non-high urgency)
    stale_after_seconds: float = 300.0
    #: consecutive auth failures after which an identity is quarantined (0 = never)
    quarantine_after_auth_failures: int = 3
    #: money budgets (engine/budgets.py), priced with ``prices`` (None: nothing is priced)
    budgets: tuple[Budget, ...] = ()
    prices: PriceTable | None = None


class EngineError(Exception):
    """A command the engine refuses; ``code`` names the reason for machines.

    Domain errors only: the HTTP layer decides which status each kind maps to.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownEntity(EngineError):
    """The command names something the engine has never heard of."""


class Gone(EngineError):
    """The command names something that existed and has ended (a returned lease...)."""


class Conflict(EngineError):
    """The command contradicts the current state (duplicate, already revoked...)."""


#: An identity action (``POST /v1/identities/{id}/{action}``) → the payload of its event.
IDENTITY_CHANGES: dict[str, type[IdentityChangedPayload]] = {
    "revoke": IdentityRevokedPayload,
    "quarantine": IdentityQuarantinedPayload,
    "rotate": IdentityRotatedPayload,
}


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        policy: CompiledPolicy,
        *,
        ids: IdFactory | None = None,
        state: State | None = None,
        default_windows: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.policy = policy
        self.ids = ids or IdFactory()
        self.state = state or State()
        #: provider id → callable(resource) -> window seconds or None
        self.default_windows = dict(default_windows or {})
        #: pool id → (when, remaining) of the last forecast check: the hot path's cache.
        #: Not a projection: it only decides when to look again, never what is true.
        self._checked: dict[str, tuple[float, float]] = {}

    # ------------------------------------------------------------------ events

    def emit(
        self,
        payload: Payload | fc.ForecastSnapshot,
        ts: float,
        *,
        dimensions: Dimensions | None = None,
        source: Source | None = None,
        provider_id: str | None = None,
        pool_id: str | None = None,
        constraint_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str = SENTINEL_UNKNOWN,
        dedupe_key: str | None = None,
    ) -> Event:
        """The event whose payload is ``payload`` (its type names the event's type).

        The envelope's fields are spelt out, not passed on as ``**kwargs``: building
        the event from a dict of them costs twice as much (two of these per intent)."""
        # Each event class has its type as the default of ``event_type``.
        event = event_class_of(payload)(  # type: ignore[call-arg]
            event_id=self.ids.new("ev"),
            ts_event=ts,
            dimensions=dimensions or SYSTEM_DIMENSIONS,
            source=source or DAEMON_SOURCE,
            payload=payload,
            provider_id=provider_id,
            pool_id=pool_id,
            constraint_id=constraint_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            dedupe_key=dedupe_key,
        )
        self.state.apply(event)
        return event

    # ------------------------------------------------------------------ lifecycle

    def start(self, now: float, info: SystemStartedPayload) -> list[Event]:
        return [self.emit(info, now)]

    def stop(self, now: float, reason: str) -> list[Event]:
        return [self.emit(SystemStoppedPayload(reason=reason), now)]

    def set_policy(self, policy: CompiledPolicy, now: float) -> list[Event]:
        previous = self.policy.version
        self.policy = policy
        if self.state.stats.policy_version == policy.version:
            return []
        return [
            self.emit(
                PolicyUpdatedPayload(
                    version=policy.version, source=policy.source, previous=previous
                ),
                now,
                source=Source(origin_kind="operator", origin_id=policy.source),
            )
        ]

    def reject_policy(self, error: PolicyError, source: str, now: float) -> list[Event]:
        return [
            self.emit(
                PolicyRejectedPayload(
                    source=source, error=str(error), kept_version=self.policy.version
                ),
                now,
                source=Source(origin_kind="operator", origin_id=source),
            )
        ]

    # ------------------------------------------------------------------ identities

    def register_identity(
        self, request: IdentityCreate, now: float, *, token_fingerprint: str | None = None
    ) -> list[Event]:
        if request.identity_id in self.state.identities:
            raise Conflict(
                "identity_exists",
                f"identity {request.identity_id!r} is already registered; "
                "rotate its secret or revoke it instead",
            )
        payload = IdentityRegisteredPayload(
            identity_id=request.identity_id,
            provider_id=request.provider_id,
            principal=request.principal,
            kind=request.kind,
            scope_id=request.scope_id,
            labels=request.labels,
            secret_ref=request.secret_ref,
            token_fingerprint=token_fingerprint,
        )
        return [
            self.emit(
                payload,
                now,
                dimensions=Dimensions(identity_id=request.identity_id, scope_id=request.scope_id),
                source=Source(origin_kind="operator", origin_id="api"),
                provider_id=request.provider_id,
            )
        ]

    def identity(self, identity_id: str) -> IdentityRecord:
        record = self.state.identities.get(identity_id)
        if record is None:
            raise UnknownEntity(
                "unknown_identity",
                f"no identity {identity_id!r}; list them with 'ratelord identity list'",
            )
        return record

    def change_identity(
        self, identity_id: str, now: float, payload: IdentityChangedPayload
    ) -> list[Event]:
        """Rotate, revoke or quarantine (the payload's type says which)."""
        record = self.identity(identity_id)
        if record.status == "revoked":
            raise Conflict(
                "identity_revoked",
                f"identity {identity_id!r} is revoked; register a new identity instead",
            )
        return [
            self.emit(
                payload,
                now,
                dimensions=Dimensions(identity_id=identity_id, scope_id=record.scope_id),
                source=Source(origin_kind="operator", origin_id="api"),
                provider_id=record.provider_id,
            )
        ]

    def identity_view(self, record: IdentityRecord) -> Identity:
        pools = [p.pool_id for p in self.state.pools_of(record.provider_id, record.principal)]
        return Identity(
            identity_id=record.identity_id,
            kind=record.kind,
            provider_id=record.provider_id,
            principal=record.principal,
            scope_id=record.scope_id,
            labels=record.labels,
            status=record.status,  # type: ignore[arg-type]
            status_reason=record.status_reason,
            secret_ref=record.secret_ref,
            token_fingerprint=record.token_fingerprint,
            pools=pools,
            registered_at=iso(record.registered_at) or "",
        )

    # ------------------------------------------------------------------ forecasts

    def window_for(self, pool: PoolState) -> float | None:
        if pool.window_seconds:
            return pool.window_seconds
        lookup = self.default_windows.get(pool.provider_id)
        return lookup(pool.resource) if lookup is not None else None

    def forecast_input(self, pool: PoolState, now: float) -> fc.ForecastInput:
        # A refilling pool's horizon is when it would be full again.
        refilling = refill.refills(pool)
        return fc.ForecastInput(
            remaining=effective_remaining(pool, now),
            limit=pool.limit,
            reset_at=now + refill.seconds_to_full(pool, now) if refilling else pool.reset_at,
            window_seconds=self.window_for(pool),
            last_observed_at=pool.last_observed_at,
            drift=fc.drift_weight(pool.drift_score, pool.drift_ts, now),
            refill_rate=pool.refill_rate if refilling else 0.0,
            # Only a reset that has passed needs its grace (the hot path skips it).
            reset_grace=reset_grace(pool)
            if pool.reset_at is not None and now >= pool.reset_at
            else 0.0,
        )

    def forecast(self, pool: PoolState, now: float, cost: float = 0.0) -> fc.ForecastResult:
        return self.forecast_pair(pool, now, cost)[1]

    def forecast_pair(
        self, pool: PoolState, now: float, cost: float
    ) -> tuple[fc.ForecastResult, fc.ForecastResult]:
        """Without and with an intent's cost (one burn estimate for both).

        The cost counts as much as calls on this pool were seen to really spend
        beyond their estimates (:func:`~.state.estimate_inflation`).
        """
        cost *= estimate_inflation(pool)
        return fc.compute_pair(
            pool.burn, self.forecast_input(pool, now), now, cost, pool.unseen_burn
        )

    def _due(self, pool: PoolState, now: float) -> bool:
        last = self._checked.get(pool.pool_id)
        if last is None or now - last[0] >= LAZY_REFRESH_SECONDS:
            return True
        return abs(last[1] - pool.remaining) > LAZY_REFRESH_FRACTION * (pool.limit or 1.0)

    def refresh_forecasts(
        self,
        pool_ids: list[str],
        now: float,
        *,
        correlation_id: str | None = None,
        force: bool = False,
        lazy: bool = False,
    ) -> list[Event]:
        """Emit ``forecast_computed`` (and ``posture_changed``) where the forecast moved.

        ``lazy`` (the intent hot path) skips pools whose last forecast is younger
        than :data:`LAZY_REFRESH_SECONDS` and whose remaining moved less than
        :data:`LAZY_REFRESH_FRACTION` of the limit since: a burst of intents costs
        one forecast, not one each.
        """
        events: list[Event] = []
        for pool_id in pool_ids:
            pool = self.state.pools.get(pool_id)
            if pool is None or (lazy and not self._due(pool, now)):
                continue
            self._checked[pool_id] = (now, pool.remaining)
            result = self.forecast(pool, now)
            snapshot = forecast_snapshot(result, now, pool.remaining)
            posture = posture_of(pool, result.p_exhaustion)
            # A new posture comes with its forecast, so the two never disagree on screen.
            if force or posture != pool.posture or _meaningful_change(pool.forecast, snapshot):
                events.append(
                    self.emit(
                        snapshot,
                        now,
                        pool_id=pool_id,
                        provider_id=pool.provider_id,
                        correlation_id=correlation_id,
                    )
                )
            if posture != pool.posture:
                events.append(
                    self.emit(
                        PostureChangedPayload(
                            from_=pool.posture,
                            to=posture,
                            p_exhaustion=round4(result.p_exhaustion),
                            remaining=pool.remaining,
                        ),
                        now,
                        pool_id=pool_id,
                        provider_id=pool.provider_id,
                        correlation_id=correlation_id,
                    )
                )
                if posture != "OK" and result.seconds_to_reset:
                    events.append(
                        self.emit(
                            ThrottleAdvisedPayload(
                                posture=posture,
                                max_rate_per_second=round(
                                    pool.remaining / result.seconds_to_reset, 6
                                ),
                                burn_rate=round6(result.burn_mean),
                            ),
                            now,
                            pool_id=pool_id,
                            provider_id=pool.provider_id,
                            correlation_id=correlation_id,
                        )
                    )
        return events


#: Posture thresholds, most severe first: (posture, P(exhaustion) at least, fraction left
#: below).  A pool *enters* a posture at these; it *leaves* it only once both values are
#: clear of them by the hysteresis margins below, so a forecast hovering at a threshold
#: (a fresh pool's noisy burn rate) does not flap between two postures.
POSTURES: tuple[tuple[str, float, float], ...] = (("CRIT", 0.5, 0.05), ("WARN", 0.1, 0.20))
LEAVE_RISK_FACTOR = 0.8
LEAVE_FRACTION_MARGIN = 0.02
_SEVERITY = {"OK": 0, "WARN": 1, "CRIT": 2}


def posture_of(pool: PoolState, p_exhaustion: float) -> str:
    """OK / WARN / CRIT from the risk of exhaustion and the fraction left, with hysteresis.

    ``pool.posture`` is the current posture: moving to a less severe one needs
    the risk below ``LEAVE_RISK_FACTOR`` × the threshold and the fraction left
    ``LEAVE_FRACTION_MARGIN`` above it.  Rising is immediate.
    """
    fraction = pool.remaining / pool.limit if pool.limit else 1.0
    current = _SEVERITY.get(pool.posture, 0)
    for posture, risk, below in POSTURES:
        if p_exhaustion >= risk or fraction < below:
            return posture
        if _SEVERITY[posture] <= current and (
            p_exhaustion >= risk * LEAVE_RISK_FACTOR or fraction < below + LEAVE_FRACTION_MARGIN
        ):
            return posture  # not clear of the threshold yet: stay
    return "OK"


def finite(value: float) -> float | None:
    """JSON has no infinity: an infinite duration is ``null``."""
    return round3(value) if math.isfinite(value) else None


def forecast_snapshot(
    result: fc.ForecastResult, now: float, remaining: float
) -> fc.ForecastSnapshot:
    return fc.ForecastSnapshot(
        remaining=remaining,
        tte_p50_seconds=finite(result.tte_p50),
        tte_p90_seconds=finite(result.tte_p90),
        tte_p99_seconds=finite(result.tte_p99),
        p_exhaustion=round4(result.p_exhaustion),
        margin_seconds=finite(result.margin),
        burn_rate=round6(result.burn_mean),
        burn_stddev=round6(result.burn_sigma),
        seconds_to_reset=None
        if result.seconds_to_reset is None
        else round3(result.seconds_to_reset),
        as_of=now,
        cold_start=result.cold_start,
    )


def _meaningful_change(previous: fc.ForecastSnapshot | None, current: fc.ForecastSnapshot) -> bool:
    if previous is None:
        return True
    if abs(previous.p_exhaustion - current.p_exhaustion) >= RISK_CHANGE:
        return True
    old, new = previous.tte_p50_seconds, current.tte_p50_seconds
    if (old is None) != (new is None):
        return True
    if old is None or new is None:
        return False
    return abs(new - old) > TTE_CHANGE * max(old, 1.0)
