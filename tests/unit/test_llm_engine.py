"""The engine with LLM pools: multi-cost intents, the cost × workload rule, refilling
buckets learned from headers, reconciliation and estimate tracking (manual clock)."""

from __future__ import annotations

import pytest

from ratelord.engine import forecast as fc
from ratelord.engine.arbitration import decide
from ratelord.engine.core import Engine, EngineConfig, EngineError
from ratelord.engine.events import Event, IdFactory
from ratelord.engine.observe import observe_usage
from ratelord.engine.policy import default_policy
from ratelord.engine.state import State, estimate_inflation
from ratelord.headers import pool_observations
from ratelord.schema import IdentityCreate, IntentRequest, UsageReport
from tests.fakes.llm import TokenBucket

MODEL = "gpt-4o-mini"
TOKENS = f"openai:tokens@{MODEL}:org-acme"
REQUESTS = f"openai:requests@{MODEL}:org-acme"


class OpenAIWorld:
    """An engine and an OpenAI-shaped limiter (RPM and TPM buckets) on a manual clock."""

    def __init__(self, tpm: float = 4000, rpm: float = 60, window: float = 60.0, **config):
        self.now = 1_000_000.0
        self.engine = Engine(EngineConfig(**config), default_policy(), ids=IdFactory("t"))
        self.log: list[Event] = []
        self.tokens = TokenBucket.full(tpm, self.now, window)
        self.requests = TokenBucket.full(rpm, self.now, window)
        self.log += self.engine.register_identity(
            IdentityCreate(identity_id="key:a", provider_id="openai", principal="org-acme"),
            self.now,
        )

    def ask(self, **fields) -> object:
        request = IntentRequest(agent_id="agent", identity_id="key:a", **fields)
        decided = decide(self.engine, request, self.now)
        self.log += decided.events
        return decided.decision

    def headers(self) -> dict[str, str]:
        out = {}
        for name, bucket in (("tokens", self.tokens), ("requests", self.requests)):
            bucket.refill(self.now)
            out[f"x-ratelimit-limit-{name}"] = f"{bucket.capacity:.0f}"
            out[f"x-ratelimit-remaining-{name}"] = str(max(0, int(bucket.level)))
            out[f"x-ratelimit-reset-{name}"] = f"{bucket.seconds_to_full():.3f}s"
        return out

    def fits(self, tokens: float) -> bool:
        self.tokens.refill(self.now)
        self.requests.refill(self.now)
        return self.tokens.level >= tokens and self.requests.level >= 1

    def report(self, intent_id: str | None, **fields) -> list[Event]:
        report = UsageReport(
            identity_id="key:a", intent_id=intent_id, model=MODEL, headers=self.headers(), **fields
        )
        observations = pool_observations(report.headers or {}, now=self.now, model=MODEL)
        _, events = observe_usage(self.engine, report, observations, self.now)
        self.log += events
        return events

    def call(self, estimate: float, actual: float) -> bool:
        """Ask, wait as told, call the 'provider'; False when it would have answered 429."""
        decision = self.ask(costs={f"requests@{MODEL}": 1, f"tokens@{MODEL}": estimate})
        assert decision.decision != "deny_with_reason", decision.reason
        assert decision.modifications.defer_until is None, decision.reason
        self.now += decision.modifications.wait_seconds
        admitted = self.fits(estimate)
        if admitted:
            self.tokens.level -= actual
            self.requests.level -= 1
        self.report(decision.intent_id, costs={f"tokens@{MODEL}": actual})
        return admitted


def test_sixty_calls_meet_no_429_and_take_the_ideal_time() -> None:
    world = OpenAIWorld()
    start = world.now
    refused = sum(not world.call(estimate=130, actual=130) for _ in range(60))
    elapsed = world.now - start
    ideal = (60 * 130 - 4000) / (4000 / 60)  # what refills after the first full bucket
    assert refused == 0
    assert ideal * 0.98 <= elapsed <= ideal * 1.05, (elapsed, ideal)
    pool = world.engine.state.pools[TOKENS]
    assert pool.window == "refill" and pool.refill_rate == pytest.approx(4000 / 60, rel=0.02)
    types = {e.event_type for e in world.log}
    assert "reset_observed" not in types
    assert sum(e.event_type == "constraint_observed" for e in world.log) <= 4


def test_over_estimates_cost_no_throughput_once_reconciled() -> None:
    world = OpenAIWorld()
    start = world.now
    refused = sum(not world.call(estimate=180, actual=130) for _ in range(60))
    ideal = (60 * 130 - 4000) / (4000 / 60)
    assert refused == 0
    assert world.now - start <= ideal * 1.1
    pool = world.engine.state.pools[TOKENS]
    assert pool.estimate_samples == 59  # the first call's pools were not known yet
    assert pool.estimate_ratio == pytest.approx(130 / 180, rel=0.02)


