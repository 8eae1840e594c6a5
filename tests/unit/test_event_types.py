"""Typed events: the producers and consumers of each event type agree on its payload, and
a log written before the payloads were typed replays alike.

``tests/fixtures/events_v1.jsonl`` was written by the engine of commit d6498ae (payloads
were dicts then): three logs (``governed``, ``waiting``, ``money``) that hold every event
type, one ``{"log": ..., "event": ...}`` per line, each event as ``/v1/events`` showed it.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ratelord.engine import leases
from ratelord.engine.batch import decide_batch
from ratelord.engine.budgets import Budget
from ratelord.engine.events import (
    EVENT_CLASSES,
    PAYLOAD_TYPES,
    Event,
    SnapshotWrittenPayload,
    SystemStartedPayload,
    decode_event,
    event_type_of,
    typed,
)
from ratelord.engine.observations import PollResult
from ratelord.engine.observe import observe_error, observe_poll
from ratelord.engine.policy import PolicyError, load_policy_text
from ratelord.engine.state import State
from ratelord.schema import (
    IdentityCreate,
    IdentityRotate,
    IntentRequest,
    LeaseReport,
    Tokens,
    UsageReport,
)
from ratelord.service import run_sync
from ratelord.store import SQLiteStore
from ratelord.store.replay import load
from tests.unit.test_approvals import WAIT_A_MINUTE
from tests.unit.test_budgets import CHARGES, MODEL, PRICES
from tests.unit.test_engine import World
from tests.unit.test_leases import take
from tests.unit.test_llm_engine import OpenAIWorld
from tests.unit.test_policy_shadow import SHADOW_RULE

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "events_v1.jsonl"


def _strict(payload_type: type[Any]) -> Callable[[bytes], Any]:
    """A decoder of ``payload_type`` that refuses a field the type does not declare."""
    strict = types.new_class(
        payload_type.__name__,
        (payload_type,),
        {"forbid_unknown_fields": True, "frozen": True, "kw_only": True},
    )
    return msgspec.json.Decoder(strict).decode


STRICT = {event_type: _strict(p) for event_type, p in PAYLOAD_TYPES.items()}


def recorded() -> dict[str, list[dict[str, Any]]]:
    logs: dict[str, list[dict[str, Any]]] = {}
    for line in FIXTURE.read_text().splitlines():
        row = json.loads(line)
        logs.setdefault(row["log"], []).append(row["event"])
    return logs


# ---------------------------------------------------------------------- the vocabulary


def test_every_event_type_has_its_class_and_payload() -> None:
    # The vocabulary is the classes: each one's tag is its name (IntentDecided: intent_decided).
    for event_type, cls in EVENT_CLASSES.items():
        assert event_type == event_type_of(cls)
        assert event_type == re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
    assert len(set(PAYLOAD_TYPES.values())) == len(PAYLOAD_TYPES)  # one payload type each
    cls, _ = typed("something_newer")
    assert cls is Event  # a type this version does not know is kept, not refused


# ---------------------------------------------------------------------- an old log


def test_an_old_log_decodes_into_typed_events_that_encode_as_they_were_written() -> None:
    logs = recorded()
    seen = {e["event_type"] for log in logs.values() for e in log}
    assert seen == set(EVENT_CLASSES)  # the fixture holds every type
    for log in logs.values():
        for written in log:
            raw = json.dumps(written).encode()
            event = decode_event(raw)
            assert type(event) is EVENT_CLASSES[written["event_type"]]
            # every field the old writer wrote is one the payload declares...
            STRICT[event.event_type](json.dumps(written["payload"]).encode())
            # ...and the typed event encodes to the same JSON, key for key and in order
            again = json.loads(msgspec.json.encode(event))
            assert again == written
            assert list(again["payload"]) == list(written["payload"])


def test_an_old_log_replays_through_the_store_into_the_state_it_made(tmp_path: Path) -> None:
    for name, log in recorded().items():
        events = [decode_event(json.dumps(e).encode()) for e in log]
        in_memory = State()
        in_memory.apply_all(events)
        store = SQLiteStore(tmp_path / f"{name}.db")
        try:
            store.append([msgspec.structs.replace(e, seq=0) for e in events], 1.0)
            read = [e for batch in store.read(0) for e in batch]
            assert [type(e) for e in read] == [type(e) for e in events]
            assert [e.payload for e in read] == [e.payload for e in events]
            assert load(store).state.encode() == in_memory.encode()
        finally:
            store.close()


def test_what_the_old_log_says_is_what_the_typed_replay_knows() -> None:
    state = State()
    state.apply_all(decode_event(json.dumps(e).encode()) for e in recorded()["governed"])
    identities = {i.identity_id: i.status for i in state.identities.values()}
    assert identities == {"id-a": "active", "id-b": "revoked", "id-c": "active"}
    assert state.identities["id-c"].principal == "acct-1"  # principal_discovered
    assert state.identities["id-b"].status_reason == "gone"
    assert state.stats.policy_version == WAIT_A_MINUTE.version
    assert state.stats.policy_rejections == 1
    assert state.stats.intents_total == sum(state.stats.decisions.values()) > 20
    assert set(state.leases_ended.values()) >= {"expired", "released"}
    money = State()
    money.apply_all(decode_event(json.dumps(e).encode()) for e in recorded()["money"])
    assert money.budgets and all(ledger.calls for ledger in money.budgets.values())
    waiting = State()
    waiting.apply_all(decode_event(json.dumps(e).encode()) for e in recorded()["waiting"])
    assert len(waiting.revoked) == 2


# ---------------------------------------------------------------------- the contract


def every_event() -> list[Event]:
    """Today's engine driven through every kind of command: identities, polls, intents
    (shaped, denied, shadowed, batched, paced, probing, priced), usage, drift and
    revoked approvals, leases (granted, reported, released, expired, revised,
    revoked), provider errors and quarantine, policy reloads, snapshots."""
    w = World(policy=load_policy_text(SHADOW_RULE), limit=1000, window=600)
    log = w.log
    log += w.engine.start(w.clock.now(), SystemStartedPayload(version="t", pid=1, db="x"))
    w.register("id-a", "acct-1")
    w.register("id-b", "acct-2")
    for i in range(12):
        w.ask(cost=3 + i % 9, agent_id=f"agent-{i % 3}", labels={"n": str(i % 2)})
        w.clock.advance(7)
    w.mock.spend("acct-1", "requests", 400, w.clock.now())
    w.clock.advance(5)
    w.poll("id-a")
    for _ in range(8):
        w.ask(cost=60)
        w.clock.advance(3)
    decision = w.ask(cost=5)
    report = UsageReport(identity_id="id-a", intent_id=decision.intent_id, cost=7)
    run_sync(w.commands.usage(report))
    w.ask("id-b", cost=5000)
    w.clock.advance(700)
    w.poll("id-a")
    w.poll("id-b")
    batch = [IntentRequest(agent_id="b", identity_id="id-b", resource="requests", cost=1)] * 5
    log += decide_batch(w.engine, batch, w.clock.now()).events
    lease = take(w, 100, identity_id="id-b", ttl_seconds=10)
    log += leases.report(w.engine, lease.lease_id, LeaseReport(spent=40), w.clock.now())[1]
    other = take(w, 50, identity_id="id-b", ttl_seconds=600)
    log += leases.release(w.engine, other.lease_id, LeaseReport(spent=10), w.clock.now())[1]
    w.clock.advance(11)
    log += leases.maintain(w.engine, w.clock.now())
    for k in range(6):
        take(w, 300, identity_id="id-b", agent_id=f"holder-{k}", ttl_seconds=300)
    w.mock.spend("acct-2", "requests", 500, w.clock.now())
    w.clock.advance(5)
    w.poll("id-b")
    log += leases.maintain(w.engine, w.clock.now())
    for _ in range(3):
        log += observe_error(w.engine, "id-a", kind="auth", message="401", now=w.clock.now())
    run_sync(w.commands.change_identity("id-a", "rotate", IdentityRotate()))
    run_sync(w.commands.change_identity("id-b", "revoke", IdentityRotate(reason="gone")))
    run_sync(w.commands.register(IdentityCreate(identity_id="id-c", provider_id="mock")))
    found = PollResult(observed_at=w.clock.now(), observations=[], principal="acct-1")
    log += observe_poll(w.engine, "id-c", found)
    log += w.engine.set_policy(WAIT_A_MINUTE, w.clock.now())
    log += w.engine.reject_policy(PolicyError("bad yaml"), "policy.yaml", w.clock.now())
    log.append(w.engine.emit(SnapshotWrittenPayload(seq=10, bytes=1234), w.clock.now()))
    log += w.engine.stop(w.clock.now(), "signal")
    return log + _waited() + _priced()


def _waited() -> list[Event]:
    w = World(policy=WAIT_A_MINUTE, limit=1000)
    w.commands.charge_listeners.clear()
    w.register("id-a", "acct-1")
    for _ in range(4):
        w.ask(cost=200)
        w.clock.advance(1)
    w.mock.spend("acct-1", "requests", 500, w.clock.now())
    w.poll("id-a")  # drift: the approvals it no longer covers are revoked
    return w.log


def _priced() -> list[Event]:
    w = OpenAIWorld(budgets=(Budget(id="daily", limit=1.0),), prices=PRICES)
    tokens = Tokens(model=MODEL, input=30, output=100)
    w.ask(costs=CHARGES, tokens=tokens)  # the first call on unknown pools probes them
    w.now += 1
    w.report(None)
    for _ in range(3):
        decision = w.ask(costs=CHARGES, tokens=tokens)
        w.report(decision.intent_id, tokens=Tokens(model=MODEL, input=30, output=50))
        w.now += 1
    return w.log


def test_every_event_the_engine_produces_round_trips_through_its_payload_type() -> None:
    produced = every_event()
    assert {e.event_type for e in produced} == set(EVENT_CLASSES)
    for event in produced:
        assert type(event) is EVENT_CLASSES[event.event_type]
        body = msgspec.json.encode(event.payload)
        # the consumer's type declares every field the producer wrote, and reads it back
        read = STRICT[event.event_type](body)
        assert json.loads(msgspec.json.encode(read)) == json.loads(body)
        again = decode_event(msgspec.json.encode(event))
        assert type(again) is type(event)
        assert json.loads(msgspec.json.encode(again)) == json.loads(msgspec.json.encode(event))


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_TYPES))
def test_a_payload_with_a_field_its_type_lacks_is_refused_by_the_contract(event_type: str) -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        STRICT[event_type](b'{"not_a_field": 1}')
