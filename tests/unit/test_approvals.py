"""Approvals that stay true: a waiting approval its pool no longer covers is revoked."""

from __future__ import annotations

import math

from ratelord.engine import approvals
from ratelord.engine.observations import PollResult, PoolObservation
from ratelord.engine.policy import load_policy_text
from ratelord.engine.state import State
from ratelord.schema import UsageReport
from ratelord.service import run_sync
from tests.unit.test_engine import World

WAIT_A_MINUTE = load_policy_text("""
policies:
  - id: pace
    target: global
    kind: soft
    rules:
      - name: always
        when: 'true'
        action: shape
        params: {wait_seconds: 60}
""")


def waiting_world(spent_behind: float = 500) -> tuple[World, list[str]]:
    """Four approvals of 200 told to wait a minute, a second apart, on a pool of 1,000;
    then 500 spent behind ratelord's back and a poll that shows it (drift)."""
    w = World(policy=WAIT_A_MINUTE, limit=1000)
    w.commands.charge_listeners.clear()  # calls told to wait have not reached the provider
    w.register("id-a", "acct-1")
    ids = []
    for _ in range(4):
        ids.append(w.ask(cost=200).intent_id)
        w.clock.advance(1)
    if spent_behind:
        w.mock.spend("acct-1", "requests", spent_behind, w.clock.now())
    return w, ids


def revoked_ids(events: list) -> list[str]:
    return [e.payload.intent_id for e in events if e.event_type == "approval_revoked"]


def test_drift_revokes_the_waiting_approvals_the_pool_no_longer_covers() -> None:
    w, ids = waiting_world()
    events = w.poll("id-a")
    revoked = [e.payload for e in events if e.event_type == "approval_revoked"]
    # 500 left covers the first two (400), not the last two
    assert [p.intent_id for p in revoked] == ids[2:]
    assert all("mock:requests:acct-1 drifted" in p.reason for p in revoked)
    # Their reservations went back, and no more than the provider's word allows.
    assert w.pool().remaining == 100
    assert [run_sync(w.commands.check_approval(i)).holds for i in ids] == [True, True, False, False]


def test_the_check_before_spending_revokes_what_no_longer_fits() -> None:
    w, ids = waiting_world()  # no poll: the daemon does not know of the 500 yet
    assert run_sync(w.commands.check_approval(ids[3])).holds
    w.clock.advance(5)
    w.poll("id-a")
    check = run_sync(w.commands.check_approval(ids[3]))
    assert not check.holds and check.reason
    assert run_sync(w.commands.check_approval("int-unknown")).holds  # nothing reserved


def test_revocations_replay_to_the_same_state() -> None:
    w, ids = waiting_world()
    w.poll("id-a")
    replayed = State()
    replayed.apply_all(w.log)
    assert replayed.encode() == w.engine.state.encode()
    assert set(replayed.revoked) == set(ids[2:])
    assert approvals.check(w.engine, ids[2], w.clock.now())[0] is False


def test_a_limit_cut_revokes_the_waiting_approvals_it_no_longer_covers() -> None:
    w, ids = waiting_world(spent_behind=0)
    now = w.clock.now()
    cut = PoolObservation(
        resource="requests",
        limit=500,  # was 1,000: what is left moves by the difference
        remaining=500,
        used=500,
        reset_at=w.mock.reset_at("acct-1", "requests"),
        window_seconds=3600,
    )
    before = len(w.log)
    run_sync(w.commands.observe_poll("id-a", PollResult(observed_at=now, observations=[cut])))
    events = w.log[before:]
    assert any(e.event_type == "constraint_observed" for e in events)
    assert revoked_ids(events) == ids[2:]


