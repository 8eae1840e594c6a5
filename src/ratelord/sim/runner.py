"""The simulation loop: an event-driven scheduler on a virtual clock.

Everything that happens — an agent's work arriving, an attempt to get
permission, a call to the provider, a poll, external usage, the moment before
a pool resets — is an action in one heap ordered by ``(time, seq)``.  Time
jumps from action to action, so an idle hour costs nothing; ``seq`` breaks
ties in scheduling order, so a run is a pure function of scenario and seed.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from random import Random
from typing import Any

from ratelord.engine.clock import iso
from ratelord.engine.state import pool_id_for
from ratelord.service.cadence import backoff
from ratelord.sim.behaviour import PhaseGate, open_arrivals, sample_cost
from ratelord.sim.invariants import evaluate
from ratelord.sim.report import (
    Counts,
    HighUrgency,
    OpenWindow,
    PoolReport,
    Report,
    Reset,
    combine,
    set_waits,
)
from ratelord.sim.scenario import AgentGroup, External, Greedy, Scenario
from ratelord.sim.strategies import Ask, StrategyName, Verdict, make_strategy
from ratelord.sim.world import CallResult, World

#: Called with the fraction of simulated time done (0..1), at most once per percent.
Progress = Callable[[float], None]


@dataclass(slots=True)
class _Agent:
    id: str
    group: AgentGroup
    identity_id: str
    rng: Random
    gate: PhaseGate
    counts: Counts
    waits: list[float] = field(default_factory=list)
    arrivals: Iterator[float] | None = None
    failures: int = 0  # consecutive failed calls, for backoff
    tainted_open: int = 0  # unfinished work already denied or rejected
    open_work: dict[int, _Work] = field(default_factory=dict)  # arrived, not yet ended


@dataclass(slots=True)
class _Work:
    agent: _Agent
    ask: Ask
    created: float
    key: int = 0
    tainted: bool = False  # denied or rejected (429) at least once
    spent: bool = False  # its call went through (its answer may still be on the way)
    #: Urgent work that arrived on a pool a limit cut had emptied until after its deadline.
    cut_off: bool = False


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        strategy: StrategyName = "ratelord",
        *,
        seed: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.scenario = scenario
        self.strategy_name = strategy
        self.seed = scenario.seed if seed is None else seed
        self.world = World(scenario, self.seed)
        self.strategy = make_strategy(strategy, scenario, self.world, self.seed)
        self.start = scenario.start
        self.end = scenario.start + scenario.duration_seconds
        self._progress = progress
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._principals = {i.id: i.principal for i in scenario.identities}
        #: units the scenario's external consumers spent (see Report.external_done)
        self.external_done = 0.0
        self._keys = itertools.count()
        #: Urgent work a limit cut left nothing for, not served in time (see _cut_off).
        self._cut_off_missed = 0
        self.agents = [
            self._agent(group, index) for group in scenario.agents for index in range(group.count)
        ]

    def _agent(self, group: AgentGroup, index: int) -> _Agent:
        agent_id = f"{group.name}-{index + 1:02d}"
        return _Agent(
            id=agent_id,
            group=group,
            identity_id=group.identities[index % len(group.identities)],
            rng=Random(f"{self.seed}:{agent_id}"),
            gate=PhaseGate(self.scenario.phases, group.phases),
            counts=Counts(name=agent_id, honest=group.honest, urgency=group.urgency),
        )

    # ------------------------------------------------------------------ scheduling

    def _at(self, when: float, action: Callable[..., None], *args: Any) -> None:
        if when < self.end:
            heapq.heappush(self._heap, (when, next(self._seq), action, args))

    def run(self) -> Report:
        if self.strategy.polls:
            for identity in self.scenario.identities:
                self._at(self.start, self._poll, identity.id)
        for restart in self.scenario.restarts:
            self._at(self.start + restart.at, self._restart)
        for item in self.scenario.external:
            self._at(self.start + item.start, self._external, item)
        for key, bucket in self.world.provider.buckets.items():
            self._at(bucket.next_actual, self._reset, key)
        for agent in self.agents:
            self._schedule_first(agent)
        self._loop()
        return self._report()

    def _loop(self) -> None:
        heap, span, reported = self._heap, self.end - self.start, -1
        while heap:
            now, _, action, args = heapq.heappop(heap)
            action(now, *args)
            if self._progress is not None:
                percent = int(100 * (now - self.start) / span)
                if percent > reported:
                    reported = percent
                    self._progress(percent / 100)
        if self._progress is not None:
            self._progress(1.0)

    # ------------------------------------------------------------------ world

    def _poll(self, now: float, identity_id: str) -> None:
        self._at(now + self.strategy.poll(identity_id, now), self._poll, identity_id)

    def _reset(self, now: float, key: tuple[str, str]) -> None:
        """A pool resets: note the smallest call waiting on it (was the window full?)."""
        bucket = self.world.provider.buckets[key]
        self._note_waiting(key, now)
        waiting = sum(ask.actual[key[1]] for _, ask in self._open_calls(key))
        bucket.advance(now)
        # Work still waiting is asked of the new window too.
        bucket.current.demand += waiting
        self._at(bucket.next_actual, self._reset, key)

    def _open_calls(self, key: tuple[str, str]) -> Iterator[tuple[_Agent, Ask]]:
        """The calls honest agents wait to make on the pool."""
        principal, resource = key
        for agent in self.agents:
            if agent.group.honest and self._principals[agent.identity_id] == principal:
                for work in agent.open_work.values():
                    if not work.spent and resource in work.ask.actual:
                        yield agent, work.ask

    def _note_waiting(self, key: tuple[str, str], now: float) -> None:
        """Note on the pool's window the calls waiting when it ends (was it full?)."""
        window = self.world.provider.buckets[key].current
        window.waiting = min((ask.actual[key[1]] for _, ask in self._open_calls(key)), default=None)
        window.could_fit = self._could_fit(key, now)

    def _could_fit(self, key: tuple[str, str], now: float) -> float:
        """The least a call waiting on the pool that could go may spend: at its estimate
        times the most its group's calls spend over their estimates (a client knows no
        more: sent on a leftover below that, it risks a 429), and only while every other
        pool it draws on has room for it (work over two pools cannot spend this one's
        leftover while the other is spent)."""
        principal, resource = key
        buckets = self.world.provider.buckets
        smallest = math.inf
        for agent, ask in self._open_calls(key):
            if any(
                other != resource
                and (bucket := buckets.get((principal, other))) is not None
                and now < bucket.next_actual
                and bucket.remaining + 1e-9 < cost
                for other, cost in ask.actual.items()
            ):
                continue
            worst = ask.actual[resource]
            factor = agent.group.actual_cost_factor
            if factor is not None:
                worst = max(worst, ask.charges[resource] * factor.max)
            smallest = min(smallest, worst)
        return smallest

    def _restart(self, now: float) -> None:
        self.strategy.restart(now)

    def _external(self, now: float, item: External) -> None:
        self.external_done += self.world.spend_external(
            item.principal, item.resource, item.amount, now
        )
        following = now + item.every_seconds
        if item.end is None or following < self.start + item.end:
            self._at(following, self._external, item)

    # ------------------------------------------------------------------ agents

    def _schedule_first(self, agent: _Agent) -> None:
        spread = agent.group.start_spread_seconds
        offset = agent.rng.uniform(0, spread) if spread else 0.0
        if isinstance(agent.group.behaviour, Greedy):
            self._schedule_greedy(agent, offset)
        else:
            agent.arrivals = open_arrivals(agent.group.behaviour, agent.rng, offset)
            self._schedule_open(agent)

    def _schedule_greedy(self, agent: _Agent, offset: float) -> None:
        active = agent.gate.next_active(offset)
        if active is not None:
            self._at(self.start + active, self._arrive, agent)

    def _schedule_open(self, agent: _Agent) -> None:
        assert agent.arrivals is not None
        for offset in agent.arrivals:
            if self.start + offset >= self.end or agent.gate.next_active(offset) is None:
                return
            if agent.gate.active(offset):
                self._at(self.start + offset, self._arrive, agent)
                return

    def _arrive(self, now: float, agent: _Agent) -> None:
        group = agent.group
        cost = sample_cost(group.cost, agent.rng)
        charges = self.scenario.charges(group, cost)
        actual = charges
        if group.actual_cost_factor is not None:
            factor = agent.rng.uniform(group.actual_cost_factor.min, group.actual_cost_factor.max)
            actual = {r: c * factor for r, c in charges.items()}
        ask = Ask(
            agent_id=agent.id,
            identity_id=agent.identity_id,
            resource=group.resource,
            cost=cost,
            urgency=group.urgency,
            charges=charges,
            actual=actual,
            workload=group.workload,
        )
        self.world.demand(self._principals[agent.identity_id], charges, now)
        agent.counts.work_items += 1
        agent.counts.in_flight += 1
        if agent.arrivals is not None:
            self._schedule_open(agent)
        work = _Work(agent, ask, now, next(self._keys))
        if group.honest and group.urgency == "high" and group.deadline_seconds is not None:
            deadline = now + group.deadline_seconds
            work.cut_off = self._cut_off(agent.identity_id, ask.actual, deadline)
        agent.open_work[work.key] = work
        self._attempt(now, work)

    def _cut_off(self, identity_id: str, charges: dict[str, float], deadline: float) -> bool:
        """Whether a pool the work draws on has nothing for it until after its deadline,
        because a limit cut took the rest of the window (see ``SimBucket.cut_off``)."""
        principal = self._principals[identity_id]
        for resource, cost in charges.items():
            bucket = self.world.provider.buckets.get((principal, resource))
            if (
                bucket is not None
                and bucket.remaining + 1e-9 < cost
                and bucket.cut_off(bucket.updated_at, deadline)
            ):
                return True
        return False

    def _attempt(self, now: float, work: _Work) -> None:
        agent = work.agent
        if not agent.group.honest:
            self._call(now, work, Verdict("approve", now, work.ask.identity_id))
            return
        verdict = self.strategy.ask(work.ask, now)
        counts = agent.counts
        counts.intents += 1
        if verdict.outcome == "approve":
            counts.approvals += 1
        elif verdict.outcome == "modify":
            counts.modifications += 1
        elif verdict.outcome == "defer":
            counts.deferrals += 1
        else:
            counts.denials += 1
            self._taint(work)
            if agent.group.on_deny == "drop":
                self._finish(now, work, done=False)
            else:
                self._at(now + agent.group.retry_after_seconds, self._attempt, work)
            return
        if verdict.go:
            self._at(verdict.at, self._call, work, verdict)
        else:
            self._at(verdict.at, self._attempt, work)

    def _call(self, now: float, work: _Work, verdict: Verdict) -> None:
        agent, ask = work.agent, work.ask
        if agent.group.honest and not self.strategy.holds(ask, verdict, now):
            agent.counts.revoked += 1
            self._attempt(now, work)
            return
        principal = self._principals[verdict.identity_id]
        result = self.world.call(principal, ask.actual, now)
        if (
            result is CallResult.RATE_LIMITED
            and agent.group.honest
            and self.world.met_unforeseen(principal, ask.actual, now)
        ):
            agent.counts.unavoidable_429s += 1
        if result is CallResult.OK:
            agent.failures = 0
            work.spent = True
            latency = agent.group.latency_seconds
            if latency:
                self._at(now + latency, self._answered, work, verdict)
            else:
                self._answered(now, work, verdict)
            return
        if agent.group.honest:
            self.strategy.called(ask, verdict, result, now)
        if result is CallResult.RATE_LIMITED:
            agent.counts.rejections_429 += 1
            self._taint(work)
        else:
            agent.counts.provider_errors += 1
        agent.failures += 1
        # Capped: the backoff saturates long before, and 2.0 ** n overflows past n ≈ 1024.
        delay = backoff(min(agent.failures, 32), None, agent.rng)
        self._at(now + delay, self._attempt, work)

    def _answered(self, now: float, work: _Work, verdict: Verdict) -> None:
        """The provider's answer to a call that went through arrives (after its latency:
        the provider's processing, so its rate-limit headers are the pool as it stands)."""
        group = work.agent.group
        if group.honest:
            headers = None
            if group.reports_headers == "always":
                principal = self._principals[verdict.identity_id]
                headers = self.world.response_headers(principal, work.ask.actual, now)
            self.strategy.called(work.ask, verdict, CallResult.OK, now, headers)
        self._finish(now, work, done=True)

    def _taint(self, work: _Work) -> None:
        if not work.tainted:
            work.tainted = True
            work.agent.tainted_open += 1

    def _finish(self, now: float, work: _Work, *, done: bool) -> None:
        agent, counts = work.agent, work.agent.counts
        counts.in_flight -= 1
        agent.open_work.pop(work.key, None)
        if work.tainted:
            agent.tainted_open -= 1
        if done:
            counts.completed += 1
            counts.work_done += sum(work.ask.charges.values())
            agent.waits.append(now - work.created)
            deadline = agent.group.deadline_seconds
            if deadline is None or now - work.created <= deadline:
                counts.served_in_time += 1
            elif work.cut_off:
                self._cut_off_missed += 1
            if not work.tainted:
                counts.served_without_denial += 1
        else:
            counts.dropped += 1
            self._cut_off_missed += work.cut_off
        behaviour = agent.group.behaviour
        if isinstance(behaviour, Greedy):
            self._schedule_greedy(agent, now - self.start + behaviour.think_seconds)

    # ------------------------------------------------------------------ report

    def _report(self) -> Report:
        for agent in self.agents:
            set_waits(agent.counts, agent.waits)
        groups = [
            combine(
                group.name,
                ((a.counts, a.waits) for a in self.agents if a.group is group),
            )
            for group in self.scenario.agents
        ]
        overall = combine("overall", ((a.counts, a.waits) for a in self.agents))
        report = Report(
            scenario=self.scenario.name,
            strategy=self.strategy_name,
            seed=self.seed,
            start=iso(self.start) or "",
            duration_seconds=self.scenario.duration_seconds,
            overall=overall,
            honest_429s=sum(a.counts.rejections_429 for a in self.agents if a.group.honest),
            unavoidable_429s=sum(a.counts.unavoidable_429s for a in self.agents if a.group.honest),
            high_urgency=self._high_urgency(),
            groups=groups,
            agents=[a.counts for a in self.agents],
            pools=self._pools(),
            engine_events=self.strategy.event_counts(),
            external_done=round(self.external_done, 3),
        )
        report.invariants = evaluate(self.scenario.invariants, report)
        report.passed = all(v.passed for v in report.invariants)
        return report

    def _high_urgency(self) -> HighUrgency:
        """Urgent work served within its deadline, of all that arrived.

        Work still waiting when the run ends is not served, unless its deadline
        is still ahead (then it is undecided and left out).  Work that arrived on
        a pool a limit cut had emptied until after its deadline, and was not
        served in time, is left out too (``cut_off``: see ``SimBucket.cut_off``).
        """
        urgent = [a for a in self.agents if a.group.urgency == "high" and a.group.honest]
        arrived = sum(a.counts.work_items for a in urgent)
        undecided = cut_off = 0
        for agent in urgent:
            deadline = agent.group.deadline_seconds
            if deadline is None:
                continue
            for work in agent.open_work.values():
                if work.created + deadline > self.end:
                    undecided += 1
                else:
                    cut_off += work.cut_off
        cut_off += self._cut_off_missed
        decided = arrived - undecided - cut_off
        served = sum(a.counts.served_in_time for a in urgent)
        return HighUrgency(
            work_items=decided,
            served_without_denial=sum(a.counts.served_without_denial for a in urgent),
            success_rate=round(served / decided, 4) if decided else None,
            arrived=arrived,
            served_within_deadline=served,
            undecided=undecided,
            cut_off=cut_off,
        )

    def _pools(self) -> list[PoolReport]:
        pools = []
        for (principal, resource), bucket in self.world.provider.buckets.items():
            if bucket.next_actual <= self.end:  # a reset at the very end of the run
                self._note_waiting((principal, resource), self.end)
            bucket.advance(self.end)
            resets = [
                Reset(
                    at=iso(w.reset_at) or "",
                    used=round(w.spent, 3),
                    utilisation=round(w.spent / w.limit, 4),
                    limit=w.limit,
                    available=round(w.available, 3),
                    demand=round(w.demand, 3),
                    overloaded=w.demand > w.available,
                    smallest_waiting=w.waiting,
                    full=w.waiting is not None and w.available - w.spent < w.could_fit - 1e-9,
                )
                for w in bucket.ended
            ]
            pools.append(
                PoolReport(
                    pool_id=pool_id_for("mock", resource, principal),
                    limit=bucket.config.limit,
                    window_seconds=bucket.config.window_seconds,
                    resets=resets,
                    min_utilisation=min(
                        (1.0 if r.full else r.utilisation for r in resets), default=None
                    ),
                    open=self._open_window((principal, resource)),
                )
            )
        return pools

    def _open_window(self, key: tuple[str, str]) -> OpenWindow | None:
        """The pool's window still open at the end of the run (None: it just reset)."""
        bucket = self.world.provider.buckets[key]
        began = bucket.ended[-1].reset_at if bucket.ended else self.start
        span = bucket.next_actual - began
        if span <= 0 or self.end <= began:
            return None
        window = bucket.current
        return OpenWindow(
            used=round(window.spent, 3),
            available=round(window.available, 3),
            elapsed=round(min(1.0, (self.end - began) / span), 4),
            waiting=next(self._open_calls(key), None) is not None,
        )


def run_scenario(
    scenario: Scenario,
    strategy: StrategyName = "ratelord",
    *,
    seed: int | None = None,
    progress: Progress | None = None,
) -> Report:
    """Run ``scenario`` once under ``strategy`` and report what happened."""
    return Simulation(scenario, strategy, seed=seed, progress=progress).run()
