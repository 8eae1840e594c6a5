"""What if: replay a recorded period through the real engine under other conditions.

The sandbox starts from the projections as they were when the period began (a
copy: the live engine is never touched) and drives the recorded *inputs* of the
period through a private :class:`Engine` — each ``intent_submitted`` becomes an
intent again (``traffic`` times as many; ``clones`` more copies of one agent's
work) and each provider observation becomes an observation again, adjusted for
what the scenario changed.  Everything the engine derives (decisions, rule
triggers, forecasts, postures) is recomputed, never copied, and every event it
produces stays in memory; nothing is written to the log.

The provider's answers are modelled: a pool's *used* is what the recording saw,
plus what the scenario spent beyond the recording since the last reset; with
``limit`` the pool's capacity is scaled and *used* kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TypeVar, cast

import msgspec
from msgspec import UnsetType

from ratelord.engine.arbitration import decide
from ratelord.engine.clock import iso
from ratelord.engine.core import Engine
from ratelord.engine.events import (
    ConstraintObserved,
    ConstraintObservedPayload,
    Event,
    IdentityQuarantined,
    IdentityRegistered,
    IdentityRevoked,
    IdentityRotated,
    IntentDecided,
    IntentSubmitted,
    PrincipalDiscovered,
    ProviderError,
    ResetObserved,
    UsageObserved,
    UsageReported,
)
from ratelord.engine.observations import PollResult, PoolObservation, Window
from ratelord.engine.observe import observe_poll
from ratelord.history.summary import Summary, Tally
from ratelord.schema import IntentRequest

T = TypeVar("T")

#: Recorded events replayed as they are: they are inputs, not the engine's conclusions.
_PASS_THROUGH = (
    IdentityRegistered,
    IdentityRotated,
    IdentityRevoked,
    IdentityQuarantined,
    PrincipalDiscovered,
    ProviderError,
    UsageReported,
)


class Modifiers(msgspec.Struct, kw_only=True, frozen=True):
    traffic: float = 1.0
    limit: float = 1.0
    clone_agent: str | None = None
    clones: int = 0


class ReplayResult(msgspec.Struct, kw_only=True):
    since: str
    until: str
    policy_version: str
    modifiers: Modifiers
    baseline: Summary
    scenario: Summary
    events_read: int
    events_produced: int
    seconds: float


class _Traffic:
    """Deterministic thinning or multiplication: k × the intents, spread evenly."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._carry = 0.0

    def copies(self) -> int:
        self._carry += self.factor
        whole = int(self._carry + 1e-9)
        self._carry -= whole
        return whole


