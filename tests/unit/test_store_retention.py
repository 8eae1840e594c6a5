"""Retention's store contract, on SQLite and a real PostgreSQL (issue 15, item 13).

Archived events leave the table only once a durable segment holds them; the
database refuses to delete anything above the archive boundary; a replay
through the archive (segments, then the table) sees exactly the log it saw
before; start-up without the segments begins at the boundary's saved state.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ratelord.engine.events import Dimensions, Event
from ratelord.engine.state import State
from ratelord.history.rollup import Rollups
from ratelord.store.archived import Archive, ArchivedLog, ArchivedStore
from ratelord.store.port import EventStore
from ratelord.store.replay import load, replay_into
from ratelord.store.retention import Boundary
from ratelord.store.segments import SegmentError, read_manifest, write_segment
from tests.unit import test_store_contract as contract
from tests.unit.test_store_contract import Adapter

#: The contract's fixtures: each test runs on SQLite and on a real PostgreSQL.
adapter = contract.adapter
store = contract.store


def observed(i: int) -> Event:
    """An observation of one of two pools: it changes projections (unlike ``make``'s events)."""
    return Event(
        event_id=f"u{i}",
        event_type="usage_observed",
        ts_event=1000.0 + i,
        dimensions=Dimensions(identity_id="pat:a"),
        provider_id="mock",
        pool_id=f"mock:p{i % 2}",
        payload={
            "resource": f"p{i % 2}",
            "principal": "acct",
            "remaining": 5000 - i,
            "limit": 5000,
            "used": i,
            "reset_at": 9999.0,
        },
    )


def fill(log: EventStore, n: int) -> None:
    for i in range(n):
        log.append([observed(i)], ts_ingest=100.0 + i)


def archive_upto(log: EventStore, directory: Path, archive: Archive, upto: int) -> int:
    """What the daemon's archiver does, step by step: segment, record, delete."""
    tables = log.archive_tables()
    rows = [tuple(r) for page in tables.rows(archive.upto, upto) for r in page]
    manifest = write_segment(directory, rows)
    state = State()
    replay_into(state, ArchivedLog(log, archive), 0, upto)
    boundary = Boundary(
        upto_seq=upto, upto_ts=rows[-1][4], state=state.encode(), rollups=Rollups().dump()
    )
    tables.record(manifest, boundary)
    archive.added(manifest, boundary)
    return tables.delete_archived(upto, 3) + tables.delete_archived(upto, 1000)


def full_replay(source: ArchivedLog, upto: int) -> bytes:
    state = State()
    replay_into(state, source, 0, upto)
    return state.encode()


def test_a_fresh_log_has_no_archive_and_finds_the_cutoff_by_ingest_time(store: EventStore) -> None:
    fill(store, 20)
    tables = store.archive_tables()
    assert tables.segments() == [] and tables.boundary() is None
    assert tables.last_logged_before(110.0, 0, 20) == 10  # seqs 1..10 logged at 100..109
    assert tables.last_logged_before(100.0, 0, 20) == 0
    assert tables.last_logged_before(1e9, 0, 20) == 20
    assert tables.last_logged_before(1e9, 5, 12) == 12


def test_archived_events_leave_the_table_and_replay_sees_the_same_log(
    adapter: Adapter,
    store: EventStore,
    tmp_path: Path,
) -> None:
    fill(store, 30)
    before = full_replay(ArchivedLog(store, Archive(None)), 30)
    archive = Archive(tmp_path / "archive")
    assert archive_upto(store, archive.directory, archive, 12) == 12  # type: ignore[arg-type]
    assert archive_upto(store, archive.directory, archive, 25) == 13  # type: ignore[arg-type]
    assert adapter.raw("SELECT min(seq), count(*) FROM events") == [(26, 5)]
    # The database itself still refuses to delete what no segment holds.
    with pytest.raises(adapter.error, match="append-only"):
        adapter.raw("DELETE FROM events WHERE seq = 26")
    with pytest.raises(adapter.error, match="append-only"):
        adapter.raw("UPDATE events SET event_type = 'x' WHERE seq = 30")
    log = ArchivedLog(store, archive)
    assert full_replay(log, 30) == before
    read = [e.seq for batch in log.read(5, batch=4) for e in batch]
    assert read == list(range(6, 31))
    # Reopened, the store still knows the end of the log and what is archived.
    store.close()
    again = adapter.open()
    assert again.high_water == 30
    assert [s.last_seq for s in again.archive_tables().segments()] == [12, 25]
    saved = again.archive_tables().boundary()
    assert saved is not None and saved.upto_seq == 25
    assert again.append([observed(30)], ts_ingest=200.0)[0].seq == 31


def test_start_up_uses_the_boundary_state_when_the_segments_are_gone(
    store: EventStore,
    tmp_path: Path,
) -> None:
    fill(store, 20)
    expected = full_replay(ArchivedLog(store, Archive(None)), 20)
    directory = tmp_path / "archive"
    archive = Archive(directory)
    archive_upto(store, directory, archive, 15)
    loaded = load(ArchivedStore(store, archive))  # type: ignore[arg-type]
    assert (loaded.snapshot_seq, loaded.state.encode()) == (15, expected)
    for segment in directory.glob("*.gz"):
        segment.unlink()
    with pytest.raises(SegmentError, match="missing: restore the archive directory"):
        full_replay(ArchivedLog(store, archive), 20)
    assert load(ArchivedStore(store, archive)).state.encode() == expected  # type: ignore[arg-type]


def test_a_segment_is_plain_gzip_ndjson_with_a_manifest_and_refuses_tampering(
    store: EventStore,
    tmp_path: Path,
) -> None:
    fill(store, 10)
    rows = [tuple(r) for page in store.archive_tables().rows(0, 10) for r in page]
    manifest = write_segment(tmp_path, rows)
    segment = tmp_path / manifest.file
    lines = gzip.decompress(segment.read_bytes()).decode().splitlines()
    assert [json.loads(line)[0] for line in lines] == list(range(1, 11))
    assert read_manifest(tmp_path / manifest.file.replace(".ndjson.gz", ".json")) == manifest
    assert (manifest.first_seq, manifest.last_seq, manifest.events) == (1, 10, 10)
    assert (manifest.first_ts, manifest.last_ts) == (100.0, 109.0)
    assert segment.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob("*.part"))
    segment.write_bytes(gzip.compress(b"[1]\n"))
    archive = Archive(tmp_path, [manifest])
    with pytest.raises(SegmentError, match="does not match its manifest"):
        list(archive.read_segments(0, 10, None))
