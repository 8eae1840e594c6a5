"""What the SQLite adapter adds to the store contract (tests/unit/test_store_contract.py runs
the contract itself against every adapter): its file, its WAL, its lock and its snapshots."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from ratelord.engine.events import Dimensions, Event, SystemStarted, SystemStartedPayload
from ratelord.store import SQLiteStore, StoreError
from ratelord.store.replay import load
from ratelord.store.sqlite import WAL_SIZE_LIMIT


def make(n: int, start: int = 0) -> list[Event]:
    return [
        SystemStarted(
            event_id=f"e{start + i}",
            ts_event=float(i),
            dimensions=Dimensions(agent_id=f"a{i % 3}"),
            payload=SystemStartedPayload(pid=start + i),
        )
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "log.db")
    yield s
    s.close()


def test_database_refuses_update_and_delete(store: SQLiteStore) -> None:
    store.append(make(1), ts_ingest=1.0)
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE events SET event_type = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM events")
    conn.close()


def test_database_file_is_private_and_in_wal_mode(store: SQLiteStore) -> None:
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_the_writer_never_checkpoints_inside_a_commit_and_bounds_the_wal(
    store: SQLiteStore,
) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] == WAL_SIZE_LIMIT


def test_second_store_on_same_file_is_refused(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="another ratelord-d"):
        SQLiteStore(store.path)


def test_reopen_continues_the_sequence(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "log.db")
    s.append(make(2), ts_ingest=1.0)
    s.close()
    s = SQLiteStore(tmp_path / "log.db")
    assert s.append(make(1, start=2), ts_ingest=2.0)[0].seq == 3
    assert s.schema_version == 2  # 1: the log; 2: retention
    s.close()


def test_reader_filters_by_dimension(store: SQLiteStore) -> None:
    store.append(make(9), ts_ingest=1.0)
    reader = store.reader()
    got = reader.query(after_seq=0, limit=100, filters={"agent_id": "a1"})
    assert [e.payload.pid for e in got] == [1, 4, 7]
    assert [e.seq for e in reader.latest(limit=2)] == [8, 9]
    with pytest.raises(ValueError, match="cannot filter"):
        reader.query(filters={"payload": "x"})
    reader.close()


def test_corrupt_snapshot_is_ignored_with_a_warning(store: SQLiteStore) -> None:
    store.append(make(4), ts_ingest=1.0)
    store.write_snapshot(2, 1.0, b'{"not": "a state"')
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE snapshots SET state = X'00'")
    conn.commit()
    conn.close()
    loaded = load(store)
    assert loaded.snapshot_seq == 0
    assert loaded.replayed == 4
    assert any("corrupt" in w for w in loaded.warnings)


def test_snapshot_plus_tail_equals_full_replay(store: SQLiteStore) -> None:
    store.append(make(5), ts_ingest=1.0)
    store.write_snapshot(3, 1.0, _replayed_upto(store, 3))
    store.append(make(3, start=5), ts_ingest=2.0)
    from_snapshot = load(store)
    assert from_snapshot.snapshot_seq == 3
    assert from_snapshot.replayed == 5
    full = load_without_snapshots(store)
    assert from_snapshot.state.encode() == full.encode()


def _replayed_upto(store: SQLiteStore, seq: int) -> bytes:
    from ratelord.engine.state import State
    from ratelord.store.replay import replay_into

    state = State()
    replay_into(state, store, 0, seq)
    return state.encode()


def load_without_snapshots(store: SQLiteStore):
    from ratelord.engine.state import State
    from ratelord.store.replay import replay_into

    state = State()
    replay_into(state, store, 0, store.high_water)
    return state
