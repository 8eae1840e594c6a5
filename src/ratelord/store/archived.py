"""The whole log, archived part included: segments up to the boundary, then the table.

Replay (start-up, ``ratelord rebuild``, the history index, time travel) reads
through :class:`ArchivedLog`, so archiving changes where old events live, never
what a replay sees.  Start-up (:class:`ArchivedStore`) also offers the archive
boundary's state as one more snapshot: a log whose segments are out of reach
still starts, from there.

A reader of the table *pins* it (:meth:`Archive.pinned`) while it reads:
archived rows are deleted only when no reader that started before the boundary
moved is still reading them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from ratelord.engine.events import Event
from ratelord.store.port import EventReads
from ratelord.store.replay import Replayable
from ratelord.store.retention import Boundary
from ratelord.store.segments import SegmentError, SegmentManifest, check_segment, read_segment
from ratelord.store.sql import Snapshot, event


class Archive:
    """What has been archived: the directory, its segments, the boundary (updated in place)."""

    def __init__(
        self,
        directory: Path | None,
        segments: list[SegmentManifest] | None = None,
        boundary: Boundary | None = None,
    ) -> None:
        self.directory = directory
        self.segments = list(segments or [])
        self.boundary = boundary
        self._readers = 0
        self._idle = threading.Condition()

    @property
    def upto(self) -> int:
        """The last archived seq (0: nothing archived)."""
        return self.segments[-1].last_seq if self.segments else 0

    def added(self, manifest: SegmentManifest, boundary: Boundary) -> None:
        self.segments.append(manifest)
        self.boundary = boundary

    @contextmanager
    def pinned(self) -> Iterator[None]:
        with self._idle:
            self._readers += 1
        try:
            yield
        finally:
            with self._idle:
                self._readers -= 1
                self._idle.notify_all()

    def wait_unpinned(self, timeout: float) -> bool:
        """Until no reader is reading the table (False: still one after ``timeout`` s)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._readers == 0, timeout)

    def check(self) -> None:
        """Every segment is there and intact (:class:`SegmentError` names the first that is not)."""
        for manifest in self.segments:
            if self.directory is None:
                raise SegmentError("events are archived but no archive directory is configured")
            check_segment(self.directory, manifest)

    def read_segments(
        self, after_seq: int, upto_seq: int, types: frozenset[str] | None, batch: int = 5000
    ) -> Iterator[list[Event]]:
        """Archived events ``after_seq < seq <= upto_seq`` (of ``types``; None: all)."""
        if self.directory is None:
            raise SegmentError("events are archived but no archive directory is configured")
        pending: list[Event] = []
        for manifest in self.segments:
            if manifest.last_seq <= after_seq or manifest.first_seq > upto_seq:
                continue
            for row in read_segment(self.directory, manifest):
                seq = row[0]
                if (
                    seq <= after_seq
                    or seq > upto_seq
                    or (types is not None and row[2] not in types)
                ):
                    continue
                pending.append(event(row))
                if len(pending) >= batch:
                    yield pending
                    pending = []
        if pending:
            yield pending


class ArchivedLog:
    """An event source (a store or a reader) seen through the archive."""

    def __init__(self, table: EventReads, archive: Archive) -> None:
        self.table = table
        self.archive = archive

    def read(self, after_seq: int = 0, batch: int = 5000) -> Iterator[list[Event]]:
        """Every event after ``after_seq``, all fields, in order."""
        boundary = self.archive.upto
        if after_seq < boundary:
            yield from self.archive.read_segments(after_seq, boundary, None, batch)
        with self.archive.pinned():
            yield from self.table.read(max(after_seq, boundary), batch)

    def read_for_replay(
        self, after_seq: int, upto_seq: int, types: frozenset[str], batch: int = 5000
    ) -> Iterator[list[Event]]:
        boundary = self.archive.upto
        if after_seq < boundary:
            yield from self.archive.read_segments(after_seq, min(upto_seq, boundary), types, batch)
        start = max(after_seq, boundary)
        if upto_seq > start:
            with self.archive.pinned():
                yield from self.table.read_for_replay(start, upto_seq, types, batch)


class _Store(EventReads, Replayable, Protocol):
    pass


class ArchivedStore(ArchivedLog):
    """The store at start-up: its snapshots and the archive boundary's, newest first."""

    def __init__(self, store: _Store, archive: Archive) -> None:
        super().__init__(store, archive)
        self.store = store

    @property
    def high_water(self) -> int:
        return self.store.high_water

    def snapshots(self) -> Iterator[Snapshot | str]:
        boundary = self.archive.boundary
        if boundary is None:
            yield from self.store.snapshots()
            return
        offered = False
        for snapshot in self.store.snapshots():
            if not offered and not isinstance(snapshot, str) and snapshot.seq < boundary.upto_seq:
                offered = True
                yield _as_snapshot(boundary)
            yield snapshot
        if not offered:
            yield _as_snapshot(boundary)


def _as_snapshot(boundary: Boundary) -> Snapshot:
    return Snapshot(seq=boundary.upto_seq, created_at=boundary.upto_ts, state=boundary.state)
