"""The store's side of retention: which events are archived, and removing them from the table.

Two tables, the same in SQLite and PostgreSQL:

* ``archive_segments``: one row per segment file (:mod:`ratelord.store.segments`),
  written in the same transaction as the state at its end;
* ``archive_state``: one row, the archive boundary: the last archived seq, the
  projections (:class:`~ratelord.engine.state.State`) and the history rollups
  as they stand after it.  It is a snapshot that never goes away: start-up may
  begin there when the segments are out of reach, and the history views keep
  the long view of what the table no longer holds.

``events`` stays append-only: the database refuses to delete any event above
the boundary, so only rows already held by a durable, recorded segment can go
(the migrations below replace the delete triggers).  :class:`ArchiveTables`
works on a ``sqlite3`` or a ``psycopg`` connection alike: both take the same
SQL here, with ``?`` marks turned into ``%s`` for psycopg.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import msgspec

from ratelord.store.segments import SegmentManifest

SQLITE_MIGRATION = """
    CREATE TABLE archive_segments (
        last_seq   INTEGER PRIMARY KEY,
        first_seq  INTEGER NOT NULL,
        first_ts   REAL    NOT NULL,
        last_ts    REAL    NOT NULL,
        events     INTEGER NOT NULL,
        bytes      INTEGER NOT NULL,
        raw_bytes  INTEGER NOT NULL,
        sha256     TEXT    NOT NULL,
        file       TEXT    NOT NULL
    );
    CREATE TABLE archive_state (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        upto_seq INTEGER NOT NULL,
        upto_ts  REAL    NOT NULL,
        state    BLOB    NOT NULL,
        rollups  BLOB    NOT NULL
    );
    DROP TRIGGER events_no_delete;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    WHEN OLD.seq > (SELECT COALESCE(MAX(last_seq), 0) FROM archive_segments)
    BEGIN SELECT RAISE(ABORT, 'events is append-only: DELETE refused (only archived events go)');
    END;
"""

POSTGRES_MIGRATION = """
    CREATE TABLE archive_segments (
        last_seq   BIGINT PRIMARY KEY,
        first_seq  BIGINT NOT NULL,
        first_ts   DOUBLE PRECISION NOT NULL,
        last_ts    DOUBLE PRECISION NOT NULL,
        events     BIGINT NOT NULL,
        bytes      BIGINT NOT NULL,
        raw_bytes  BIGINT NOT NULL,
        sha256     TEXT   NOT NULL,
        file       TEXT   NOT NULL
    );
    CREATE TABLE archive_state (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        upto_seq BIGINT NOT NULL,
        upto_ts  DOUBLE PRECISION NOT NULL,
        state    BYTEA  NOT NULL,
        rollups  BYTEA  NOT NULL
    );
    CREATE OR REPLACE FUNCTION ratelord_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            IF OLD.seq <= (SELECT COALESCE(MAX(last_seq), 0) FROM archive_segments) THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'events is append-only: DELETE refused (only archived events go)';
        END IF;
        RAISE EXCEPTION 'events is append-only: % refused', TG_OP;
    END $$;
