"""Observations → events: provider polls, provider errors, agents' usage reports.

Local accounting lives here: between observations the engine debits approved
intents from a pool's estimate; when the provider speaks again, consumption
it saw beyond those debits is *unaccounted* (someone spent behind ratelord's
back) and feeds the burn rate, and a gap beyond the drift threshold emits
``drift_detected`` before the estimate snaps to the provider's value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from ratelord.engine import approvals, budgets, refill
from ratelord.engine.events import (
    ConstraintObservedPayload,
    Dimensions,
    DriftDetectedPayload,
    Event,
    IdentityQuarantinedPayload,
    PrincipalDiscoveredPayload,
    ProviderErrorPayload,
    ProviderPollObservedPayload,
    ResetObservedPayload,
    Source,
    UsageObservedPayload,
    UsageReportedPayload,
)
from ratelord.engine.lease_state import unreported
from ratelord.engine.observations import PollResult, PoolObservation
from ratelord.engine.state import IdentityRecord, PoolState, pool_id_for, this_window
from ratelord.llm import PriceTable
from ratelord.schema import UsageAccepted, UsageReport

if TYPE_CHECKING:
    from ratelord.engine.core import Engine

#: A reset is recognised when the provider's reset moves forward by more than this.
RESET_EPSILON = 1.0


def observe_poll(
    engine: Engine, identity_id: str, result: PollResult, *, correlation_id: str | None = None
) -> list[Event]:
    record = engine.identity(identity_id)
    now = result.observed_at
    correlation_id = correlation_id or engine.ids("poll")
    dims = Dimensions(identity_id=identity_id, scope_id=record.scope_id)
    source = Source(origin_kind="provider", origin_id=record.provider_id)
    events: list[Event] = []
    if result.principal and result.principal != record.principal:
        events.append(
            engine.emit(
                PrincipalDiscoveredPayload(principal=result.principal, previous=record.principal),
                now,
                dimensions=dims,
                source=source,
                provider_id=record.provider_id,
                correlation_id=correlation_id,
            )
        )
    poll_event = engine.emit(
        ProviderPollObservedPayload(
            resources=sorted(o.resource for o in result.observations),
            principal=record.principal,
            status_code=result.raw_status,
        ),
        now,
        dimensions=dims,
        source=source,
        provider_id=record.provider_id,
        correlation_id=correlation_id,
    )
    events.append(poll_event)
    events += _observe_pools(
        engine,
        record,
        result.observations,
        now,
        origin="poll",
        correlation_id=correlation_id,
        causation_id=poll_event.event_id,
        dedupe=lambda pool_id, obs: f"poll:{pool_id}:{now}",
    )
    return events


def observe_error(
    engine: Engine,
    identity_id: str,
    *,
    kind: str,
    message: str,
    now: float,
    retry_after: float | None = None,
    status_code: int | None = None,
) -> list[Event]:
    record = engine.identity(identity_id)
    dims = Dimensions(identity_id=identity_id, scope_id=record.scope_id)
    error = engine.emit(
        ProviderErrorPayload(
            kind=kind, message=message, retry_after=retry_after, status_code=status_code
        ),
        now,
        dimensions=dims,
        source=Source(origin_kind="provider", origin_id=record.provider_id),
        provider_id=record.provider_id,
    )
    events = [error]
    limit = engine.config.quarantine_after_auth_failures
    if kind == "auth" and limit and record.auth_failures >= limit and record.status == "active":
        events.append(
            engine.emit(
                IdentityQuarantinedPayload(
                    reason=f"{record.auth_failures} consecutive authentication failures "
                    f"at {record.provider_id}; rotate its secret to restore it"
                ),
                now,
                dimensions=dims,
                provider_id=record.provider_id,
                causation_id=error.event_id,
            )
        )
    return events


def observe_usage(
    engine: Engine,
    report: UsageReport,
    header_observations: list[PoolObservation],
    now: float,
) -> tuple[UsageAccepted, list[Event]]:
    """An agent says what it spent and/or what the provider's headers said."""
    record = engine.identity(report.identity_id)
    dims = Dimensions(
        agent_id=report.agent_id,
        identity_id=report.identity_id,
        workload_id=report.workload_id,
        scope_id=report.scope_id,
    )
    events: list[Event] = []
    corrections = _corrections(engine, record, report)
    money = _money(engine, record, report, now)
    if corrections or report.cost is not None or report.costs or money is not None:
        events.append(
            engine.emit(
                UsageReportedPayload(
                    intent_id=report.intent_id,
                    cost=report.cost,
                    resource=report.resource,
                    costs=report.costs or UNSET,
                    corrections=corrections,
                    money=UNSET if money is None else money,
                ),
                now,
                dimensions=dims,
                source=Source(origin_kind="client", origin_id=report.agent_id),
                provider_id=record.provider_id,
                correlation_id=report.intent_id,
            )
        )
    if header_observations and record.principal:
        events += _observe_pools(
            engine,
            record,
            header_observations,
            now,
            origin="headers",
            correlation_id=report.intent_id,
            causation_id=events[0].event_id if events else None,
            dedupe=lambda pool_id, obs: f"hdr:{pool_id}:{obs.reset_at}:{obs.remaining}",
            # The response's own call is in its headers (a refused one spent nothing).
            own=engine.state.charges.get(report.intent_id or ""),
        )
    pools = sorted({e.pool_id for e in events if e.pool_id} | set(corrections))
    if corrections:
        events += engine.refresh_forecasts(sorted(corrections), now)
    return UsageAccepted(events=len(events), pools=pools), events


