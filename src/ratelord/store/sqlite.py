"""The SQLite event store: WAL, append-only ``events`` enforced by triggers, snapshots.

One :class:`SQLiteStore` owns the write connection and is used from a single
thread (where the group-commit writer runs: the event loop, or its thread);
readers open their own connections with :meth:`SQLiteStore.reader`.
``synchronous=NORMAL`` in WAL mode keeps every committed transaction across a
process crash (``kill -9``); ``full`` also survives power loss at the cost of
an fsync per commit.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ratelord.engine.events import Event
from ratelord.store import sql
from ratelord.store.migrations import MIGRATIONS
from ratelord.store.retention import ArchiveTables
from ratelord.store.sql import SQLITE, Snapshot, StoreError

#: The optional text columns.  They are bound as ``''`` and stored as NULL: binding
#: ``None`` makes Python's sqlite3 look for an adapter (an attribute lookup that
#: fails and raises internally), about 0.5 µs per NULL; an intent writes seven.
_OPTIONAL = frozenset({"provider_id", "pool_id", "constraint_id", "correlation_id", "dedupe_key"})
_INSERT = (
    f"INSERT INTO events ({sql.COLUMNS}) VALUES ("
    + ", ".join(
        "NULLIF(?, '')" if column in _OPTIONAL else "?" for column in sql.COLUMNS.split(", ")
    )
    + ")"
)

#: Bytes the WAL file keeps between bursts (it is reused, not regrown, below this).
WAL_SIZE_LIMIT = 64 * 1024 * 1024

_encode_payload = msgspec.json.Encoder().encode


class _Reads:
    """Sequential reads of the log, shared by the writer's store and the readers."""

    def _connection(self) -> sqlite3.Connection:
        raise NotImplementedError

    def read(self, after_seq: int = 0, batch: int = 5000) -> Iterator[list[Event]]:
        """Every event after ``after_seq`` in order, in lists of up to ``batch``."""
        cursor = self._connection().execute(sql.read_after(SQLITE), (after_seq,))
        while rows := cursor.fetchmany(batch):
            yield [sql.event(row) for row in rows]

    def read_for_replay(
        self, after_seq: int, upto_seq: int, types: frozenset[str], batch: int = 5000
    ) -> Iterator[list[Event]]:
        """Only the events (and columns) projections need, for fast start-up."""
        marks = ", ".join("?" * len(types))
        cursor = self._connection().execute(
            f"SELECT {sql.REPLAY_COLUMNS} FROM events WHERE seq > ? AND seq <= ? "
            f"AND event_type IN ({marks}) ORDER BY seq",
            (after_seq, upto_seq, *sorted(types)),
        )
        while rows := cursor.fetchmany(batch):
            yield sql.replayed(rows)