class Sandbox:
    def __init__(self, engine: Engine, modifiers: Modifiers, *, since: float, until: float) -> None:
        """``engine`` is a private one, over the state as it was at ``since``."""
        self.engine = engine
        self.modifiers = modifiers
        self.since, self.until = since, until
        self.baseline = Tally(since, until)
        self.scenario = Tally(since, until)
        for tally in (self.baseline, self.scenario):
            tally.seed(engine.state)
        self._traffic = _Traffic(modifiers.traffic)
        #: pool → units the scenario spent beyond the recording since the pool's last reset
        self._extra: dict[str, float] = {}
        self._constraints: dict[str, ConstraintObservedPayload] = {}
        self.read = 0
        self.produced = 0

    def run(self, recorded: Iterable[Event]) -> None:
        for event in recorded:
            if event.ts_event > self.until:
                break
            self.read += 1
            self.baseline.add(event)
            self._step(event)

    def _step(self, event: Event) -> None:
        if isinstance(event, IntentSubmitted):
            self._intent(event)
        elif isinstance(event, IntentDecided):
            for pool_id, cost in event.payload.charges.items():
                self._extra[pool_id] = self._extra.get(pool_id, 0.0) - cost
        elif isinstance(event, ConstraintObserved) and event.pool_id is not None:
            self._constraints[event.pool_id] = event.payload
        elif isinstance(event, ResetObserved) and event.pool_id is not None:
            self._extra[event.pool_id] = 0.0
        elif isinstance(event, UsageObserved):
            self._observation(event)
        elif isinstance(event, _PASS_THROUGH):
            self._emit(
                [
                    self.engine.emit(
                        event.payload,
                        event.ts_event,
                        dimensions=event.dimensions,
                        source=event.source,
                        provider_id=event.provider_id,
                        pool_id=event.pool_id,
                    )
                ]
            )

    def _intent(self, event: IntentSubmitted) -> None:
        p, dims = event.payload, event.dimensions
        agents = [dims.agent_id] * self._traffic.copies()
        m = self.modifiers
        if m.clone_agent is not None and dims.agent_id == m.clone_agent:
            agents += [f"{dims.agent_id}+{n}" for n in range(1, m.clones + 1)]
        for agent in agents:
            request = IntentRequest(
                agent_id=agent,
                identity_id=dims.identity_id,
                workload_id=dims.workload_id,
                scope_id=dims.scope_id,
                urgency=p.urgency,  # type: ignore[arg-type]
                resource=p.resource,
                cost=p.cost,
                costs=p.costs or {},
                labels=p.labels,
            )
            decided = decide(self.engine, request, event.ts_event)
            self._emit(decided.events)
            for pool_id, cost in decided.charges.items():
                self._extra[pool_id] = self._extra.get(pool_id, 0.0) + cost

    def _observation(self, event: UsageObserved) -> None:
        pool_id, p = event.pool_id, event.payload
        record = self.engine.state.identities.get(event.dimensions.identity_id)
        if pool_id is None or record is None or record.principal is None:
            return
        constraint = self._constraints.get(pool_id)
        pool = self.engine.state.pools.get(pool_id)
        limit = p.limit
        extra = self._extra.get(pool_id, 0.0)
        remaining = float(p.remaining)
        if limit is not None:
            used = float(limit) - remaining
            limit = float(limit) * self.modifiers.limit
            remaining = min(limit, max(0.0, limit - used - extra))
        else:
            remaining = max(0.0, remaining - extra)
        window: Window = cast(Window, pool.window) if pool else "fixed"
        window_seconds, unit = (pool.window_seconds, pool.unit) if pool else (None, "requests")
        if constraint is not None:  # what the recorded constraint said wins
            window = _given(constraint.window, window)
            window_seconds = _given(constraint.window_seconds, window_seconds)
            unit = _given(constraint.unit, unit)
        observation = PoolObservation(
            resource=p.resource,
            limit=limit,
            remaining=remaining,
            used=None if limit is None else limit - remaining,
            reset_at=p.reset_at,
            window=window,
            window_seconds=window_seconds,
            unit=unit,
        )
        result = PollResult(observed_at=event.ts_event, observations=[observation])
        self._emit(observe_poll(self.engine, record.identity_id, result))

    def _emit(self, events: list[Event]) -> None:
        self.produced += len(events)
        for event in events:
            self.scenario.add(event)


def replay(
    engine: Engine,
    recorded: Iterable[Event],
    modifiers: Modifiers,
    *,
    since: float,
    until: float,
) -> ReplayResult:
    """Drive ``recorded`` through ``engine`` (private, over the state at ``since``)."""
    started = time.perf_counter()
    sandbox = Sandbox(engine, modifiers, since=since, until=until)
    sandbox.run(recorded)
    return ReplayResult(
        since=iso(since) or "",
        until=iso(until) or "",
        policy_version=engine.policy.version,
        modifiers=modifiers,
        baseline=sandbox.baseline.result(),
        scenario=sandbox.scenario.result(),
        events_read=sandbox.read,
        events_produced=sandbox.produced,
        seconds=round(time.perf_counter() - started, 3),
    )


def _given(value: T | UnsetType, default: T) -> T:
    return default if isinstance(value, UnsetType) else value
