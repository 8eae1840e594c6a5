"""Leases in the engine: sizing, fair share, reports, release, expiry, shrinking, replay."""

from __future__ import annotations

import pytest

from ratelord.engine import leases
from ratelord.engine.core import Gone
from ratelord.engine.leases import Claim, fair_shares
from ratelord.engine.observe import observe_usage
from ratelord.engine.state import State
from ratelord.schema import LeaseReport, LeaseRequest, UsageReport
from tests.unit.test_engine import World


def world(limit: float = 1000, window: float = 3600) -> World:
    w = World(limit=limit, window=window)
    w.register("id-a", "acct-1")
    return w


def take(w: World, units: float, **fields):
    request = LeaseRequest(
        agent_id=fields.pop("agent_id", "agent"),
        identity_id=fields.pop("identity_id", "id-a"),
        resource="requests",
        units=units,
        **fields,
    )
    lease, events = leases.decide_lease(w.engine, request, w.clock.now())
    w.log += events
    return lease


def test_fair_shares_give_small_demands_all_and_split_the_rest_by_weight() -> None:
    shares = fair_shares(
        100,
        [Claim("small", 10, 1), Claim("big", 1000, 1), Claim("urgent", 1000, 2)],
    )
    assert shares["small"] == 10
    assert shares["big"] == pytest.approx(30)
    assert shares["urgent"] == pytest.approx(60)


def test_a_safe_lease_is_granted_in_full_and_reserved() -> None:
    w = world()
    lease = take(w, 50)
    assert (lease.status, lease.granted, lease.available) == ("active", 50, 50)
    pool = w.pool()
    assert pool.remaining == 950
    assert pool.leased == 50
    assert w.log[-1].event_type in ("lease_decided", "forecast_computed", "posture_changed")


def test_leased_units_stay_out_of_remaining_after_an_observation() -> None:
    w = world()
    take(w, 100)
    w.clock.advance(1)
    w.poll("id-a")  # the provider has seen none of the leased units spent
    assert w.pool().remaining == 900


def test_a_lease_bigger_than_the_pool_is_granted_in_part() -> None:
    w = world(limit=100, window=60)
    lease = take(w, 500, ttl_seconds=30)
    assert lease.status == "active"
    # Paced, and in part: a fresh pool's pace spends its budget over the first 30 s (the
    # allocation's shortest horizon), less the floor kept for urgent work (#13).
    assert 0 < lease.granted < 100
    assert lease.reason


def test_no_lease_for_an_unknown_identity() -> None:
    w = world()
    lease = take(w, 10, identity_id="ghost")
    assert (lease.status, lease.granted) == ("refused", 0)
    assert "unknown identity" in (lease.reason or "")
    assert w.engine.state.leases == {}


def test_below_min_units_nothing_is_granted() -> None:
    w = world(limit=100)
    lease = take(w, 500, min_units=400)
    assert lease.status == "refused"
    assert w.pool().leased == 0


def test_report_moves_units_from_leased_to_spent_and_release_returns_the_rest() -> None:
    w = world()
    lease = take(w, 100)
    now = w.clock.now()
    after, _ = leases.report(w.engine, lease.lease_id, LeaseReport(spent=30, rate=3), now)
    assert (after.spent, after.available, after.rate) == (30, 70, 3)
    assert w.pool().leased == 70
    assert w.pool().remaining == 900
    ended, _ = leases.release(w.engine, lease.lease_id, LeaseReport(spent=10), now)
    assert ended.status == "released"
    assert (w.pool().leased, w.pool().remaining) == (0, 960)
    with pytest.raises(Gone) as gone:
        leases.report(w.engine, lease.lease_id, LeaseReport(rate=1), now)
    assert gone.value.code == "lease_ended"


def test_spend_reported_after_a_revocation_is_still_booked() -> None:
    """The holder spent from its lease before it learnt of the revocation: the units
    reached the provider, so the report is taken (not a 410) and debited."""
    w = world()
    lease = take(w, 100, ttl_seconds=600)
    now = w.clock.now()
    w.log += [leases._revise(w.engine, w.engine.state.leases[lease.lease_id], 0, "test", True, now)]
    w.log += [leases._end(w.engine, w.engine.state.leases[lease.lease_id], "revoked", now, "t")]
    assert (w.pool().leased, w.pool().remaining) == (0, 1000)
    late, events = leases.release(w.engine, lease.lease_id, LeaseReport(spent=7, rate=2), now)
    w.log += events
    assert (late.status, late.spent) == ("revoked", 7)
    assert w.pool().remaining == 993
    assert [e.payload.rate for e in events if e.event_type == "lease_reported"] == [None]
    assert not [e for e in events if e.event_type == "lease_ended"]
    replayed = State()
    replayed.apply_all(w.log)
    assert replayed.encode() == w.engine.state.encode()


def test_spending_beyond_the_grant_is_debited() -> None:
    w = world()
    lease = take(w, 10)
    leases.report(w.engine, lease.lease_id, LeaseReport(spent=15), w.clock.now())
    assert w.pool().remaining == 985