def test_estimates_that_run_low_count_at_their_observed_p90_in_the_forecast() -> None:
    world = OpenAIWorld(tpm=400_000, rpm=6000)
    for n in range(30):  # calls really spend 1.2 to 2 times their estimate of 100
        world.call(estimate=100, actual=120 + 80 * (n % 2))
        world.now += 1
    pool = world.engine.state.pools[TOKENS]
    assert pool.estimate_ratio == pytest.approx(1.6, abs=0.15)
    inflation = estimate_inflation(pool)
    assert pool.estimate_ratio < inflation < 2.2
    _, with_intent = world.engine.forecast_pair(pool, world.now, 1000.0)
    inflated = fc.compute_pair(
        pool.burn,
        world.engine.forecast_input(pool, world.now),
        world.now,
        1000 * inflation,
        pool.unseen_burn,
    )[1]
    assert with_intent == inflated

    fresh = OpenAIWorld()
    for _ in range(10):  # conservative estimates are never deflated
        fresh.call(estimate=180, actual=130)
    assert estimate_inflation(fresh.engine.state.pools[TOKENS]) == 1.0


def test_the_wait_is_exactly_what_the_bucket_needs() -> None:
    world = OpenAIWorld()
    world.call(estimate=130, actual=130)  # learn the pools
    world.tokens.level -= 3800  # someone else spends: the next headers say so
    world.report(None)
    balance = world.tokens.level
    decision = world.ask(costs={f"tokens@{MODEL}": 300, f"requests@{MODEL}": 1})
    assert decision.decision == "approve_with_modifications"
    exact = (300 - balance) / (4000 / 60)
    assert exact < decision.modifications.wait_seconds <= exact * 1.001 + 0.002
    # A second caller queues behind the first: the bucket owes the first call's tokens.
    second = world.ask(costs={f"tokens@{MODEL}": 300, f"requests@{MODEL}": 1})
    then = exact + 300 / (4000 / 60)
    assert then < second.modifications.wait_seconds <= then * 1.001 + 0.002
    too_big = world.ask(costs={f"tokens@{MODEL}": 5000, f"requests@{MODEL}": 1})
    assert too_big.decision == "deny_with_reason"
    assert "exceeds the pool's limit" in (too_big.reason or "")


def test_usage_costs_correct_each_pool_once() -> None:
    world = OpenAIWorld()
    world.call(estimate=130, actual=130)
    decision = world.ask(costs={f"requests@{MODEL}": 1, f"tokens@{MODEL}": 500})
    before = world.engine.state.pools[TOKENS].remaining
    report = UsageReport(
        identity_id="key:a", intent_id=decision.intent_id, costs={f"tokens@{MODEL}": 200}
    )
    _, events = observe_usage(world.engine, report, [], world.now)
    assert events[0].payload.corrections == {TOKENS: -300.0}
    assert world.engine.state.pools[TOKENS].remaining == pytest.approx(before + 300)
    _, again = observe_usage(world.engine, report, [], world.now)
    assert again[0].payload.corrections == {TOKENS: 0.0}
    assert world.engine.state.pools[TOKENS].remaining == pytest.approx(before + 300)


def test_replaying_the_log_rebuilds_the_refilling_pools_exactly() -> None:
    world = OpenAIWorld()
    for _ in range(45):
        world.call(estimate=150, actual=130)
    replayed = State()
    replayed.apply_all(world.log)
    assert replayed.encode() == world.engine.state.encode()


# ---------------------------------------------------------------------- cost × workload


def github_world(workloads: dict[str, dict[str, float]]) -> OpenAIWorld:
    world = OpenAIWorld(workloads=workloads)
    world.call(estimate=10, actual=10)  # the pools exist
    return world


def test_cost_counts_units_of_a_workload() -> None:
    world = github_world({"chat": {f"requests@{MODEL}": 1, f"tokens@{MODEL}": 100}})
    decision = world.ask(workload_id="chat", cost=3)
    charged = {risk.pool_id: risk.cost for risk in decision.evaluation.pools}
    assert charged == {REQUESTS: 3.0, TOKENS: 300.0}


def test_costs_replace_a_workloads_amount_for_the_same_resource() -> None:
    world = github_world({"chat": {f"requests@{MODEL}": 1, f"tokens@{MODEL}": 100}})
    decision = world.ask(workload_id="chat", costs={f"tokens@{MODEL}": 42})
    charged = {risk.pool_id: risk.cost for risk in decision.evaluation.pools}
    assert charged == {REQUESTS: 1.0, TOKENS: 42.0}


def test_unknown_workloads_and_ambiguous_costs_are_refused_before_logging() -> None:
    world = github_world({"chat": {f"tokens@{MODEL}": 100}, "embed": {f"tokens@{MODEL}": 5}})
    logged = len(world.log)
    with pytest.raises(EngineError) as unknown:
        world.ask(workload_id="chta")
    assert type(unknown.value) is EngineError and unknown.value.code == "unknown_workload"
    assert "'chta'" in unknown.value.message and "chat, embed" in unknown.value.message
    with pytest.raises(EngineError) as ambiguous:
        world.ask(costs={f"tokens@{MODEL}": 1}, cost=2)
    assert ambiguous.value.code == "ambiguous_cost"
    assert len(world.log) == logged
    # A workload id that only labels an explicit charge is fine.
    labelled = world.ask(workload_id="nightly-report", resource=f"tokens@{MODEL}", cost=5)
    assert labelled.allowed
