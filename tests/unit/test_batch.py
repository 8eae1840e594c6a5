"""Batches of intents in the engine: identical neighbours as one group, the rest one by one."""

from __future__ import annotations

import pytest

from ratelord.engine.batch import decide_batch
from ratelord.engine.core import EngineError
from ratelord.engine.events import IdFactory
from ratelord.engine.state import State
from ratelord.schema import IntentRequest
from tests.unit.test_engine import World


def intent(**fields) -> IntentRequest:
    base = {"agent_id": "a", "identity_id": "id-a", "resource": "requests", "cost": 1}
    return IntentRequest(**(base | fields))


def world(limit: float = 1000) -> World:
    w = World(limit=limit)
    w.register("id-a", "acct-1")
    return w


def test_identical_intents_are_approved_as_one_group_and_each_is_charged() -> None:
    w = world()
    made = decide_batch(w.engine, [intent()] * 10 + [intent(agent_id="b")], 0.0)
    decisions, events = made.decisions, made.events
    w.log += events
    # what reaches the provider: the group's total, then the lone intent's
    assert [d.charges for d in made.outcomes] == [{"mock:requests:acct-1": c} for c in (10, 1)]
    assert [d.decision for d in decisions[:10]] == ["approve"] * 10
    assert decisions[10].allowed
    assert len({d.intent_id for d in decisions}) == 11
    kinds = [e.event_type for e in events]
    assert kinds.count("intents_decided") == 1
    assert kinds.count("intent_decided") == 1
    assert w.pool().remaining == 989
    assert w.engine.state.stats.intents_total == 11
    replayed = State()
    replayed.apply_all(w.log)
    assert replayed.encode() == w.engine.state.encode()


def test_a_group_whose_total_is_not_approved_is_decided_one_by_one() -> None:
    w = world(limit=10)
    made = decide_batch(w.engine, [intent(cost=4)] * 4, 0.0)
    decisions, events = made.decisions, made.events
    assert "intents_decided" not in {e.event_type for e in events}
    assert [e.event_type for e in events].count("intent_decided") == 4
    assert decisions[-1].decision != "approve"


def test_a_malformed_intent_refuses_the_batch_before_anything_is_applied() -> None:
    w = world()
    bad = IntentRequest(agent_id="a", identity_id="id-a", resource="requests", costs={"x": 1})
    before = w.engine.state.encode()
    with pytest.raises(EngineError) as refused:
        decide_batch(w.engine, [intent(), bad], 0.0)
    assert "intent 1" in refused.value.message
    assert w.engine.state.encode() == before


def test_a_groups_ids_are_those_one_call_each_would_make() -> None:
    one, many = IdFactory("t"), IdFactory("t")
    assert [one("int") for _ in range(3)] == many.many("int", 3)
    assert one("ev") == many("ev")  # the counter goes on from there