class SQLiteStore(_Reads):
    def __init__(self, path: str | Path, *, synchronous: str = "normal") -> None:
        self.path = Path(path)
        self._lock_fd: int | None = _acquire_lock(self.path)
        _create_private(self.path)
        try:
            self._conn = _connect(self.path)
            self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            # Checkpoints are run by the daemon between commits, not inside one; after
            # a burst, the WAL file shrinks back to this size when it is next reset.
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            self._migrate()
            row = self._conn.execute(sql.HIGH_WATER).fetchone()
            # From here on the writer may run on the event loop: a busy database must
            # fail at once (the writer retries on a timer) rather than block the loop.
            self._conn.execute("PRAGMA busy_timeout=0")
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(f"cannot open the event store {self.path}: {exc}") from None
        self.high_water: int = int(row[0])

    # ------------------------------------------------------------------ schema

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        if error := sql.unknown_version(current, len(MIGRATIONS), str(self.path)):
            raise error
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            with conn:
                conn.executescript(f"BEGIN; {script}")
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) "
                    "VALUES (?, strftime('%s','now'))",
                    (version,),
                )

    def _connection(self) -> sqlite3.Connection:
        return self._conn

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    # ------------------------------------------------------------------ writes

    def append(self, events: Sequence[Event], ts_ingest: float) -> list[Event]:
        """Append ``events`` in one transaction; return them with ``seq`` and ``ts_ingest``."""
        seq = self.high_water
        rows = []
        stored = []
        for event in events:
            seq += 1
            stored.append(msgspec.structs.replace(event, seq=seq, ts_ingest=ts_ingest))
            rows.append(_row(event, seq, ts_ingest))
        with self._conn:
            self._conn.executemany(_INSERT, rows)
        self.high_water = seq
        return stored

    def checkpoint(self) -> None:
        """Fold the WAL back into the database (at shutdown; see :class:`Checkpointer`)."""
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def write_snapshot(self, seq: int, created_at: float, state: bytes) -> None:
        with self._conn:
            self._conn.execute(
                sql.insert_snapshot(SQLITE), (seq, created_at, sql.checksum(state), state)
            )
            self._conn.execute(sql.PRUNE_SNAPSHOTS)

    def drop_snapshots(self) -> int:
        with self._conn:
            return self._conn.execute("DELETE FROM snapshots").rowcount

    def snapshots(self) -> Iterator[Snapshot | str]:
        """Snapshots newest first; a corrupt one is yielded as a warning string instead."""
        for row in self._conn.execute(sql.SELECT_SNAPSHOTS).fetchall():
            yield sql.snapshot(row, self.high_water)

    # ------------------------------------------------------------------ reads

    def reader(self) -> EventReader:
        return EventReader(self.path)

    def checkpointer(self) -> Checkpointer:
        return Checkpointer(self.path)

    def archive_tables(self, *, own_connection: bool = False) -> ArchiveTables:
        """The archive tables on the writer's connection, or on a new read-only one."""
        conn = _connect(self.path, readonly=True) if own_connection else self._conn
        return ArchiveTables(conn, transaction=lambda: conn, postgres=False, columns=sql.COLUMNS)

    def close(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
            self._conn = None  # type: ignore[assignment]
        if self._lock_fd is not None:
            _release_lock(self.path, self._lock_fd)
            self._lock_fd = None


class Checkpointer:
    """Runs PASSIVE WAL checkpoints on its own connection, off the writer's path.

    SQLite's automatic checkpoint runs inside a commit and shows up as p99
    spikes; the daemon disables it and calls :meth:`run` from a background
    thread instead, which copies WAL frames while the writer keeps appending.
    """

    def __init__(self, path: Path) -> None:
        self._conn = _connect(path)

    def run(self) -> tuple[int, int]:
        _, wal_pages, moved = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(wal_pages), int(moved)

    def close(self) -> None:
        self._conn.close()


class EventReader(_Reads, sql.Queries):
    """Read-only queries (the API's ``GET /v1/events``), one connection per thread."""

    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []

    def _connection(self) -> sqlite3.Connection:
        """This thread's read-only connection (sqlite3 connections stay in their thread)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self._path, readonly=True)
            self._all.append(conn)
        return conn

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()


# ---------------------------------------------------------------------- helpers


def _row(event: Event, seq: int, ts_ingest: float) -> tuple[Any, ...]:
    d, s = event.dimensions, event.source
    return (
        seq,
        event.event_id,
        event.event_type,
        event.schema_version,
        event.ts_event,
        ts_ingest,
        s.origin_kind,
        s.origin_id,
        s.writer_id,
        d.agent_id,
        d.identity_id,
        d.workload_id,
        d.scope_id,
        event.provider_id or "",
        event.pool_id or "",
        event.constraint_id or "",
        event.correlation_id or "",
        event.causation_id,
        event.dedupe_key or "",
        _encode_payload(event.payload),
    )


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
        )
    else:
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (it holds the whole history)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _acquire_lock(path: Path) -> int:
    """Lock ``DB.lock`` (it holds the daemon's pid: ``kill -HUP $(cat DB.lock)``).

    The file is removed at a clean stop, so a lock won on a file that was just
    unlinked is worthless: it is retried on the file now at that path.
    """
    lock_path = _lock_path(path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                f"another ratelord-d (pid {holder}) is using {path}; stop it first "
                "or give this one its own --db"
            ) from None
        try:
            current = lock_path.stat().st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # unlinked by a daemon that stopped meanwhile
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _release_lock(path: Path, fd: int) -> None:
    """Remove the lock file while still holding the lock, then let go of it."""
    _lock_path(path).unlink(missing_ok=True)
    os.close(fd)