def test_a_429s_headers_revoke_every_approval_still_waiting_on_the_pool() -> None:
    w, ids = waiting_world(spent_behind=0)
    reset = w.mock.reset_at("acct-1", "requests")
    assert reset is not None
    rejected = UsageReport(
        agent_id="other",
        identity_id="id-a",
        headers={
            "x-ratelimit-limit": "1000",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(int(reset) + 1),
            "x-ratelimit-resource": "requests",
        },
        status_code=429,
    )
    run_sync(w.commands.usage(rejected))
    assert w.pool().remaining == 0
    assert [run_sync(w.commands.check_approval(i)).holds for i in ids] == [False] * 4


def test_an_approval_holds_only_if_it_fits_at_what_calls_really_spend() -> None:
    """Calls on the pool cost 20 % more or less than estimated: before its slot, the last
    call of a window must fit at the P99 of that error, not at its estimate (else it
    may overrun the pool: an honest 429)."""
    w = World(policy=WAIT_A_MINUTE, limit=100)
    w.register("id-a", "acct-1")
    for i in range(10):
        decision = w.ask(cost=5)
        actual = 6.0 if i % 2 else 4.0
        run_sync(
            w.commands.usage(
                UsageReport(
                    agent_id="agent", identity_id="id-a", intent_id=decision.intent_id, cost=actual
                )
            )
        )
    assert w.pool().remaining == 50
    # 48 fits the 50 left at its estimate, not at what it may really spend; 30 does.
    edge, room = w.ask(cost=48).intent_id, w.ask(cost=30).intent_id
    w.clock.advance(60)
    assert not run_sync(w.commands.check_approval(edge)).holds
    assert run_sync(w.commands.check_approval(room)).holds


def test_a_call_approved_just_before_a_poll_counts_until_the_provider_shows_it() -> None:
    """A client may wait after asking (PyGithub: 0.25 s): a poll in between does not
    read that call's unit as free (before, the next intent was approved into a 403)."""
    w = World(limit=10)
    w.register("id-a", "acct-1")
    w.poll("id-a")
    w.commands.charge_listeners.clear()  # the call has not reached the provider yet
    assert w.ask(cost=1).decision == "approve"
    w.clock.advance(0.1)
    w.poll("id-a")  # the provider still shows 10
    assert w.pool().remaining == 9
    w.mock.spend("acct-1", "requests", 1, w.clock.now())  # the call lands
    w.clock.advance(2)
    w.poll("id-a")
    assert w.pool().remaining == 9


def test_every_call_approved_just_before_a_poll_counts_until_the_provider_shows_it() -> None:
    """Clients in parallel (the proxy's eight): three calls approved a moment apart are all
    still on their way when a poll lands; none of their units reads as free (before, only
    the latest instant's call was kept, and a loaded machine met 403s at a window's end)."""
    w = World(limit=100_000)
    w.register("id-a", "acct-1")
    w.poll("id-a")
    w.commands.charge_listeners.clear()  # the calls have not reached the provider yet
    for _ in range(3):
        assert w.ask(cost=1).decision == "approve"
        w.clock.advance(0.1)
    w.poll("id-a")  # the provider still shows 100,000
    assert w.pool().remaining == 99_997


def test_a_response_s_own_headers_count_its_call_as_landed() -> None:
    """The SDK transport reports every response's headers; a quick call's arrive at the
    instant it was approved.  Its own call is in what they show: before, it was counted
    again as still on its way, and a small pool lost a unit at every report
    (reset-lockout seed 0: 94 % of a window used)."""
    w = World(limit=10)
    w.register("id-a", "acct-1")
    intent = w.ask(cost=1).intent_id  # the mock spends it at once
    reset = w.pool().reset_at
    assert reset is not None
    headers = {
        "x-ratelimit-limit": "10",
        "x-ratelimit-remaining": "9",
        "x-ratelimit-used": "1",
        "x-ratelimit-reset": str(math.ceil(reset)),
        "x-ratelimit-resource": "requests",
    }
    report = UsageReport(agent_id="agent", identity_id="id-a", intent_id=intent, headers=headers)
    run_sync(w.commands.usage(report))
    assert w.pool().remaining == 9
