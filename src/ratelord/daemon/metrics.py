"""Prometheus metrics and the ``/v1/stats`` vitals.

The latency histogram is updated on the request path; the decision and rule
counters and the per-pool gauges are read from the projections only when scraped
(a custom collector), so an intent pays for none of them, and
``ratelord_decisions_total`` counts exactly what ``/v1/stats`` counts: every
decision in the log, whichever way it was asked (one intent, a batch, an
in-process demo agent) and across restarts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ratelord.daemon import views
from ratelord.schema import Lease, Stats, StoreStats

if TYPE_CHECKING:
    from ratelord.daemon.runtime import Runtime

DECISION_KINDS = ("approve", "approve_with_modifications", "deny_with_reason")
MINUTES_SHOWN = 30
DENIAL_WINDOW_MINUTES = 5


class Metrics:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.registry = CollectorRegistry()
        self.intent_latency = Histogram(
            "ratelord_intent_latency_seconds",
            "POST /v1/intent end to end, decision logged",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.leases = Counter(
            "ratelord_leases", "Lease decisions by outcome", ["status"], registry=self.registry
        )
        self.registry.register(_StateCollector(runtime))

    def count_lease(self, lease: Lease) -> None:
        partial = lease.status == "active" and lease.granted < lease.requested
        self.leases.labels("partial" if partial else lease.status).inc()

    def render(self) -> tuple[bytes, bytes]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST.encode()

    def stats(self) -> Stats:
        runtime = self.runtime
        stats = runtime.engine.state.stats
        now_minute = int(runtime.now() // 60)
        per_minute = dict((m, (count, denials)) for m, count, denials in stats.minutes)
        series = [
            per_minute.get(m, (0, 0))[0]
            for m in range(now_minute - MINUTES_SHOWN + 1, now_minute + 1)
        ]
        recent = [
            per_minute.get(m, (0, 0))
            for m in range(now_minute - DENIAL_WINDOW_MINUTES + 1, now_minute + 1)
        ]
        total = sum(c for c, _ in recent)
        writer = runtime.writer
        return Stats(
            intents_total=stats.intents_total,
            decisions={
                k: stats.decisions.get(k, 0)
                for k in ("approve", "approve_with_modifications", "deny_with_reason")
            },
            intents_per_minute=series,
            denial_rate=round(sum(d for _, d in recent) / total, 4) if total else 0.0,
            rules_fired=dict(sorted(stats.rules_fired.items())),
            store=StoreStats(
                commit_lag_ms=round(writer.last_commit_seconds * 1000, 3),
                queue_depth=writer.queue_depth,
                high_water_seq=runtime.high_water(),
                commits=writer.commits,
            ),
        )


class _StateCollector:
    """Per-pool gauges and store health, computed at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        yield from _decision_metrics(self.runtime)
        labels = ["pool_id", "provider", "resource"]
        remaining = GaugeMetricFamily("ratelord_pool_remaining", "Remaining budget", labels=labels)
        limit = GaugeMetricFamily("ratelord_pool_limit", "Budget limit", labels=labels)
        tte = GaugeMetricFamily(
            "ratelord_pool_tte_p99_seconds", "P99 time to exhaustion", labels=labels
        )
        risk = GaugeMetricFamily(
            "ratelord_pool_p_exhaustion", "Probability of exhaustion before reset", labels=labels
        )
        for pool in self.runtime.engine.state.pools.values():
            key = [pool.pool_id, pool.provider_id, pool.resource]
            remaining.add_metric(key, pool.remaining)
            if pool.limit is not None:
                limit.add_metric(key, pool.limit)
            forecast = pool.forecast
            if forecast is None:
                continue
            if forecast.tte_p99_seconds is not None:
                tte.add_metric(key, forecast.tte_p99_seconds)
            risk.add_metric(key, forecast.p_exhaustion)
        yield from (remaining, limit, tte, risk)
        yield from _budget_metrics(self.runtime)
        yield from _lease_metrics(self.runtime)
        writer = self.runtime.writer
        lag = GaugeMetricFamily("ratelord_store_commit_lag_seconds", "Duration of the last commit")
        lag.add_metric([], writer.last_commit_seconds)
        depth = GaugeMetricFamily("ratelord_store_queue_depth", "Events waiting for a commit")
        depth.add_metric([], writer.queue_depth)
        seq = GaugeMetricFamily("ratelord_store_high_water_seq", "Last appended seq")
        seq.add_metric([], self.runtime.high_water())
        yield from (lag, depth, seq)


def _budget_metrics(runtime: Runtime) -> Iterator[Metric]:
    """Each money budget's spent, limit and forecast to the end of its period."""
    labels = ["budget_id", "period", "currency"]
    families = {
        "spent": GaugeMetricFamily(
            "ratelord_budget_spent", "Money committed this period", labels=labels
        ),
        "limit": GaugeMetricFamily("ratelord_budget_limit", "Money budget limit", labels=labels),
        "forecast_end": GaugeMetricFamily(
            "ratelord_budget_forecast_end", "Money forecast by the period's end", labels=labels
        ),
    }
    for view in views.money_budgets(runtime.engine, runtime.now()):
        key = [view.budget_id, view.period, view.currency]
        families["spent"].add_metric(key, view.spent)
        families["limit"].add_metric(key, view.limit)
        families["forecast_end"].add_metric(key, view.forecast_end)
    yield from families.values()


def _decision_metrics(runtime: Runtime) -> Iterator[Metric]:
    """Decisions by outcome and rules fired, as the projection counted them from the log."""
    stats = runtime.engine.state.stats
    decisions = CounterMetricFamily(
        "ratelord_decisions", "Intent decisions by outcome", labels=["decision"]
    )
    for kind in DECISION_KINDS:
        decisions.add_metric([kind], stats.decisions.get(kind, 0))
    rules = CounterMetricFamily("ratelord_rules_fired", "Policy rules fired", labels=["rule"])
    for rule, count in sorted(stats.rules_fired.items()):
        rules.add_metric([rule], count)
    yield from (decisions, rules)


def _lease_metrics(runtime: Runtime) -> Iterator[Metric]:
    """Every live lease: holder, pool, size, spent, expiry; and each pool's leased units.

    A lease over a workload's pools has one series per pool, in that pool's units.
    """
    labels = ["lease_id", "holder", "pool_id"]
    granted = GaugeMetricFamily(
        "ratelord_lease_granted", "Units granted (of the pool)", labels=labels
    )
    spent = GaugeMetricFamily(
        "ratelord_lease_spent", "Units reported spent (of the pool)", labels=labels
    )
    expires = GaugeMetricFamily(
        "ratelord_lease_expires_at_seconds", "When the lease expires (unix time)", labels=labels
    )
    leased = GaugeMetricFamily(
        "ratelord_pool_leased", "Units leased and not yet spent", labels=["pool_id"]
    )
    state = runtime.engine.state
    for lease in state.leases.values():
        for pool_id, per in lease.pools.items():
            key = [lease.lease_id, lease.agent_id, pool_id]
            granted.add_metric(key, lease.granted * per)
            spent.add_metric(key, lease.spent * per)
            expires.add_metric(key, lease.expires_at)
    for pool in state.pools.values():
        if pool.leased:
            leased.add_metric([pool.pool_id], pool.leased)
    yield from (granted, spent, expires, leased)
