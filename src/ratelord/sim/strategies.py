"""How honest agents decide when to call: ratelord, or one of the baselines.

* ``ratelord`` — the daemon's own code path: every piece of work is an intent
  through :class:`~ratelord.service.CommandService` (the same commands the
  daemon runs: intent, usage, poll observations and failures, the poll
  cadence); the simulated provider is polled on that cadence, drift is
  reconciled, and a call that spent nothing or more than estimated is reported (a 429
  with the refusing pool's rate-limit headers, as the SDK transport reports it).
* ``none`` — what most clients do today: call at once (the runner backs off
  after a 429).
* ``token-bucket`` — a static client-side limiter per pool at ``limit /
  window`` with a configurable burst; it knows nothing of other consumers,
  outages or where the provider's window starts.
* ``leases`` — the real engine, agents spending from leases
  (:mod:`ratelord.sim.lease_strategy`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from random import Random
from typing import Literal, Protocol

from ratelord.engine.clock import parse_iso
from ratelord.engine.core import Engine
from ratelord.engine.events import Event, IdFactory, SystemStartedPayload
from ratelord.engine.observations import PollResult
from ratelord.engine.policy import CompiledPolicy
from ratelord.engine.state import State
from ratelord.providers.base import ProviderIdentity
from ratelord.schema import IdentityCreate, IntentRequest, Urgency, UsageReport
from ratelord.service import CommandService, build_engine, run_sync
from ratelord.service.poller import Poller
from ratelord.sim.scenario import Scenario
from ratelord.sim.world import CallResult, World

StrategyName = Literal["ratelord", "none", "token-bucket", "leases"]
STRATEGIES: tuple[StrategyName, ...] = ("ratelord", "none", "token-bucket", "leases")

Outcome = Literal["approve", "modify", "defer", "deny"]


@dataclass(frozen=True, slots=True)
class Ask:
    """One piece of work an honest agent wants to do now.

    ``charges`` is the estimate (resource → units); ``actual`` what the call
    will really spend (the same unless the scenario says estimates are off).
    """

    agent_id: str
    identity_id: str
    resource: str | None
    cost: float
    urgency: Urgency
    charges: dict[str, float]
    actual: dict[str, float]
    workload: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the agent is told: call at ``at`` (with ``identity_id``), or come back at ``at``."""

    outcome: Outcome
    at: float
    identity_id: str
    ticket: str | None = None  # the intent id, to report a call that spent nothing
    waits: bool = False  # an approval told to wait: re-checked before the call

    @property
    def go(self) -> bool:
        return self.outcome in ("approve", "modify")


