"""What a stretch of events amounts to: the numbers a scenario is compared on.

The same :class:`Tally` reads the recorded log of a period (the baseline) and
the events a sandboxed replay produced (the scenario), so the two columns of a
comparison are computed alike.
"""

from __future__ import annotations

import math

import msgspec

from ratelord.engine.clock import iso
from ratelord.engine.events import (
    Event,
    ForecastComputed,
    IntentDecided,
    PolicyTriggered,
    PostureChanged,
    UsageObserved,
)
from ratelord.engine.state import State

HEAT_BUCKET = 3600


class Summary(msgspec.Struct, kw_only=True):
    intents: int = 0
    approved: int = 0
    modified: int = 0
    waited: int = 0
    deferred: int = 0
    denied: int = 0
    denial_rate: float = 0.0
    wait_rate: float = 0.0
    #: approved calls beyond what the provider really had left: the 429s they would meet
    rate_limited: int = 0
    units_approved: float = 0.0
    #: the shortest P50 time to exhaustion any pool was forecast during the period
    min_tte_p50_seconds: float | None = None
    first_exhaustion: str | None = None
    pools_critical: list[str] = []
    #: rule → fired count per hour of the period (the trigger heatmap's rows)
    triggers: dict[str, list[int]] = {}


class Tally:
    """Folds events into a :class:`Summary`; ``since``/``until`` fix the heatmap's columns."""

    def __init__(self, since: float, until: float) -> None:
        self.since = since
        self.hours = max(1, math.ceil((until - since) / HEAT_BUCKET))
        self.summary = Summary()
        #: pool → what the provider really had left, as far as this stream tells
        self._left: dict[str, float] = {}
        self._critical: set[str] = set()

    def seed(self, state: State) -> None:
        """Start from what each pool had left when the period began."""
        for pool in state.pools.values():
            if pool.observed_remaining is not None:
                self._left[pool.pool_id] = pool.remaining

    def add(self, event: Event) -> None:
        s = self.summary
        if isinstance(event, IntentDecided):
            p = event.payload
            s.intents += 1
            if p.decision == "deny_with_reason":
                s.denied += 1
            elif p.modifications.defer_until:
                s.deferred += 1
            elif p.decision == "approve_with_modifications":
                s.modified += 1
                s.waited += 1 if p.modifications.wait_seconds else 0
            else:
                s.approved += 1
            for pool_id, cost in p.charges.items():
                s.units_approved += cost
                self._spend(pool_id, float(cost), event.ts_event)
        elif isinstance(event, UsageObserved) and event.pool_id is not None:
            self._left[event.pool_id] = float(event.payload.remaining)
            if event.payload.remaining <= 0:
                self._exhausted(event.ts_event)
        elif isinstance(event, ForecastComputed):
            tte = event.payload.tte_p50_seconds
            if tte is not None and (s.min_tte_p50_seconds is None or tte < s.min_tte_p50_seconds):
                s.min_tte_p50_seconds = tte
        elif isinstance(event, PostureChanged) and event.payload.to == "CRIT":
            self._critical.add(event.pool_id or "?")
        elif isinstance(event, PolicyTriggered):
            rule = f"{event.payload.policy_id}/{event.payload.rule}"
            row = self.summary.triggers.get(rule)
            if row is None:
                row = self.summary.triggers[rule] = [0] * self.hours
            column = int((event.ts_event - self.since) // HEAT_BUCKET)
            row[min(max(column, 0), self.hours - 1)] += 1

    def _spend(self, pool_id: str, cost: float, ts: float) -> None:
        left = self._left.get(pool_id)
        if left is None:
            return
        if cost > left + 1e-9:
            self.summary.rate_limited += 1
            self._exhausted(ts)
        self._left[pool_id] = max(0.0, left - cost)

    def _exhausted(self, ts: float) -> None:
        if self.summary.first_exhaustion is None:
            self.summary.first_exhaustion = iso(ts)

    def result(self) -> Summary:
        s = self.summary
        s.denial_rate = round(s.denied / s.intents, 4) if s.intents else 0.0
        s.wait_rate = round((s.waited + s.deferred) / s.intents, 4) if s.intents else 0.0
        s.units_approved = round(s.units_approved, 3)
        s.pools_critical = sorted(self._critical)
        return s
