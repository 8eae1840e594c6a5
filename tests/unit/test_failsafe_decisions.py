"""Fail-safe decisions (issue 15, items 1, 3 and 6): unknown risk is never approved,
failures belong to the identity that fails, and what ratelord says is consistent."""

from __future__ import annotations

import msgspec
import pytest

from ratelord.daemon.views import explain
from ratelord.engine.core import posture_of
from ratelord.engine.diagnosis import describe, failing
from ratelord.engine.events import IdentityRevokedPayload
from ratelord.engine.observe import observe_error
from ratelord.engine.policy import load_policy_text
from ratelord.engine.state import PoolState
from ratelord.providers.mock import (
    MockPoolConfig,
    MockPrincipalConfig,
    MockProvider,
    MockProviderConfig,
)
from ratelord.schema import IdentityCreate
from tests.unit.test_engine import World
from tests.unit.test_llm_engine import MODEL, OpenAIWorld


def with_workloads(w: World, workloads: dict[str, dict[str, float]]) -> World:
    w.engine.config = msgspec.structs.replace(w.engine.config, workloads=workloads)
    return w


# ------------------------------------------------------------------ item 1


def test_a_pool_never_observed_is_not_approved_whatever_the_cost() -> None:
    w = World()
    w.register("id-a", "acct-1")
    for cost in (1, 100_000):
        d = w.ask(resource="requestz", cost=cost)
        assert d.decision == "deny_with_reason", d
        assert "never been observed" in d.reason
        assert "did you mean 'requests'" in d.reason  # says what to do
    assert w.pool().remaining == 1000, "nothing was reserved"


def test_a_workload_on_resources_the_principal_lacks_is_not_approved() -> None:
    w = with_workloads(World(), {"hydrate": {"search": 1, "requests": 2}})
    w.register("id-a", "acct-1")
    d = w.ask(resource=None, workload_id="hydrate")
    assert d.decision == "deny_with_reason"
    assert "mock:search:acct-1 has never been observed" in d.reason
    assert w.pool().remaining == 1000


# ------------------------------------------------------------------ item 3


def _fail(w: World, identity_id: str, kind: str = "config") -> None:
    w.log += observe_error(
        w.engine,
        identity_id,
        kind=kind,
        message="environment variable GH_BAD named by 'env:GH_BAD' is not set",
        now=w.clock.now(),
    )


def test_one_failing_identity_does_not_put_other_principals_in_fail_safe() -> None:
    w = World()
    w.register("id-a", "acct-1")
    w.register("id-bad", "acct-2")
    _fail(w, "id-bad")
    healthy = w.ask("id-a", cost=1)
    assert healthy.decision == "approve", healthy.reason
    assert "fail-safe" not in healthy.evaluation.risk_summary
    # ...while the pool of the failing identity's own principal is fail-safe.
    risky = w.ask("id-bad", cost=1)
    assert "fail-safe: polls of id-bad are failing" in risky.evaluation.risk_summary


def test_revoking_the_failing_identity_clears_its_failure_and_replay_agrees() -> None:
    w = World()
    w.register("id-a", "acct-1")
    w.register("id-bad", "acct-1")
    _fail(w, "id-bad")
    (record,) = failing(w.engine.state)
    line = describe(record)
    assert "id-bad" in line and "GH_BAD" in line and "fix:" in line
    assert "fail-safe" in w.ask("id-a", cost=1).evaluation.risk_summary
    w.log += w.engine.change_identity("id-bad", w.clock.now(), IdentityRevokedPayload())
    assert failing(w.engine.state) == []
    assert "fail-safe" not in w.ask("id-a", cost=1).evaluation.risk_summary
    replayed = type(w.engine.state)()
    replayed.apply_all(w.log)
    assert failing(replayed) == []
    assert not any(s.failing_identities for s in replayed.providers.values())


def test_passing_failures_say_they_pass_and_others_say_what_to_do() -> None:
    w = World()
    w.register("id-a", "acct-1")
    _fail(w, "id-a", kind="timeout")
    assert "passes by itself" in describe(w.engine.state.identities["id-a"])
    _fail(w, "id-a", kind="auth")
    assert "identity rotate id-a" in describe(w.engine.state.identities["id-a"])


# ------------------------------------------------------------------ item 6


