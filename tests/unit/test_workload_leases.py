"""Leases over a workload's pools: one unit holds the workload's cost of each pool, all or none."""

from __future__ import annotations

import pytest

from ratelord.engine import leases
from ratelord.engine.core import EngineError
from ratelord.engine.events import IdFactory, event_from
from ratelord.engine.policy import default_policy
from ratelord.engine.state import State
from ratelord.providers.mock import (
    MockPoolConfig,
    MockPrincipalConfig,
    MockProvider,
    MockProviderConfig,
)
from ratelord.schema import LeaseReport, LeaseRequest
from ratelord.service import CommandService, EngineSettings, build_engine
from tests.unit.test_engine import World

SEARCH, CORE = "mock:search:acct-1", "mock:core:acct-1"
WORKLOADS = {"hydrate": {"search": 1.0, "core": 10.0}}


class Fleet(World):
    """One principal with two pools (search, core) and the workload ``hydrate`` over both."""

    def __init__(self, search: float = 100, core: float = 1000, window: float = 3600) -> None:
        super().__init__()
        pools = {
            "search": MockPoolConfig(limit=search, window_seconds=window),
            "core": MockPoolConfig(limit=core, window_seconds=window),
        }
        self.mock = MockProvider(
            MockProviderConfig(principals={"acct-1": MockPrincipalConfig(pools=pools)}),
            start=self.clock.now(),
        )
        self.engine = build_engine(
            EngineSettings(), default_policy(), ids=IdFactory("t"), workloads=WORKLOADS
        )
        self.commands = CommandService(self.engine, self._commit, self.clock.now)
        self.register("id-a", "acct-1")

    def of(self, pool_id: str):
        return self.engine.state.pools[pool_id]

    def take(self, units: float, **fields):
        request = LeaseRequest(
            agent_id=fields.pop("agent_id", "agent"),
            identity_id="id-a",
            workload_id=fields.pop("workload_id", "hydrate"),
            units=units,
            **fields,
        )
        lease, events = leases.decide_lease(self.engine, request, self.clock.now())
        self.log += events
        return lease


def test_a_workload_lease_reserves_each_pool_by_the_workloads_costs() -> None:
    w = Fleet()
    lease = w.take(5)
    assert (lease.status, lease.granted, lease.pool_id) == ("active", 5, None)
    assert lease.pools == {CORE: 10.0, SEARCH: 1.0}
    assert lease.workload_id == "hydrate"
    assert lease.holds == "workload hydrate (2 pools)"
    assert (w.of(SEARCH).remaining, w.of(SEARCH).leased) == (95, 5)
    assert (w.of(CORE).remaining, w.of(CORE).leased) == (950, 50)
    (decided,) = [e for e in w.log if e.event_type == "lease_decided"]
    assert decided.payload.pools == {CORE: 10.0, SEARCH: 1.0}


def test_the_tightest_pool_sizes_the_whole_lease() -> None:
    # search: 12 left for a lease of 50 hydrates; core could give 100 of them.
    w = Fleet(search=12)
    lease = w.take(50)
    assert lease.status == "active"
    assert 0 < lease.granted <= 12
    assert lease.granted == int(lease.granted)  # whole units: no part of a call stranded
    assert w.of(SEARCH).leased == lease.granted
    assert w.of(CORE).leased == lease.granted * 10
    assert SEARCH in (lease.reason or "")


def test_all_or_nothing_when_one_pool_cannot_cover_a_unit() -> None:
    w = Fleet(core=5)  # one hydrate costs 10 of core
    lease = w.take(3)
    assert (lease.status, lease.granted) == ("refused", 0)
    assert w.engine.state.leases == {}
    assert (w.of(SEARCH).leased, w.of(CORE).leased) == (0, 0)
    assert (w.of(SEARCH).remaining, w.of(CORE).remaining) == (100, 5)


