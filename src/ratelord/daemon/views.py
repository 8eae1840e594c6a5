"""Projections → API resources (the shapes of SPEC §8)."""

from __future__ import annotations

from typing import Literal

import msgspec

from ratelord.engine import budgets, refill
from ratelord.engine.clock import iso
from ratelord.engine.core import Engine
from ratelord.engine.events import Event
from ratelord.engine.forecast import ForecastSnapshot
from ratelord.engine.state import PoolState, effective_remaining, principal_key
from ratelord.llm import PriceTable
from ratelord.schema import (
    Consumer,
    Explanation,
    Forecast,
    Graph,
    GraphPrincipal,
    HistoryPoint,
    MoneyBudget,
    Pool,
    PoolDetail,
    TopConsumers,
)

TOP_CONSUMERS = 5


def forecast_view(snapshot: ForecastSnapshot | None) -> Forecast | None:
    if snapshot is None:
        return None
    return Forecast(
        tte_p50_seconds=snapshot.tte_p50_seconds,
        tte_p90_seconds=snapshot.tte_p90_seconds,
        tte_p99_seconds=snapshot.tte_p99_seconds,
        p_exhaustion=snapshot.p_exhaustion,
        margin_seconds=snapshot.margin_seconds,
        burn_rate=snapshot.burn_rate,
        burn_stddev=snapshot.burn_stddev,
        seconds_to_reset=snapshot.seconds_to_reset,
        as_of=iso(snapshot.as_of) or "",
        cold_start=snapshot.cold_start,
        model=snapshot.model,
    )


def pool_view(engine: Engine, pool: PoolState, now: float) -> Pool:
    members = engine.state.members(pool)
    principal = engine.state.identities[members[0]].principal if members else None
    remaining, reset_at = pool.remaining, pool.reset_at
    if refill.refills(pool):  # a token bucket has refilled since its last event
        remaining = effective_remaining(pool, now)
        reset_at = now + refill.seconds_to_full(pool, now)
    return Pool(
        pool_id=pool.pool_id,
        provider_id=pool.provider_id,
        resource=pool.resource,
        principal=principal or pool.principal,
        unit=pool.unit,
        limit=pool.limit,
        remaining=remaining,
        used=pool.used,
        reset_at=iso(reset_at),
        window=pool.window,  # type: ignore[arg-type]
        window_seconds=engine.window_for(pool),
        members=members,
        status=pool.posture,  # type: ignore[arg-type]
        forecast=forecast_view(pool.forecast),
        stale_seconds=None
        if pool.last_observed_at is None
        else round(max(0.0, now - pool.last_observed_at), 3),
        drift_count=pool.drift_count,
    )


def pool_detail(engine: Engine, pool: PoolState, now: float) -> PoolDetail:
    return PoolDetail(
        **msgspec.structs.asdict(pool_view(engine, pool, now)),
        history=[HistoryPoint(ts=iso(ts) or "", remaining=left) for ts, left in pool.history],
        top_consumers=TopConsumers(
            agents=_top(pool.window_by_agent),
            identities=_top(pool.window_by_identity),
            scopes=_top(pool.window_by_scope),
        ),
        scope=_scope_of(engine, pool),
    )


def _top(usage: dict[str, float]) -> list[Consumer]:
    ranked = sorted(usage.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CONSUMERS]
    return [Consumer(id=who, used=round(used, 3)) for who, used in ranked]


def _scope_of(engine: Engine, pool: PoolState) -> str:
    scopes = {engine.state.identities[i].scope_id for i in engine.state.members(pool)}
    return scopes.pop() if len(scopes) == 1 else ("mixed" if scopes else "sentinel:global")


_event_encoder = msgspec.json.Encoder()


def event_json(event: Event) -> bytes:
    """An event as the API shows it: the log's envelope, plus ``occurred_at`` — its
    ``ts_event`` (epoch seconds, kept for compatibility) as RFC 3339, like every other
    time the API gives."""
    body = _event_encoder.encode(event)
    return b'{"occurred_at":"' + (iso(event.ts_event) or "").encode() + b'",' + body[1:]


def graph(engine: Engine) -> Graph:
    """principal → identities and pools: who shares what."""
    principals: dict[str, GraphPrincipal] = {}
    for record in engine.state.identities.values():
        key = f"{record.provider_id}:{record.principal or '?'}"
        entry = principals.setdefault(
            key,
            GraphPrincipal(
                provider_id=record.provider_id,
                principal=record.principal,
                identities=[],
                pools=[],
            ),
        )
        entry.identities.append(record.identity_id)
        entry.pools = [
            p.pool_id for p in engine.state.pools_of(record.provider_id, record.principal)
        ]
    return Graph(
        principals=list(principals.values()),
        workloads={k: dict(v) for k, v in engine.config.workloads.items()},
    )


def explain(engine: Engine, a: str, b: str) -> Explanation:
    """Why two identities do (or do not) draw from the same pools."""
    left, right = engine.identity(a), engine.identity(b)
    verdict: Literal["shared", "isolated", "unknown"]
    left_pools = {p.pool_id for p in engine.state.pools_of(left.provider_id, left.principal)}
    right_pools = {p.pool_id for p in engine.state.pools_of(right.provider_id, right.principal)}
    shared = sorted(left_pools & right_pools)
    if left.provider_id != right.provider_id:
        verdict = "isolated"
        why = f"{a} is charged by provider {left.provider_id}, {b} by {right.provider_id}"
    elif left.principal is None or right.principal is None:
        # Not knowing is not isolation: the two may well share every pool.
        verdict = "unknown"
        unknown = ", ".join(r.identity_id for r in (left, right) if r.principal is None)
        why = (
            f"the principal of {unknown} is not known yet (the provider has not named it); "
            "until it is, treat the two as possibly sharing"
        )
    elif principal_key(left.provider_id, left.principal) == principal_key(
        right.provider_id, right.principal
    ):
        verdict = "shared"
        why = (
            f"both are charged to principal {left.principal} at "
            f"{left.provider_id}, so they draw from the same pools"
        )
    else:
        verdict = "isolated"
        why = (
            f"{a} is charged to {left.principal} and {b} to {right.principal}; "
            "different principals have separate pools"
        )
    return Explanation(
        a=a,
        b=b,
        verdict=verdict,
        shared=verdict == "shared",
        shared_pools=shared,
        explanation=f"{verdict}: {why}",
        a_principal=left.principal,
        b_principal=right.principal,
    )


def money_budgets(engine: Engine, now: float) -> list[MoneyBudget]:
    """Every configured money budget in its current period."""
    config = engine.config
    currency = (config.prices or PriceTable()).currency
    return [budgets.budget_view(b, engine.state.budgets, now, currency) for b in config.budgets]