def _pool(posture: str, remaining: float = 900.0) -> PoolState:
    return PoolState(
        pool_id="p", provider_id="mock", resource="r", principal="x",
        limit=1000.0, remaining=remaining, posture=posture,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("current", "p", "expected"),
    [
        ("OK", 0.51, "CRIT"),  # CRIT starts at 50 %: 51 % is CRIT, never WARN
        ("OK", 0.50, "CRIT"),
        ("OK", 0.45, "WARN"),
        ("CRIT", 0.45, "CRIT"),  # hysteresis: not clear of 50 % yet
        ("CRIT", 0.39, "WARN"),
        ("WARN", 0.09, "WARN"),
        ("WARN", 0.07, "OK"),
        ("OK", 0.09, "OK"),
    ],
)
def test_posture_thresholds_are_consistent_and_have_hysteresis(
    current: str, p: float, expected: str
) -> None:
    assert posture_of(_pool(current), p) == expected


def test_posture_does_not_flap_around_a_threshold() -> None:
    pool = _pool("OK")
    seen = []
    for p in [0.52, 0.48, 0.51, 0.47, 0.5, 0.46] * 3:
        pool.posture = posture_of(pool, p)
        seen.append(pool.posture)
    assert set(seen) == {"CRIT"}


def test_a_new_posture_comes_with_its_forecast() -> None:
    w = World(limit=1000)
    w.register("id-a", "acct-1")
    for _ in range(40):
        w.ask(cost=20)
        w.clock.advance(1)
    pool = w.pool()
    assert pool.forecast is not None
    assert posture_of(pool, pool.forecast.p_exhaustion) == pool.posture


SHAPE_ALL = """
policies:
  - id: p
    target: global
    rules:
      - name: shape-everything
        when: "true"
        action: shape
        params: {wait_seconds: 1}
        reason: "pacing {pool.id}"
"""


def test_a_rule_fired_on_two_pools_is_listed_once() -> None:
    w = with_workloads(World(policy=load_policy_text(SHAPE_ALL)), {"both": {"requests": 1, "x": 1}})
    pools = {r: MockPoolConfig(limit=1000, window_seconds=3600) for r in ("requests", "x")}
    w.mock = MockProvider(
        MockProviderConfig(principals={"acct-1": MockPrincipalConfig(pools=pools)}),
        start=w.clock.now(),
    )
    w.register("id-a", "acct-1")
    d = w.ask(resource=None, workload_id="both")
    assert d.decision == "approve_with_modifications"
    assert d.evaluation.rules_fired == ["p/shape-everything"]


def test_a_fail_safe_reason_does_not_contradict_itself() -> None:
    w = World()
    w.register("id-a", "acct-1")
    w.clock.advance(400)  # no observation for longer than stale_after_seconds
    d = w.ask(cost=1)
    assert d.decision == "approve_with_modifications"
    assert d.reason.startswith("fail-safe: forecast for mock:requests:acct-1 is stale"), d.reason
    assert "would run out" not in d.reason


def test_explain_says_unknown_when_a_principal_is_unknown() -> None:
    w = World()
    w.register("id-a", "acct-1")
    w.log += w.engine.register_identity(
        IdentityCreate(identity_id="id-x", provider_id="mock"), w.clock.now()
    )
    answer = explain(w.engine, "id-a", "id-x")
    assert answer.verdict == "unknown" and answer.shared is False
    assert answer.explanation.startswith("unknown: the principal of id-x is not known")
    assert explain(w.engine, "id-a", "id-a").verdict == "shared"


def test_a_pool_only_responses_reveal_is_learned_from_one_first_call_at_a_time() -> None:
    w = OpenAIWorld()
    costs = {f"tokens@{MODEL}": 100, f"requests@{MODEL}": 1}
    first = w.ask(costs=costs)
    assert first.decision == "approve" and "first call" in first.reason
    second = w.ask(costs=costs)
    assert second.decision == "deny_with_reason", "only one blind call at a time"
    assert "first call is under way" in second.reason
    w.report(first.intent_id, costs={f"tokens@{MODEL}": 100})
    assert w.ask(costs=costs).decision == "approve"
    replayed = type(w.engine.state)()
    replayed.apply_all(w.log)
    assert replayed.encode() == w.engine.state.encode()
