"""Shadow policies: evaluated on live traffic, logged as ``policy_shadowed``, deciding nothing."""

from __future__ import annotations

import msgspec
import pytest

from ratelord.engine.events import Event
from ratelord.engine.policy import PolicyError, load_policy_text
from ratelord.schema import Decision
from tests.unit.test_engine import World

SHADOW_RULE = """
policies:
  - id: candidate
    target: global
    kind: hard
    rules:
      - name: deny-everything
        mode: shadow
        when: 'intent.cost > 0.0'
        action: deny
        reason: "would deny {intent.cost:.0f} from {pool.id}"
      - name: pace
        when: 'intent.cost > 5.0'
        action: shape
"""


def ask(world: World, cost: float) -> tuple[Decision, list[Event]]:
    before = len(world.log)
    decision = world.ask(cost=cost)
    return decision, world.log[before:]


def test_a_shadow_rule_is_logged_and_changes_no_answer() -> None:
    world = World(policy=load_policy_text(SHADOW_RULE))
    world.register("id-a", "acct-1")
    decision, events = ask(world, 1)
    assert decision.decision == "approve"
    assert decision.evaluation is not None and decision.evaluation.rules_fired == []
    kinds = [e.event_type for e in events]
    assert "policy_triggered" not in kinds
    shadow = next(e for e in events if e.event_type == "policy_shadowed")
    assert shadow.payload.decision == "approve"
    assert shadow.payload.would_decide == "deny"
    assert shadow.payload.changes_answer is True
    assert msgspec.to_builtins(shadow.payload.rules) == [
        {
            "policy_id": "candidate",
            "rule": "deny-everything",
            "action": "deny",
            "reason": "rule candidate/deny-everything: would deny 1 from mock:requests:acct-1",
            "pool_id": "mock:requests:acct-1",
        }
    ]
    assert shadow.correlation_id == decision.intent_id


def test_enforced_rules_beside_a_shadow_rule_still_decide() -> None:
    world = World(policy=load_policy_text(SHADOW_RULE))
    world.register("id-a", "acct-1")
    decision, events = ask(world, 10)
    assert decision.decision == "approve_with_modifications"
    shadow = next(e for e in events if e.event_type == "policy_shadowed")
    assert shadow.payload.would_decide == "deny"
    triggered = [e.payload.rule for e in events if e.event_type == "policy_triggered"]
    assert triggered == ["pace"]


def test_a_whole_policy_in_shadow_mode() -> None:
    policy = load_policy_text(SHADOW_RULE.replace("kind: hard", "kind: hard\n    mode: shadow"))
    assert policy.describe()["policies"][1]["mode"] == "shadow"
    world = World(policy=policy)
    world.register("id-a", "acct-1")
    decision, events = ask(world, 10)
    assert decision.decision == "approve"
    shadow = next(e for e in events if e.event_type == "policy_shadowed")
    assert [r.rule for r in shadow.payload.rules] == ["deny-everything", "pace"]
    assert shadow.payload.changes_answer is True


def test_no_shadow_rule_no_event() -> None:
    world = World()
    world.register("id-a", "acct-1")
    _, events = ask(world, 1)
    assert all(e.event_type != "policy_shadowed" for e in events)


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(PolicyError, match="unknown mode 'dry-run'"):
        load_policy_text(SHADOW_RULE.replace("mode: shadow", "mode: dry-run"))
