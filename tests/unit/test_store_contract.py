"""The event store port's contract, run against both adapters: SQLite and a real PostgreSQL.

Whatever holds the log, the daemon relies on the same things: ordered seqs,
group commits that keep order, an append durable before its caller resumes,
a database that itself refuses to rewrite history, trustworthy snapshots,
replay that rebuilds the same state, and the filters of ``GET /v1/events``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ratelord.engine.events import Dimensions, Event, SystemStarted, SystemStartedPayload
from ratelord.engine.state import State
from ratelord.store import GroupCommitWriter
from ratelord.store.port import EventStore, open_store
from ratelord.store.replay import load, replay_into

Raw = Callable[[str], Any]


def make(n: int, start: int = 0) -> list[Event]:
    return [
        SystemStarted(
            event_id=f"e{start + i}",
            ts_event=float(i),
            dimensions=Dimensions(agent_id=f"a{i % 3}", identity_id=f"id{i % 2}"),
            pool_id="p1" if i % 2 else None,
            payload=SystemStartedPayload(pid=start + i),
        )
        for i in range(n)
    ]


class Adapter:
    """How a test opens the store under test and talks to its database behind its back."""

    def __init__(self, url: str, raw: Raw, error: type[Exception]) -> None:
        self.url = url
        self.raw = raw
        self.error = error
        self.opened: list[EventStore] = []

    def open(self) -> EventStore:
        store = open_store(self.url)
        lead = getattr(store, "lead", None)
        if lead is not None:  # PostgreSQL: only an elected store appends
            lead("test", 0.0)
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", "postgresql"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Adapter]:
    if request.param == "sqlite":
        import sqlite3

        path = tmp_path / "log.db"

        def raw_sqlite(statement: str) -> Any:
            conn = sqlite3.connect(path)
            try:
                with conn:
                    return conn.execute(statement).fetchall()
            finally:
                conn.close()

        made = Adapter(f"sqlite://{path}", raw_sqlite, sqlite3.DatabaseError)
    else:
        import psycopg

        url = request.getfixturevalue("pg_url")

        def raw_pg(statement: str) -> Any:
            with psycopg.connect(url, autocommit=True) as conn:
                cursor = conn.execute(statement)
                return cursor.fetchall() if cursor.description else None

        made = Adapter(url, raw_pg, psycopg.Error)
    yield made
    for store in made.opened:
        store.close()


@pytest.fixture
def store(adapter: Adapter) -> EventStore:
    return adapter.open()


def test_append_assigns_increasing_seq_and_ingest_time(store: EventStore) -> None:
    first = store.append(make(3), ts_ingest=10.0)
    second = store.append(make(2, start=3), ts_ingest=11.0)
    assert [e.seq for e in first + second] == [1, 2, 3, 4, 5]
    assert {e.ts_ingest for e in second} == {11.0}
    assert store.high_water == 5


def test_read_returns_events_as_appended(store: EventStore) -> None:
    appended = store.append(make(7), ts_ingest=1.0)
    read = [e for batch in store.read(0, batch=3) for e in batch]
    assert read == appended
    assert [e.seq for batch in store.read(5) for e in batch] == [6, 7]


def test_reopening_continues_the_sequence(adapter: Adapter) -> None:
    first = adapter.open()
    first.append(make(2), ts_ingest=1.0)
    first.close()
    again = adapter.open()
    assert again.append(make(1, start=2), ts_ingest=2.0)[0].seq == 3
    assert again.schema_version == 2


def test_the_database_itself_refuses_update_and_delete(adapter: Adapter, store: EventStore) -> None:
    store.append(make(2), ts_ingest=1.0)
    with pytest.raises(adapter.error, match="append-only"):
        adapter.raw("UPDATE events SET event_type = 'x'")
    with pytest.raises(adapter.error, match="append-only"):
        adapter.raw("DELETE FROM events")
    assert adapter.raw("SELECT count(*) FROM events") == [(2,)]


async def test_group_commit_shares_commits_and_keeps_order(store: EventStore) -> None:
    writer = GroupCommitWriter(store, inline=type(store).__name__ == "SQLiteStore")
    writer.start()
    results = await asyncio.gather(*(writer.append(make(2, start=2 * i)) for i in range(50)))
    assert [e.seq for batch in results for e in batch] == list(range(1, 101))
    assert writer.commits < 50  # callers who arrived together shared a commit
    await writer.close()
    read = [e for chunk in store.read(0) for e in chunk]
    assert [e.payload.pid for e in read] == list(range(100))


async def test_an_append_is_durable_before_its_caller_resumes(
    adapter: Adapter, store: EventStore
) -> None:
    writer = GroupCommitWriter(store, inline=type(store).__name__ == "SQLiteStore")
    writer.start()
    stored = await writer.append(make(3))
    # Another connection, outside the writer's session, already sees the whole batch.
    assert adapter.raw("SELECT seq FROM events ORDER BY seq") == [(e.seq,) for e in stored]
    await writer.close()


def test_snapshots_newest_first_keep_three_and_reject_corruption(
    adapter: Adapter, store: EventStore
) -> None:
    store.append(make(6), ts_ingest=1.0)
    for seq in (1, 2, 3, 4):
        store.write_snapshot(seq, float(seq), f"state-{seq}".encode())
    found = list(store.snapshots())
    assert [s.seq for s in found if not isinstance(s, str)] == [4, 3, 2]
    adapter.raw("UPDATE snapshots SET checksum = 'bad' WHERE seq = 4")
    first = next(store.snapshots())
    assert isinstance(first, str) and "corrupt" in first
    assert store.drop_snapshots() == 3
    assert list(store.snapshots()) == []


def test_replay_from_snapshot_plus_tail_equals_full_replay(store: EventStore) -> None:
    store.append(make(5), ts_ingest=1.0)
    upto_three = State()
    replay_into(upto_three, store, 0, 3)
    store.write_snapshot(3, 1.0, upto_three.encode())
    store.append(make(3, start=5), ts_ingest=2.0)
    loaded = load(store)
    assert (loaded.snapshot_seq, loaded.replayed) == (3, 5)
    full = State()
    assert replay_into(full, store, 0, store.high_water) == 8
    assert loaded.state.encode() == full.encode()


def test_event_queries_filter_page_and_tail(store: EventStore) -> None:
    store.append(make(9), ts_ingest=1.0)
    reader = store.reader()
    try:
        by_agent = reader.query(after_seq=0, limit=100, filters={"agent_id": "a1"})
        assert [e.payload.pid for e in by_agent] == [1, 4, 7]
        both = reader.query(filters={"agent_id": "a1", "identity_id": "id0"})
        assert [e.payload.pid for e in both] == [4]
        assert [e.seq for e in reader.query(filters={"pool_id": "p1"}, limit=2)] == [2, 4]
        assert [e.seq for e in reader.query(after_seq=3, before_seq=5)] == [4, 5]
        assert [e.seq for e in reader.latest(limit=2)] == [8, 9]
        assert [e.seq for e in reader.latest(limit=2, filters={"agent_id": "a0"})] == [4, 7]
        assert by_agent[0].pool_id == "p1" and reader.query(limit=1)[0].pool_id is None
        with pytest.raises(ValueError, match="cannot filter"):
            reader.query(filters={"payload": "x"})
    finally:
        reader.close()
