"""What only the PostgreSQL store does: leader election, fencing, the tail notification."""

from __future__ import annotations

import time

import psycopg
import pytest

from ratelord.store.postgres import CHANNEL, Fenced, Leadership, PostgresStore
from tests.unit.test_store_contract import make


@pytest.fixture
def stores(pg_url: str):
    opened: list[PostgresStore] = []

    def open_one() -> PostgresStore:
        store = PostgresStore(pg_url)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def test_a_deposed_leaders_late_append_is_refused(stores) -> None:  # type: ignore[no-untyped-def]
    old, new = stores(), stores()
    assert old.lead("http://old", 1.0) == 1
    old.append(make(2), ts_ingest=1.0)
    assert new.lead("http://new", 2.0) == 2
    assert new.high_water == 2  # the new leader starts from the true end of the log
    with pytest.raises(Fenced, match="another daemon leads"):
        old.append(make(1, start=2), ts_ingest=3.0)
    assert [e.seq for e in new.append(make(1, start=3), ts_ingest=4.0)] == [3]
    assert [e.payload.pid for b in new.read(0) for e in b] == [0, 1, 3]
    assert new.leader() == (2, "http://new")


def test_an_unelected_store_cannot_append(stores) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Fenced, match="not the leader"):
        stores().append(make(1), ts_ingest=1.0)


def test_two_writers_cannot_interleave_silently(stores, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    """Even under one epoch, an append names the seqs it expects: a stale view collides."""
    a = stores()
    a.lead("http://a", 1.0)
    b = stores()
    b.epoch, b.high_water = a.epoch, a.high_water  # a writer that shares a's epoch by mistake
    a.append(make(1), ts_ingest=1.0)
    with pytest.raises(Fenced, match="another writer appended at seq 1"):
        b.append(make(1, start=1), ts_ingest=2.0)


def test_the_leader_lock_passes_on_when_the_holders_session_ends(pg_url: str) -> None:
    first, second = Leadership(pg_url), Leadership(pg_url)
    try:
        assert first.try_acquire()
        assert first.alive()
        assert not second.try_acquire()
        with psycopg.connect(pg_url, autocommit=True) as admin:  # as when the daemon dies
            admin.execute("SELECT pg_terminate_backend(%s)", (first.backend_pid,))
        assert not first.alive()
        deadline = time.monotonic() + 5.0  # the server frees the lock as it ends the session
        while not second.try_acquire():
            assert time.monotonic() < deadline, "the lock outlived its session"
            time.sleep(0.05)
    finally:
        first.release()
        second.release()


def test_a_released_lock_is_free_at_once(pg_url: str) -> None:
    first, second = Leadership(pg_url), Leadership(pg_url)
    try:
        assert first.try_acquire()
        first.release()
        assert second.try_acquire()
    finally:
        first.release()
        second.release()


def test_each_append_notifies_followers(stores, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    leader = stores()
    leader.lead("http://a", 1.0)
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        leader.append(make(3), ts_ingest=1.0)
        notices = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in notices] == [CHANNEL]
