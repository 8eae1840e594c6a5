"""Retention: move events older than ``retention.archive_after`` into compressed segments.

One run (``ratelord archive``, ``POST /v1/admin/archive``, or every
``retention.every`` in the background) takes the events logged before the
cut-off that are still in the table, in segments of ``segment_events``:

1. a worker thread reads the rows on a connection of its own, writes the
   segment file and its manifest durably (:func:`~ratelord.store.segments.write_segment`),
   and folds the events into the projections and history rollups as they stand
   at the segment's end;
2. the writer records the segment and that state in one transaction: the
   archive boundary moves, and replays read those events from the segment;
3. only then are the rows deleted from the table, in small transactions
   between appends, once no replay still reads them.

A crash anywhere leaves either the rows in the table (before 2: the segment
file is written again next time) or rows that are archived already and are
deleted by the next run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ratelord.engine.clock import iso
from ratelord.engine.events import Event
from ratelord.engine.state import State
from ratelord.history.archive import INDEXED_TYPES
from ratelord.history.rollup import Rollups
from ratelord.service import Unavailable
from ratelord.store.retention import Boundary
from ratelord.store.segments import SegmentManifest, write_segment
from ratelord.store.sql import event as row_event

if TYPE_CHECKING:
    from ratelord.daemon.config import Settings
    from ratelord.daemon.runtime import Runtime

log = logging.getLogger("ratelord.retention")

#: Rows deleted per transaction: short enough not to hold appends up.
DELETE_CHUNK = 2000
#: How long deleting waits for replays still reading the archived rows.
PIN_WAIT = 30.0
_RELEVANT = State.relevant_types()


class RetentionUnavailable(Exception):
    """Archiving cannot run as configured; the message says what to set."""


class ArchiveReport(msgspec.Struct, kw_only=True):
    """What one archive run did."""

    #: events logged before this instant were due
    cutoff: str
    archived_events: int
    #: the last archived seq after the run (0: nothing archived yet)
    archived_upto_seq: int
    deleted_events: int
    segments: list[SegmentManifest]
    #: the segments' size, and the same rows as NDJSON before compression
    bytes: int
    raw_bytes: int
    seconds: float
    events_per_second: float
    directory: str


def archive_directory(settings: Settings) -> Path | None:
    """``retention.dir``, else ``DB.archive`` beside a SQLite log (None for PostgreSQL)."""
    retention = settings.retention
    if retention is not None and retention.dir is not None:
        return Path(retention.dir).expanduser()
    url = settings.store.url
    if url is not None and url.startswith(("postgresql://", "postgres://")):
        return None
    from ratelord.store.port import sqlite_path

    db = sqlite_path(url) if url else Path(settings.db)
    return db.with_name(db.name + ".archive")


def read_archive(runtime: Runtime) -> None:
    """Learn what the store records as archived (at start-up, before replay)."""
    tables = runtime.store.archive_tables(own_connection=True)
    try:
        runtime.archive.segments = tables.segments()
        runtime.archive.boundary = tables.boundary()
    finally:
        tables.close()


class Archiver:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = asyncio.Lock()

    def _settings(self, older_than: float | None) -> tuple[float, int]:
        retention = self.runtime.settings.retention
        if older_than is None:
            if retention is None:
                raise RetentionUnavailable(
                    "retention is not configured: add retention: {archive_after: 7d} to the "
                    "config file, or pass older_than"
                )
            older_than = retention.archive_after_seconds
        if self.runtime.archive.directory is None:
            raise RetentionUnavailable(
                "a PostgreSQL log has no default archive directory: set retention.dir "
                "(shared by the cluster's daemons) in the config file"
            )
        return older_than, retention.segment_events if retention else 50_000

    async def run(self, older_than: float | None = None) -> ArchiveReport:
        """Archive every event logged more than ``older_than`` seconds ago."""
        older_than, per_segment = self._settings(older_than)
        runtime = self.runtime
        runtime.require_ready()
        async with self._lock:
            started = time.perf_counter()
            cutoff = runtime.now() - older_than
            archive = runtime.archive
            written: list[SegmentManifest] = []
            while True:
                made = await asyncio.to_thread(self._next_segment, cutoff, per_segment)
                if made is None:
                    break
                manifest, boundary = made
                tables = runtime.store.archive_tables()
                await runtime.writer.run(tables.record, manifest, boundary)
                archive.added(manifest, boundary)
                written.append(manifest)
                log.info(
                    "archived events %d-%d into %s (%d bytes)",
                    manifest.first_seq,
                    manifest.last_seq,
                    manifest.file,
                    manifest.bytes,
                )
            deleted = await self._delete_archived()
            seconds = time.perf_counter() - started
            count = sum(m.events for m in written)
            return ArchiveReport(
                cutoff=iso(cutoff) or "",
                archived_events=count,
                archived_upto_seq=archive.upto,
                deleted_events=deleted,
                segments=written,
                bytes=sum(m.bytes for m in written),
                raw_bytes=sum(m.raw_bytes for m in written),
                seconds=round(seconds, 3),
                events_per_second=round(count / seconds, 1) if seconds > 0 else 0.0,
                directory=str(archive.directory),
            )

    def _next_segment(
        self, cutoff: float, per_segment: int
    ) -> tuple[SegmentManifest, Boundary] | None:
        """In a worker thread: the next segment's file, and the state at its end."""
        archive, store = self.runtime.archive, self.runtime.store
        assert archive.directory is not None
        tables = store.archive_tables(own_connection=True)
        try:
            after = archive.upto
            due = tables.last_logged_before(
                cutoff, after, min(store.high_water, after + per_segment)
            )
            if due <= after:
                return None
            rows = [tuple(row) for page in tables.rows(after, due) for row in page]
        finally:
            tables.close()
        if not rows or rows[0][0] != after + 1 or rows[-1][0] != due:
            raise RuntimeError(f"events {after + 1}-{due} are not all in the table; not archived")
        manifest = write_segment(archive.directory, rows)
        return manifest, _advance(archive.boundary, [row_event(row) for row in rows])

    async def _delete_archived(self) -> int:
        """Delete the archived rows still in the table, a chunk per transaction."""
        runtime = self.runtime
        archive = runtime.archive
        upto = archive.upto
        if upto == 0:
            return 0
        if not await asyncio.to_thread(archive.wait_unpinned, PIN_WAIT):
            log.warning("archived rows kept in the table for now: a replay is still reading them")
            return 0
        tables = runtime.store.archive_tables()
        deleted = 0
        while True:
            count = await runtime.writer.run(tables.delete_archived, upto, DELETE_CHUNK)
            deleted += count
            if count < DELETE_CHUNK:
                break
        return deleted

    async def loop(self, every: float) -> None:
        """Archive every ``every`` seconds (the first run soon after start-up)."""
        await asyncio.sleep(min(every, 60.0))
        while True:
            try:
                report = await self.run()
                if report.archived_events:
                    log.info(
                        "archived %d events (%d bytes) up to seq %d in %.1fs",
                        report.archived_events,
                        report.bytes,
                        report.archived_upto_seq,
                        report.seconds,
                    )
            except Unavailable as exc:  # a follower, stopping, a store fault: next time
                log.debug("archiving skipped: %s", exc)
            except Exception:
                log.exception("archiving failed; retrying at the next run")
            await asyncio.sleep(every)


def _advance(boundary: Boundary | None, events: list[Event]) -> Boundary:
    """The projections and rollups after ``events``, from the boundary before them."""
    if boundary is None:
        state, rollups = State(), Rollups()
    else:
        state, rollups = State.decode(boundary.state), Rollups.load(boundary.rollups)
    apply, fold = state.apply, rollups.fold
    for event in events:
        if event.event_type in INDEXED_TYPES:
            fold(event)
            if event.event_type in _RELEVANT:
                apply(event)
    return Boundary(
        upto_seq=events[-1].seq,
        upto_ts=events[-1].ts_event,
        state=state.encode(),
        rollups=rollups.dump(),
    )