class Strategy(Protocol):
    polls: bool

    def ask(self, ask: Ask, now: float) -> Verdict: ...

    def called(
        self,
        ask: Ask,
        verdict: Verdict,
        result: CallResult,
        now: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The call made on ``verdict`` ended with ``result`` (a call that went through:
        with its response's rate-limit headers when the agent reports every response's)."""

    def poll(self, identity_id: str, now: float) -> float:
        """Poll the provider for ``identity_id``; the seconds until the next poll."""
        ...

    def event_counts(self) -> dict[str, int]: ...

    def restart(self, now: float) -> None:
        """The governing process restarts (only ratelord has one)."""

    def holds(self, ask: Ask, verdict: Verdict, now: float) -> bool:
        """Re-check an approval that waited, just before spending on it."""
        ...


class Direct:
    """``none``: call at once, every time."""

    polls = False

    def ask(self, ask: Ask, now: float) -> Verdict:
        return Verdict("approve", now, ask.identity_id)

    def called(
        self,
        ask: Ask,
        verdict: Verdict,
        result: CallResult,
        now: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        return None

    def poll(self, identity_id: str, now: float) -> float:
        raise NotImplementedError("the none strategy does not poll")

    def event_counts(self) -> dict[str, int]:
        return {}

    def restart(self, now: float) -> None:
        return None

    def holds(self, ask: Ask, verdict: Verdict, now: float) -> bool:
        return True


class Bucket:
    """A token bucket whose debt is a waiting time (GCRA): take() says when the tokens are there."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate, self.capacity, self.tokens, self.updated = rate, capacity, capacity, now

    def take(self, cost: float, now: float) -> float:
        """Reserve ``cost`` tokens; the time at which they are there (GCRA-style debt)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= cost
        return now if self.tokens >= 0 else now - self.tokens / self.rate


class TokenBuckets(Direct):
    """``token-bucket``: one static limiter per pool, shared by every honest agent."""

    def __init__(self, scenario: Scenario, world: World) -> None:
        self._scenario = scenario
        self._world = world
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def ask(self, ask: Ask, now: float) -> Verdict:
        principal = self._scenario.principal_of(ask.identity_id)
        at = now
        for resource, cost in ask.charges.items():
            key = (principal, resource)
            bucket = self._buckets.get(key)
            if bucket is None:
                rate = self._world.limit(*key) / self._world.window(*key)
                capacity = max(cost, rate * self._scenario.token_bucket.burst_seconds)
                bucket = self._buckets[key] = Bucket(rate, capacity, now)
            at = max(at, bucket.take(cost, now))
        return Verdict("approve" if at <= now else "modify", at, ask.identity_id)


#: Injected outages fail polls on purpose: the poller's warnings about them are not news.
_POLL_LOG = logging.getLogger("ratelord.sim.poller")
_POLL_LOG.setLevel(logging.ERROR)


class _SimulatedProvider:
    """The simulated provider behind the daemon's provider port, so that the daemon's own
    :class:`~ratelord.service.poller.Poller` polls it (observation, failure, cadence)."""

    provider_id = "mock"

    def __init__(self, world: World) -> None:
        self._world = world

    async def poll(self, identity: ProviderIdentity, now: float) -> PollResult:
        assert identity.principal is not None, "every simulated identity has its principal"
        return self._world.poll(identity.principal, now)

    def default_window_seconds(self, resource: str) -> float | None:
        return self._world.provider.default_window_seconds(resource)

    async def aclose(self) -> None:
        return None


class Ratelord:
    """The real engine on the virtual clock, fed by polls of the simulated provider."""

    polls = True

    def __init__(self, scenario: Scenario, world: World, seed: int) -> None:
        self._scenario = scenario
        self._world = world
        self._provider = _SimulatedProvider(world)
        self._rng = Random(f"{seed}:poller")
        self._pollers: dict[str, Poller] = {}
        self._events: Counter[str] = Counter()
        self._log: list[Event] = []
        self._now = scenario.start
        self._serve(self._build(scenario.compiled_policy(), IdFactory(prefix="sim")))
        now = scenario.start
        events = self.engine.start(now, SystemStartedPayload(simulator=scenario.name))
        events += self.engine.set_policy(self.engine.policy, now)
        self._count(events)
        for identity in scenario.identities:
            request = IdentityCreate(
                identity_id=identity.id, provider_id="mock", principal=identity.principal
            )
            run_sync(self.service.register(request))

    def _build(self, policy: CompiledPolicy, ids: IdFactory, state: State | None = None) -> Engine:
        return build_engine(
            self._scenario.engine,
            policy,
            workloads=self._scenario.workloads,
            default_windows={"mock": self._world.provider.default_window_seconds},
            ids=ids,
            state=state,
        )

    def _serve(self, engine: Engine) -> None:
        """Run the daemon's own command service (intent, usage, polls) on ``engine``."""
        self.engine = engine

        async def commit(events: list[Event]) -> list[Event]:
            self._count(events)
            return events

        self.service = CommandService(engine, commit, lambda: self._now)
        for poller in self._pollers.values():  # a restart: the pollers carry on, on it
            poller.commands = self.service

    def _count(self, events: list[Event]) -> None:
        self._events.update(e.event_type for e in events)
        self._log += events

    def restart(self, now: float) -> None:
        """The daemon restarts: a new engine whose state is the replayed event log."""
        state = State()
        state.apply_all(self._log)
        self._serve(self._build(self.engine.policy, self.engine.ids, state))
        self._count(
            self.engine.start(
                now, SystemStartedPayload(simulator=self._scenario.name, restart=True)
            )
        )

    def event_counts(self) -> dict[str, int]:
        return dict(sorted(self._events.items()))

    def ask(self, ask: Ask, now: float) -> Verdict:
        if ask.workload is not None:
            request = IntentRequest(
                agent_id=ask.agent_id,
                identity_id=ask.identity_id,
                workload_id=ask.workload,
                urgency=ask.urgency,
            )
        else:
            request = IntentRequest(
                agent_id=ask.agent_id,
                identity_id=ask.identity_id,
                resource=ask.resource,
                cost=ask.cost,
                urgency=ask.urgency,
            )
        self._now = now
        decision = run_sync(self.service.intent(request))
        mods = decision.modifications
        if decision.decision == "deny_with_reason":
            return Verdict("deny", now, ask.identity_id)
        if mods.defer_until is not None:
            return Verdict("defer", max(now, parse_iso(mods.defer_until)), ask.identity_id)
        outcome: Outcome = "approve" if decision.decision == "approve" else "modify"
        identity_id = mods.identity_switch or ask.identity_id
        return Verdict(
            outcome,
            now + mods.wait_seconds,
            identity_id,
            decision.intent_id,
            waits=mods.wait_seconds > 0,
        )

    def holds(self, ask: Ask, verdict: Verdict, now: float) -> bool:
        """The SDK's check before a call that waited: does the approval still fit?

        When it does not, the daemon revokes it (its reservation goes back to the pools)
        and the agent asks again.
        """
        if not verdict.waits or verdict.ticket is None:
            return True
        self._now = now
        return run_sync(self.service.check_approval(verdict.ticket)).holds

    def called(
        self,
        ask: Ask,
        verdict: Verdict,
        result: CallResult,
        now: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        exact = result is CallResult.OK and ask.actual == ask.charges
        if verdict.ticket is None or (exact and not headers):
            return
        # A failed call spent nothing: give the reservation back; a call that cost more
        # or less than estimated says so.  A 429's headers say the pool is spent (until
        # its reset): the transport reports them, so the calls approved after it wait.
        # An agent behind the SDK transport reports every response's headers too (the
        # provider's word after its call: a raised limit shows at the next call).
        spent = None if exact else sum(ask.actual.values()) if result is CallResult.OK else 0.0
        if result is CallResult.RATE_LIMITED:
            principal = self._scenario.principal_of(verdict.identity_id)
            headers = self._world.rejection_headers(principal, ask.actual, now) or None
        report = UsageReport(
            agent_id=ask.agent_id,
            identity_id=verdict.identity_id,
            intent_id=verdict.ticket,
            cost=spent,
            headers=headers,
            status_code=429 if result is CallResult.RATE_LIMITED else None,
        )
        self._now = now
        run_sync(self.service.usage(report))

    def poll(self, identity_id: str, now: float) -> float:
        """One poll by the daemon's poller; the seconds until the next (cadence or backoff)."""
        poller = self._pollers.get(identity_id)
        if poller is None:
            poller = self._pollers[identity_id] = Poller(
                self.service,
                self._provider,
                identity_id,
                self._scenario.poll_interval_seconds,
                timeout=None,
                rng=self._rng,
                logger=_POLL_LOG,
            )
        self._now = now
        return run_sync(poller.poll_once())


def make_strategy(name: StrategyName, scenario: Scenario, world: World, seed: int) -> Strategy:
    if name == "ratelord":
        return Ratelord(scenario, world, seed)
    if name == "leases":
        from ratelord.sim.lease_strategy import Leases  # it builds on Ratelord, defined here

        return Leases(scenario, world, seed)
    if name == "token-bucket":
        return TokenBuckets(scenario, world)
    if name == "none":
        return Direct()
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