"""

_SEGMENT_COLUMNS = "file, first_seq, last_seq, first_ts, last_ts, events, bytes, sha256, raw_bytes"


class Boundary(msgspec.Struct, frozen=True, kw_only=True):
    """The archive boundary: everything up to ``upto_seq`` lives in segments."""

    upto_seq: int
    #: ``ts_event`` of the last archived event
    upto_ts: float
    #: ``State.encode()`` after event ``upto_seq``
    state: bytes
    #: the history rollups after it (:meth:`ratelord.history.rollup.Rollups.dump`)
    rollups: bytes


class ArchiveTables:
    """The archive tables on one connection (the writer's, or a reader's in a worker thread).

    ``transaction`` groups statements atomically (``conn`` for sqlite3,
    ``conn.transaction`` for psycopg); ``columns`` is the ``events`` column list.
    """

    def __init__(
        self,
        conn: Any,
        *,
        transaction: Callable[[], AbstractContextManager[Any]],
        postgres: bool,
        columns: str,
    ) -> None:
        self._conn = conn
        self._transaction = transaction
        self._postgres = postgres
        self._columns = columns

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._postgres else statement

    def _all(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return list(self._conn.execute(self._sql(statement), args).fetchall())

    # ------------------------------------------------------------------ reads

    def segments(self) -> list[SegmentManifest]:
        """Every recorded segment, oldest first."""
        rows = self._all(f"SELECT {_SEGMENT_COLUMNS} FROM archive_segments ORDER BY last_seq")
        return [
            SegmentManifest(
                file=r[0],
                first_seq=int(r[1]),
                last_seq=int(r[2]),
                first_ts=float(r[3]),
                last_ts=float(r[4]),
                events=int(r[5]),
                bytes=int(r[6]),
                sha256=r[7],
                raw_bytes=int(r[8]),
            )
            for r in rows
        ]

    def boundary(self) -> Boundary | None:
        rows = self._all("SELECT upto_seq, upto_ts, state, rollups FROM archive_state")
        if not rows:
            return None
        seq, ts, state, rollups = rows[0]
        return Boundary(
            upto_seq=int(seq), upto_ts=float(ts), state=bytes(state), rollups=bytes(rollups)
        )

    def last_logged_before(self, ts: float, after_seq: int, upto_seq: int) -> int:
        """The last seq in ``(after_seq, upto_seq]`` logged (``ts_ingest``) before ``ts``.

        Seqs above the boundary are contiguous and logged in ``ts_ingest`` order, so
        this is a binary search of primary-key lookups: no scan, whatever the size.
        """
        probe = self._sql("SELECT ts_ingest FROM events WHERE seq = ?")
        lo, hi = after_seq, upto_seq  # lo: before ts (or the start); above hi: not
        while lo < hi:
            mid = (lo + hi + 1) // 2
            row = self._conn.execute(probe, (mid,)).fetchone()
            if row is not None and row[0] < ts:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def rows(self, after_seq: int, upto_seq: int, batch: int = 5000) -> Iterator[list[Any]]:
        """The ``events`` rows ``after_seq < seq <= upto_seq`` as stored, in pages."""
        statement = self._sql(
            f"SELECT {self._columns} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
        )
        while after_seq < upto_seq:
            page = self._conn.execute(statement, (after_seq, upto_seq, batch)).fetchall()
            if not page:
                return
            after_seq = int(page[-1][0])
            yield page

    # ------------------------------------------------------------------ writes

    def record(self, manifest: SegmentManifest, boundary: Boundary) -> None:
        """Record a durable segment and the state after it, in one transaction.

        From this commit on, the events it holds may be deleted from the table.
        """
        with self._transaction():
            self._conn.execute(
                self._sql(
                    f"INSERT INTO archive_segments ({_SEGMENT_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    manifest.file,
                    manifest.first_seq,
                    manifest.last_seq,
                    manifest.first_ts,
                    manifest.last_ts,
                    manifest.events,
                    manifest.bytes,
                    manifest.sha256,
                    manifest.raw_bytes,
                ),
            )
            self._conn.execute(self._sql("DELETE FROM archive_state"))
            self._conn.execute(
                self._sql(
                    "INSERT INTO archive_state (id, upto_seq, upto_ts, state, rollups) "
                    "VALUES (1, ?, ?, ?, ?)"
                ),
                (boundary.upto_seq, boundary.upto_ts, boundary.state, boundary.rollups),
            )

    def delete_archived(self, upto_seq: int, limit: int) -> int:
        """Delete up to ``limit`` of the oldest events at or below ``upto_seq`` (all archived)."""
        with self._transaction():
            cursor = self._conn.execute(
                self._sql(
                    "DELETE FROM events WHERE seq IN "
                    "(SELECT seq FROM events WHERE seq <= ? ORDER BY seq LIMIT ?)"
                ),
                (upto_seq, limit),
            )
            return int(cursor.rowcount)

    def close(self) -> None:
        self._conn.close()