def _corrections(engine: Engine, record: IdentityRecord, report: UsageReport) -> dict[str, float]:
    """Per pool, what to debit (or credit back) so local state matches the reported cost."""
    reserved = engine.state.charges.get(report.intent_id or "", {})
    if report.costs:
        if record.principal is None:
            return {}
        actual = {
            pool_id_for(record.provider_id, resource, record.principal): amount
            for resource, amount in report.costs.items()
        }
        return {pid: amount - reserved.get(pid, 0.0) for pid, amount in actual.items()}
    if report.cost is None:
        return {}
    if reserved:
        if report.resource is not None:
            pool_id = pool_id_for(record.provider_id, report.resource, record.principal or "")
            return {pool_id: report.cost - reserved.get(pool_id, 0.0)}
        total = sum(reserved.values()) or 1.0
        # Scale every charge of the intent by the same factor.
        return {pid: cost * report.cost / total - cost for pid, cost in reserved.items()}
    if record.principal is None:
        return {}
    pools = engine.state.pools_of(record.provider_id, record.principal)
    if report.resource is not None:
        pool_id = pool_id_for(record.provider_id, report.resource, record.principal)
    elif len(pools) == 1:
        pool_id = pools[0].pool_id
    else:
        return {}
    return {pool_id: report.cost}


def _money(
    engine: Engine, record: IdentityRecord, report: UsageReport, now: float
) -> dict[str, float] | None:
    """Ledger key → how much the call's real cost moves each money budget it counts in.

    A reported intent moves the budgets it was charged to by the difference to its
    estimate (once: the reservation is then settled); a report without one adds its
    cost to the budgets it matches.  ``None`` when there is nothing to price.
    """
    config = engine.config
    if not config.budgets or (report.tokens is None and not report.costs):
        return None
    if report.intent_id is not None:
        reserved = engine.state.money.get(report.intent_id)
        if reserved is None:  # not counted in any budget, or reported already
            return None
    else:
        matched = budgets.matching(
            config.budgets,
            report.agent_id,
            report.workload_id,
            report.identity_id,
            {},
            record.labels,
        )
        reserved = {budgets.ledger_key(b, now): 0.0 for b in matched}
    cost, unpriced = budgets.call_money(config.prices or PriceTable(), report.tokens, report.costs)
    if unpriced or not reserved:  # no price: the estimate stands (unknown is not free)
        return None
    return {key: cost - estimate for key, estimate in reserved.items()}