def test_reports_spend_every_pool_and_release_returns_the_rest_of_each() -> None:
    w = Fleet()
    lease = w.take(10)
    now = w.clock.now()
    after, events = leases.report(w.engine, lease.lease_id, LeaseReport(spent=4, rate=2), now)
    w.log += events
    assert (after.spent, after.available) == (4, 6)
    assert (w.of(SEARCH).leased, w.of(CORE).leased) == (6, 60)
    ended, events = leases.release(w.engine, lease.lease_id, LeaseReport(spent=1), now)
    w.log += events
    assert ended.status == "released"
    assert (w.of(SEARCH).leased, w.of(CORE).leased) == (0, 0)
    assert (w.of(SEARCH).remaining, w.of(CORE).remaining) == (95, 950)


def test_expiry_returns_every_pools_units() -> None:
    w = Fleet()
    w.take(10, ttl_seconds=5)
    w.clock.advance(6)
    w.log += leases.maintain(w.engine, w.clock.now())
    assert w.engine.state.leases == {}
    assert (w.of(SEARCH).remaining, w.of(CORE).remaining) == (100, 1000)


def test_a_turned_pool_shrinks_the_whole_workload_lease() -> None:
    w = Fleet()
    lease = w.take(60, ttl_seconds=600)
    assert lease.granted == 60
    # Most of core goes behind ratelord's back: drift, the forecast turns.
    w.mock.spend("acct-1", "core", 350, w.clock.now())
    w.clock.advance(1)
    w.poll("id-a")
    events = leases.maintain(w.engine, w.clock.now())
    w.log += events
    assert {e.event_type for e in events} & {"lease_revised", "lease_ended"}
    left = w.engine.state.leases.get(lease.lease_id)
    granted = left.granted if left is not None else 0.0
    assert granted < 60
    # Both pools hold the same (smaller) number of hydrates.
    assert w.of(SEARCH).leased == pytest.approx(granted)
    assert w.of(CORE).leased == pytest.approx(granted * 10)


def test_workload_leases_replay_into_identical_state() -> None:
    w = Fleet()
    first = w.take(10, ttl_seconds=30)
    w.take(5, agent_id="other", ttl_seconds=120)
    _, events = leases.report(w.engine, first.lease_id, LeaseReport(spent=3), w.clock.now())
    w.log += events
    w.clock.advance(40)
    w.log += leases.maintain(w.engine, w.clock.now())
    replayed = State()
    replayed.apply_all(w.log)
    assert replayed.encode() == w.engine.state.encode()


def test_a_lease_logged_before_workload_leases_replays_as_one_pool() -> None:
    w = Fleet()
    pool = w.of(SEARCH)
    old = event_from(  # as the store reads it back
        {
            "event_id": "ev-old",
            "event_type": "lease_decided",
            "ts_event": w.clock.now(),
            "dimensions": {"agent_id": "a", "identity_id": "id-a"},
            "payload": {
                "lease_id": "lse-old",
                "status": "active",
                "pool_id": SEARCH,
                "requested": 8,
                "granted": 8,
                "urgency": "normal",
                "weight": 1.0,
                "expires_at": w.clock.now() + 30,
                "paced_until": w.clock.now() + 7,
            },
        }
    )
    w.engine.state.apply(old)
    lease = w.engine.state.leases["lse-old"]
    assert (lease.pools, lease.pool_id) == ({SEARCH: 1.0}, SEARCH)
    assert (pool.leased, pool.remaining, pool.paced_until) == (8, 92, w.clock.now() + 7)


def test_a_resource_lease_still_holds_one_pool() -> None:
    w = Fleet()
    request = LeaseRequest(agent_id="a", identity_id="id-a", resource="core", units=30)
    lease, _ = leases.decide_lease(w.engine, request, w.clock.now())
    assert (lease.pool_id, lease.pools, lease.holds) == (CORE, {CORE: 1.0}, CORE)
    assert (w.of(CORE).leased, w.of(SEARCH).leased) == (30, 0)


def test_a_workload_that_is_not_configured_is_refused_like_an_intent() -> None:
    w = Fleet()
    with pytest.raises(EngineError) as refused:
        w.take(1, workload_id="nope")
    assert refused.value.code == "unknown_workload"
    assert w.engine.state.leases == {}
