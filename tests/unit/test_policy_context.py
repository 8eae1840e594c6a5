"""The lazy policy context arbitration hands to the policy: the contract of SPEC §6."""

from __future__ import annotations

import math

from ratelord.engine.arbitration import PolicyContext, _Arbiter
from ratelord.engine.policy import VARIABLES, load_policy_text
from ratelord.engine.policy.variables import MAP, STRING
from ratelord.schema import IntentRequest
from tests.unit.test_engine import World


def context(world: World, **labels: str) -> PolicyContext:
    engine = world.engine
    request = IntentRequest(
        agent_id="agent-7", identity_id="id-a", resource="requests", cost=3, labels=labels
    )
    arbiter = _Arbiter(engine, request, world.clock.now(), "int_1")
    record = engine.state.identities["id-a"]
    pool_id = next(iter(engine.state.pools))
    return PolicyContext(arbiter, record, arbiter._view(record, pool_id, 3.0))


def test_every_variable_and_field_is_there_with_its_type() -> None:
    world = World()
    world.register("id-a", "acct-1")
    ctx = context(world, role="crawler")
    assert set(ctx) == set(VARIABLES)
    assert len(ctx) == len(VARIABLES)
    for var, fields in VARIABLES.items():
        assert set(ctx[var]) == set(fields), var
        for name, kind in fields.items():
            value = ctx[var][name]
            if kind == MAP:
                assert isinstance(value, dict)
            elif kind == STRING or isinstance(kind, tuple):
                assert isinstance(value, str), (var, name)
                assert not isinstance(kind, tuple) or value in kind, (var, name, value)
            else:
                assert isinstance(value, int | float), (var, name)
    assert ctx["intent"]["cost"] == 3.0
    assert ctx["agent"]["role"] == "crawler"
    assert ctx["pool"]["limit"] == 1000.0
    assert ctx["tte"]["p99"] == math.inf  # nothing burns yet


def test_a_variable_is_built_once_and_only_when_read() -> None:
    world = World()
    world.register("id-a", "acct-1")
    ctx = context(world)
    assert ctx.get("nonsense") is None
    assert ctx.built() == ["pool", "intent"]  # the physical floor reads them every time
    first = ctx["risk"]
    assert ctx["risk"] is first
    assert ctx.built() == ["pool", "intent", "risk"]


def test_policies_see_the_lazy_context_like_a_dict() -> None:
    policy = load_policy_text(
        """
policies:
  - id: p
    target: agent:agent-*
    rules:
      - name: crawlers
        when: 'agent.role == "crawler" && pool.remaining > 10'
        action: shape
        params: {wait_seconds: 2}
        reason: "{agent.role} on {pool.id}: {pool.remaining:.0f} left"
"""
    )
    world = World(policy=policy)
    world.register("id-a", "acct-1")
    outcome = policy.evaluate(context(world, role="crawler"))
    assert [rule.rule for rule in outcome.fired] == ["crawlers"]
    assert outcome.fired[0].reason.endswith("crawler on mock:requests:acct-1: 1000 left")
    assert policy.evaluate(context(world, role="indexer")).fired == []
