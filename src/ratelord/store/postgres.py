"""The PostgreSQL event store: one log shared by a cluster of daemons.

The schema mirrors SQLite's: ``events`` keyed by ``seq``, made append-only by
triggers (the database itself refuses UPDATE, DELETE and TRUNCATE), and
``snapshots``.  Two additions serve the cluster:

* ``ratelord_leader``, one row: the leader's **epoch** and address.  A daemon
  that wins the session advisory lock (:class:`Leadership`) bumps the epoch;
  every append is one statement that inserts only ``WHERE`` the epoch is still
  the one this store was elected with, holding a share lock on that row.  A
  deposed leader that has not noticed yet therefore appends nothing and gets
  :class:`Fenced`; and because ``seq`` is the primary key and each append
  names the seqs it expects, two writers can never interleave silently.
* a statement trigger ``NOTIFY``s channel ``ratelord_events`` after each
  append, so followers tail the log without polling in a loop.

Each append is a single auto-committed statement: one round trip.  Durability
follows ``store.synchronous`` as with SQLite: ``normal`` (``synchronous_commit
= off``) survives a crash of any daemon, the server writing its WAL out within
a fraction of a second; ``full`` flushes every commit to disk before the answer.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from queue import Full, Queue
from typing import Any, TypeVar

import msgspec
import psycopg

from ratelord.engine.events import Event
from ratelord.store import sql
from ratelord.store.retention import POSTGRES_MIGRATION, ArchiveTables
from ratelord.store.sql import COLUMNS, POSTGRES, Snapshot, StoreError

#: The channel the append trigger notifies; the payload is the newest seq.
CHANNEL = "ratelord_events"
#: Key of the session advisory lock the leader holds (any constant, shared by the cluster).
LEADER_LOCK = 0x7261_7465_6C6F_7264 & 0x7FFF_FFFF_FFFF_FFFF  # "ratelord"
#: Key of the transaction advisory lock that serializes schema migrations.
MIGRATE_LOCK = LEADER_LOCK - 1


MIGRATIONS: tuple[str, ...] = (
    # 1: the log, its immutability, snapshots, the leader's epoch, the tail notification.
    sql.events_table(POSTGRES)
    + """
    CREATE FUNCTION ratelord_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'events is append-only: % refused', TG_OP;
    END $$;
    CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION ratelord_append_only();
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION ratelord_append_only();
    CREATE FUNCTION ratelord_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('ratelord_events', '');
        RETURN NULL;
    END $$;
    CREATE TRIGGER events_notify AFTER INSERT ON events
        FOR EACH STATEMENT EXECUTE FUNCTION ratelord_notify();
    """
    + sql.snapshots_table(POSTGRES)
    + """
    CREATE TABLE ratelord_leader (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        epoch   BIGINT  NOT NULL,
        address TEXT    NOT NULL,
        since   DOUBLE PRECISION NOT NULL
    );
    INSERT INTO ratelord_leader VALUES (1, 0, '', 0);
    """,
    # 2: retention: archive segments, the archive boundary; only archived events may go.
    POSTGRES_MIGRATION,
)

#: One statement, one round trip: the rows as one JSON array (cheaper to build and to
#: parse than twenty column arrays: measured a third of the client's CPU per append),
#: inserted only while the epoch is ours (the share lock makes a concurrent election
#: wait for us, or us for it).
_APPEND = (
    f"INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} "
    "FROM json_populate_recordset(NULL::events, %s) WHERE EXISTS "
    "(SELECT 1 FROM ratelord_leader WHERE id = 1 AND epoch = %s FOR SHARE)"
)


class _Row(msgspec.Struct, omit_defaults=True):
    """An ``events`` row as the append statement reads it (absent keys are NULL)."""

    seq: int
    event_id: str
    event_type: str
    schema_version: int
    ts_event: float
    ts_ingest: float
    origin_kind: str
    origin_id: str
    writer_id: str
    agent_id: str
    identity_id: str
    workload_id: str
    scope_id: str
    causation_id: str
    payload: msgspec.Raw  # the payload's JSON, stored as its text
    provider_id: str | None = None
    pool_id: str | None = None
    constraint_id: str | None = None
    correlation_id: str | None = None
    dedupe_key: str | None = None


_encode_rows = msgspec.json.Encoder().encode
_encode_payload = msgspec.json.Encoder().encode


T = TypeVar("T")
_SYNCHRONOUS = {"normal": "off", "full": "on"}


class Fenced(StoreError):
    """This daemon is no longer the leader: its append was refused by the database."""


class _Reads:
    """Sequential reads by seq, shared by the store and the readers."""

    def _connection(self) -> psycopg.Connection[Any]:
        raise NotImplementedError

    def read(self, after_seq: int = 0, batch: int = 5000) -> Iterator[list[Event]]:
        conn = self._connection()
        while True:
            rows = conn.execute(
                f"{sql.read_after(POSTGRES)} LIMIT %s", (after_seq, batch)
            ).fetchall()
            if not rows:
                return
            events = [sql.event(row) for row in rows]
            after_seq = events[-1].seq
            yield events

    def read_for_replay(
        self, after_seq: int, upto_seq: int, types: frozenset[str], batch: int = 5000
    ) -> Iterator[list[Event]]:
        """Pages fetched one ahead by a thread: waiting for the server overlaps the replay."""
        for rows in _prefetched(self._pages(after_seq, upto_seq, sorted(types), batch)):
            yield sql.replayed(rows)

    def _pages(
        self, after_seq: int, upto_seq: int, kinds: list[str], batch: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        conn = self._connection()
        while after_seq < upto_seq:
            # A page is a seq *range*: a primary-key range scan whatever the types filter
            # keeps (with LIMIT, the planner may pick the type index and sort instead).
            end = min(after_seq + batch, upto_seq)
            rows = conn.execute(
                f"SELECT {sql.REPLAY_COLUMNS} FROM events WHERE seq > %s AND seq <= %s "
                "AND event_type = ANY(%s) ORDER BY seq",
                (after_seq, end, kinds),
            ).fetchall()
            after_seq = end
            if rows:
                yield rows


def _prefetched(pages: Iterator[T], ahead: int = 2) -> Iterator[T]:
    """``pages``, produced by a worker thread up to ``ahead`` items before they are needed."""
    queue: Queue[tuple[T | None, BaseException | None, bool]] = Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: tuple[T | None, BaseException | None, bool]) -> None:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return
            except Full:
                continue

    def produce() -> None:
        try:
            for page in pages:
                if stop.is_set():
                    return
                put((page, None, False))
        except BaseException as exc:  # handed to the consumer, raised there
            put((None, exc, True))
            return
        put((None, None, True))

    worker = threading.Thread(target=produce, name="ratelord-replay-fetch", daemon=True)
    worker.start()
    try:
        while True:
            page, error, done = queue.get()
            if error is not None:
                raise error
            if done:
                return
            yield page  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


class PostgresStore(_Reads):
    """The write side.  Appends need an epoch: call :meth:`lead` (after winning the lock)."""

    def __init__(self, url: str, *, synchronous: str = "normal") -> None:
        self.url = url
        try:
            self._conn = connect(url)
            # normal: a commit is in the server's WAL (kill -9 of any ratelord-d loses
            # nothing) and flushed to disk within ~0.2 s; full: flushed before the answer.
            self._conn.execute(f"SET synchronous_commit = {_SYNCHRONOUS[synchronous]}")
            self._migrate()
            row = self._conn.execute(sql.HIGH_WATER).fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the event store {redact(url)}: {exc}") from None
        assert row is not None
        self.high_water: int = int(row[0])
        #: the leader epoch this store appends under (None: not elected, appends refused)
        self.epoch: int | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        return self._conn

    def _migrate(self) -> None:
        conn = self._conn
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ratelord_schema_version "
                "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            row = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM ratelord_schema_version"
            ).fetchone()
            current = int(row[0]) if row else 0
            if error := sql.unknown_version(current, len(MIGRATIONS), "the database"):
                raise error
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                conn.execute(script.encode())
                conn.execute(
                    "INSERT INTO ratelord_schema_version (version) VALUES (%s)", (version,)
                )

    @property
    def schema_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM ratelord_schema_version").fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ leadership

    def lead(self, address: str, now: float) -> int:
        """Become the writer: bump the epoch (fencing off any earlier leader), catch up.

        Call it only while holding the leader lock (:class:`Leadership`).  Returns
        the new epoch; :attr:`high_water` is then the true end of the log.
        """
        with self._conn.transaction():
            row = self._conn.execute(
                "UPDATE ratelord_leader SET epoch = epoch + 1, address = %s, since = %s "
                "WHERE id = 1 RETURNING epoch",
                (address, now),
            ).fetchone()
            tail = self._conn.execute(sql.HIGH_WATER).fetchone()
        assert row is not None and tail is not None
        self.epoch = int(row[0])
        self.high_water = int(tail[0])
        return self.epoch

    def leader(self) -> tuple[int, str]:
        """The current epoch and the leader's advertised address ('' before any election)."""
        row = self._conn.execute(
            "SELECT epoch, address FROM ratelord_leader WHERE id = 1"
        ).fetchone()
        assert row is not None
        return int(row[0]), str(row[1])

    # ------------------------------------------------------------------ writes

    def append(self, events: Sequence[Event], ts_ingest: float) -> list[Event]:
        if self.epoch is None:
            raise Fenced("this daemon is not the leader; it cannot append")
        seq = self.high_water
        stored: list[Event] = []
        rows: list[_Row] = []
        for event in events:
            seq += 1
            stored.append(msgspec.structs.replace(event, seq=seq, ts_ingest=ts_ingest))
            d, s = event.dimensions, event.source
            rows.append(
                _Row(
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
                    event.causation_id,
                    msgspec.Raw(_encode_payload(event.payload)),
                    event.provider_id,
                    event.pool_id,
                    event.constraint_id,
                    event.correlation_id,
                    event.dedupe_key,
                )
            )
        try:
            cursor = self._conn.execute(_APPEND, (_encode_rows(rows).decode(), self.epoch))
        except psycopg.errors.UniqueViolation as exc:
            raise Fenced(f"another writer appended at seq {self.high_water + 1}: {exc}") from None
        if cursor.rowcount != len(stored):
            raise Fenced(f"epoch {self.epoch} is over: another daemon leads; append refused")
        self.high_water = seq
        return stored

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints on its own."""

    def write_snapshot(self, seq: int, created_at: float, state: bytes) -> None:
        with self._conn.transaction():
            self._conn.execute(
                sql.insert_snapshot(POSTGRES), (seq, created_at, sql.checksum(state), state)
            )
            self._conn.execute(sql.PRUNE_SNAPSHOTS)

    def drop_snapshots(self) -> int:
        return self._conn.execute("DELETE FROM snapshots").rowcount

    def snapshots(self) -> Iterator[Snapshot | str]:
        for row in self._conn.execute(sql.SELECT_SNAPSHOTS).fetchall():
            yield sql.snapshot(row, self.high_water)

    def refresh(self) -> int:
        """Re-read the end of the log (a follower's view moves on without appending)."""
        row = self._conn.execute(sql.HIGH_WATER).fetchone()
        assert row is not None
        self.high_water = int(row[0])
        return self.high_water

    # ------------------------------------------------------------------ reads

    def reader(self) -> EventReader:
        return EventReader(self.url)

    def checkpointer(self) -> NoMaintenance:
        return NoMaintenance()

    def archive_tables(self, *, own_connection: bool = False) -> ArchiveTables:
        """The archive tables on the writer's connection, or on a new one."""
        conn = connect(self.url) if own_connection else self._conn
        return ArchiveTables(conn, transaction=conn.transaction, postgres=True, columns=sql.COLUMNS)

    def close(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()


class NoMaintenance:
    """PostgreSQL needs no upkeep from the daemon (autovacuum, checkpoints are its own)."""

    def run(self) -> tuple[int, int]:
        return 0, 0

    def close(self) -> None:
        pass


class EventReader(_Reads, sql.Queries):
    """Read-only queries (``GET /v1/events``, the follower's tail), one connection per thread."""

    dialect = POSTGRES

    def __init__(self, url: str) -> None:
        self._url = url
        self._local = threading.local()
        self._all: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = connect(self._url)
            with self._lock:
                self._all.append(conn)
        return conn

    def high_water(self) -> int:
        """The seq of the newest committed event."""
        row = self._connection().execute(sql.HIGH_WATER).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


class Leadership:
    """The leader election: a session advisory lock on a connection of its own.

    The lock lives as long as this connection's session: when the daemon dies
    (even ``kill -9``) the server ends the session and another daemon's
    :meth:`try_acquire` succeeds.  :meth:`alive` tells whether we still hold it.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self._url)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
        except psycopg.Error:
            self.release()
            return False
        return bool(row and row[0])

    def alive(self) -> bool:
        """True while our session (and so the lock) is still there."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            self._conn.execute("SELECT 1")  # a session lock ends only with its session
        except psycopg.Error:
            return False
        return True

    def release(self) -> None:
        """Give the lock up now: the server ends a closed session only a moment later."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):  # a session gone took its lock along
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (LEADER_LOCK,))
            self._conn.close()
            self._conn = None

    @property
    def backend_pid(self) -> int | None:
        """The server process of our lock's session (to end it from outside, in tests)."""
        return None if self._conn is None else self._conn.info.backend_pid


def connect(url: str) -> psycopg.Connection[Any]:
    """An auto-commit connection (each statement is its own transaction unless grouped)."""
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    if "password" in info:
        info["password"] = "***"  # noqa: S105 - a placeholder, not a secret
    return psycopg.conninfo.make_conninfo("", **info)