def _observe_pools(
    engine: Engine,
    record: IdentityRecord,
    observations: Iterable[PoolObservation],
    now: float,
    *,
    origin: str,
    correlation_id: str | None,
    causation_id: str | None,
    dedupe: Any,
    own: dict[str, float] | None = None,
) -> list[Event]:
    if record.principal is None:
        return []
    state = engine.state
    events: list[Event] = []
    touched: list[str] = []
    drifted: list[str] = []
    dims = Dimensions(identity_id=record.identity_id, scope_id=record.scope_id)
    envelope: dict[str, Any] = {
        "dimensions": dims,
        "source": Source(
            origin_kind="provider" if origin == "poll" else "client", origin_id=record.provider_id
        ),
        "provider_id": record.provider_id,
        "correlation_id": correlation_id,
    }
    if causation_id:
        envelope["causation_id"] = causation_id
    for obs in observations:
        pool_id = pool_id_for(record.provider_id, obs.resource, record.principal)
        key = dedupe(pool_id, obs)
        if state.seen(key):
            continue
        pool = state.pools.get(pool_id)
        principal = pool_id.split(":", 2)[2]
        unaccounted = 0.0
        if pool is None or _constraint_changed(pool, obs):
            events.append(
                engine.emit(
                    ConstraintObservedPayload(
                        resource=obs.resource,
                        principal=principal,
                        limit=obs.limit,
                        unit=obs.unit,
                        window=obs.window,
                        window_seconds=obs.window_seconds,
                        reset_at=obs.reset_at,
                    ),
                    now,
                    pool_id=pool_id,
                    constraint_id=pool_id,
                    **envelope,
                )
            )
            if pool is not None:
                drifted.append(pool_id)  # a limit cut may leave waiting approvals uncovered
        elif _is_reset(pool, obs):
            events.append(
                engine.emit(
                    ResetObservedPayload(
                        resource=obs.resource,
                        principal=principal,
                        previous_reset_at=pool.reset_at,
                        reset_at=obs.reset_at,
                        remaining_before=pool.remaining,
                        remaining_after=obs.remaining,
                    ),
                    now,
                    pool_id=pool_id,
                    **envelope,
                )
            )
        else:
            # Calls told to wait have not reached the provider yet: it cannot have seen them
            # (those past the reset are not in the estimate: they spend the next window).
            waiting = sum(c for t, c in pool.pending if t > now and this_window(pool, t))
            expected = waiting + (refill.balance(pool, now) if pool.refill_rate else pool.remaining)
            # Leased units count as not spent until their holders report them (every
            # second or so), but the provider sees them go at once: what holders may have
            # spent since their last report is not use behind ratelord's back.
            expected += pool.leased
            in_flight = unreported(state, pool_id) if pool.leased else 0.0
            difference = expected - obs.remaining
            if difference > 0:
                difference = max(0.0, difference - in_flight)
            threshold = engine.config.drift_threshold * (obs.limit or pool.limit or 0.0)
            if pool.refill_rate:  # refilled since: only what the model cannot explain
                unaccounted = max(0.0, difference)
            elif pool.observed_remaining is not None:
                # What ratelord knows reached the provider since it last looked: calls that
                # went at once, and calls told to wait whose time has come.
                seen_consumed = pool.observed_remaining - obs.remaining
                landed = pool.immediate_since_observation + sum(
                    c for t, c in pool.pending if t <= now
                )
                unaccounted = max(0.0, seen_consumed - landed - in_flight)
            unaccounted = _beyond_rounding(unaccounted, obs.remaining)
            if threshold > 0 and abs(difference) > threshold:
                events.append(
                    engine.emit(
                        DriftDetectedPayload(
                            resource=obs.resource,
                            principal=principal,
                            expected=expected,
                            observed=obs.remaining,
                            difference=difference,
                            threshold=threshold,
                            origin=origin,
                        ),
                        now,
                        pool_id=pool_id,
                        **envelope,
                    )
                )
                drifted.append(pool_id)
        events.append(
            engine.emit(
                UsageObservedPayload(
                    resource=obs.resource,
                    principal=principal,
                    remaining=max(0.0, obs.remaining),
                    used=obs.used,
                    limit=obs.limit,
                    reset_at=obs.reset_at,
                    unaccounted=unaccounted,
                    origin=origin,
                    own_call=(own.get(pool_id) or UNSET) if own else UNSET,
                ),
                now,
                pool_id=pool_id,
                dedupe_key=key,
                **envelope,
            )
        )
        touched.append(pool_id)
    # Approvals still waiting on a pool that drifted (or changed) may no longer fit: revoked.
    events += approvals.revoke_broken(engine, drifted, now)
    events += engine.refresh_forecasts(touched, now, correlation_id=correlation_id)
    return events


def _beyond_rounding(unaccounted: float, remaining: float) -> float:
    """Unaccounted use, unless it is only the provider's rounding.

    A provider that reports whole units (the usual headers) has up to one unit more
    than it says: when calls spend fractions of a unit, what it was seen to consume
    differs from what ratelord counted by less than one unit, either way, with nobody
    spending behind ratelord's back.  Read as unseen use, that noise would keep
    headroom from the last units of every window.
    """
    if unaccounted < 1.0 - 1e-9 and remaining == math.floor(remaining):
        return 0.0
    return unaccounted


def _constraint_changed(pool: PoolState, obs: PoolObservation) -> bool:
    return (
        pool.limit != obs.limit
        or pool.unit != obs.unit
        or pool.window != obs.window
        or _window_changed(pool, obs.window_seconds)
        or (pool.reset_at is None and obs.reset_at is not None)
    )


def _window_changed(pool: PoolState, window_seconds: float | None) -> bool:
    """A refilling pool's window is measured on every response: only a real change counts."""
    if window_seconds is None or pool.window_seconds == window_seconds:
        return False
    if pool.window == refill.REFILL and pool.window_seconds:
        return abs(window_seconds - pool.window_seconds) > 0.1 * pool.window_seconds
    return True


def _is_reset(pool: PoolState, obs: PoolObservation) -> bool:
    if pool.window == refill.REFILL:  # a token bucket refills; it never resets
        return False
    if obs.reset_at is None or pool.reset_at is None:
        return False
    return obs.reset_at > pool.reset_at + RESET_EPSILON