def test_expiry_returns_the_unspent_units() -> None:
    w = world()
    lease = take(w, 100, ttl_seconds=10)
    leases.report(w.engine, lease.lease_id, LeaseReport(spent=40), w.clock.now())
    w.clock.advance(5)
    assert leases.maintain(w.engine, w.clock.now()) == []
    w.clock.advance(6)
    events = leases.maintain(w.engine, w.clock.now())
    ended = [e for e in events if e.event_type == "lease_ended"]
    assert [e.payload.status for e in ended] == ["expired"]
    assert w.engine.state.leases == {}
    assert w.pool().remaining == 960


def test_a_lease_ends_at_the_pools_reset_at_the_latest() -> None:
    w = world(window=60)
    lease = take(w, 10, ttl_seconds=3600)
    assert w.engine.state.leases[lease.lease_id].expires_at <= w.clock.now() + 60


def test_holders_share_a_paced_pool_by_urgency() -> None:
    w = world(limit=1000, window=3600)
    w.register("id-b", "acct-1")
    # Burn most of the pool fast so that the forecast paces it.
    for _ in range(9):
        w.ask(cost=100)
    normal = take(w, 500, agent_id="n", ttl_seconds=60)
    urgent = take(w, 500, agent_id="u", ttl_seconds=60, urgency="high")
    assert normal.granted < 500
    assert urgent.granted >= normal.granted


def test_a_turned_forecast_shrinks_or_revokes_big_leases() -> None:
    w = world(limit=1000)
    lease = take(w, 600, ttl_seconds=600)
    assert lease.granted == 600
    # The provider says most of the pool went elsewhere: drift, posture turns.
    w.mock.spend("acct-1", "requests", 300, w.clock.now())
    w.clock.advance(1)
    w.poll("id-a")
    events = leases.maintain(w.engine, w.clock.now())
    kinds = {e.event_type for e in events}
    assert kinds & {"lease_revised", "lease_ended"}
    left = w.engine.state.leases.get(lease.lease_id)
    assert left is None or left.granted < 600


def test_urgent_work_arriving_takes_its_reserve_back_from_normal_leases() -> None:
    w = world(limit=1000)
    normal = take(w, 900, ttl_seconds=600)
    assert normal.granted == 900
    assert leases.maintain(w.engine, w.clock.now()) == []  # no urgent work seen: all kept
    # Urgent work arrives (spent through its own lease): the reserve it needs is leased.
    for _ in range(3):
        w.clock.advance(100)
        urgent = take(w, 2, agent_id="u", urgency="high", ttl_seconds=600)
        _, events = leases.release(w.engine, urgent.lease_id, LeaseReport(spent=2), w.clock.now())
        w.log += events
    assert w.pool().urgent.count == 3
    events = leases.maintain(w.engine, w.clock.now())
    w.log += events
    revised = [e.payload for e in events if e.event_type == "lease_revised"]
    assert [p.lease_id for p in revised] == [normal.lease_id]
    assert "urgent work needs" in revised[0].reason
    assert 0 < w.engine.state.leases[normal.lease_id].granted < 900  # shrunk, not revoked
    # Once given back, nothing more is taken: the pool holds the reserve again.
    assert leases.maintain(w.engine, w.clock.now()) == []
    replayed = State()
    replayed.apply_all(w.log)
    assert replayed.encode() == w.engine.state.encode()


def test_leases_give_back_units_the_provider_no_longer_has() -> None:
    w = world(limit=1000)
    lease = take(w, 600, ttl_seconds=600)
    # Use nobody saw: the provider has 300 left, the lease holds 600 of them.
    w.mock.spend("acct-1", "requests", 700, w.clock.now())
    w.clock.advance(1)
    w.poll("id-a")
    assert w.pool().shortfall == 300
    events = leases.maintain(w.engine, w.clock.now())
    w.log += events
    revised = [e.payload for e in events if e.event_type == "lease_revised"]
    assert revised and revised[0].lease_id == lease.lease_id
    # What the lease gave back was never there: it does not come back to the pool.
    left = w.engine.state.leases.get(lease.lease_id)
    assert left is None or left.granted <= 300
    assert w.pool().leased + w.pool().remaining <= 300
    replayed = State()
    replayed.apply_all(w.log)
    assert replayed.encode() == w.engine.state.encode()


def test_leases_replay_into_identical_state() -> None:
    w = world()
    first = take(w, 100, ttl_seconds=30)
    take(w, 50, agent_id="other", ttl_seconds=120)
    _, reported = leases.report(w.engine, first.lease_id, LeaseReport(spent=20), w.clock.now())
    w.log += reported
    w.clock.advance(40)
    w.log += leases.maintain(w.engine, w.clock.now())
    _, events = observe_usage(
        w.engine, UsageReport(identity_id="id-a", resource="requests", cost=1), [], w.clock.now()
    )
    w.log += events
    replayed = State()
    replayed.apply_all(w.log)
    assert replayed.encode() == w.engine.state.encode()
    assert list(replayed.leases) == [e.payload.lease_id for e in w.log if _granted(e)][1:]


def _granted(event) -> bool:
    return event.event_type == "lease_decided" and event.payload.granted > 0
