"""The SQL both event-store adapters speak: one schema, one set of queries, two dialects.

SQLite and PostgreSQL keep the same ``events`` and ``snapshots`` tables and
read them with the same statements; only the placeholder (``?`` or ``%s``) and
a few column types differ.  Each adapter adds what is its own (SQLite's
triggers and pragmas; PostgreSQL's trigger functions, the leader's epoch and
the tail notification) and runs the statements built here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

from ratelord.engine.events import Dimensions, Event, Source, typed


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two databases in the statements built here."""

    mark: str  # a bound parameter
    integer: str  # a 64-bit integer column
    real: str  # a double column
    blob: str  # a bytes column
    serial: str  # an auto-numbered primary key


SQLITE = Dialect(mark="?", integer="INTEGER", real="REAL", blob="BLOB", serial="INTEGER")
POSTGRES = Dialect(
    mark="%s", integer="BIGINT", real="DOUBLE PRECISION", blob="BYTEA", serial="BIGSERIAL"
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int
    created_at: float
    state: bytes


class StoreError(Exception):
    """The store cannot be used (locked by another daemon, unreadable, corrupt)."""


COLUMNS = (
    "seq, event_id, event_type, schema_version, ts_event, ts_ingest, origin_kind, origin_id, "
    "writer_id, agent_id, identity_id, workload_id, scope_id, provider_id, pool_id, "
    "constraint_id, correlation_id, causation_id, dedupe_key, payload"
)
#: The columns projections replay (see :func:`replayed`).
REPLAY_COLUMNS = (
    "seq, event_type, ts_event, agent_id, identity_id, workload_id, scope_id, provider_id, "
    "pool_id, dedupe_key, payload"
)
#: The columns ``GET /v1/events`` filters on.
FILTERS = (
    "event_type",
    "agent_id",
    "identity_id",
    "workload_id",
    "scope_id",
    "pool_id",
    "provider_id",
)


# ---------------------------------------------------------------------- schema


def events_table(d: Dialect) -> str:
    """The log and its indexes (immutability is each adapter's own: triggers differ)."""
    return f"""
    CREATE TABLE events (
        seq            {d.integer} PRIMARY KEY,
        event_id       TEXT    NOT NULL UNIQUE,
        event_type     TEXT    NOT NULL,
        schema_version INTEGER NOT NULL,
        ts_event       {d.real} NOT NULL,
        ts_ingest      {d.real} NOT NULL,
        origin_kind    TEXT    NOT NULL,
        origin_id      TEXT    NOT NULL,
        writer_id      TEXT    NOT NULL,
        agent_id       TEXT    NOT NULL,
        identity_id    TEXT    NOT NULL,
        workload_id    TEXT    NOT NULL,
        scope_id       TEXT    NOT NULL,
        provider_id    TEXT,
        pool_id        TEXT,
        constraint_id  TEXT,
        correlation_id TEXT,
        causation_id   TEXT    NOT NULL,
        dedupe_key     TEXT,
        payload        TEXT    NOT NULL
    );
    CREATE INDEX events_by_type     ON events (event_type, seq);
    CREATE INDEX events_by_agent    ON events (agent_id, seq);
    CREATE INDEX events_by_identity ON events (identity_id, seq);
    CREATE INDEX events_by_pool     ON events (pool_id, seq) WHERE pool_id IS NOT NULL;
    """


def snapshots_table(d: Dialect) -> str:
    return f"""
    CREATE TABLE snapshots (
        id         {d.serial} PRIMARY KEY,
        seq        {d.integer} NOT NULL,
        created_at {d.real} NOT NULL,
        checksum   TEXT   NOT NULL,
        state      {d.blob} NOT NULL
    );
    """


def unknown_version(current: int, known: int, where: str) -> StoreError | None:
    """The error for a database migrated by a newer ratelord than this one (else None)."""
    if current <= known:
        return None
    return StoreError(
        f"{where} has schema version {current}, newer than this ratelord ({known}); "
        "upgrade ratelord"
    )


# ---------------------------------------------------------------------- statements

#: The end of the log: its newest event, in the table or (once archived) in a segment.
HIGH_WATER = (
    "SELECT COALESCE(MAX(seq), 0) FROM (SELECT MAX(seq) AS seq FROM events "
    "UNION ALL SELECT MAX(last_seq) FROM archive_segments) AS ends"
)
SELECT_SNAPSHOTS = (
    "SELECT id, seq, created_at, checksum, state FROM snapshots ORDER BY seq DESC, id DESC"
)
#: Keep the three newest snapshots: older ones only cost space.
PRUNE_SNAPSHOTS = (
    "DELETE FROM snapshots WHERE id NOT IN "
    "(SELECT id FROM snapshots ORDER BY seq DESC, id DESC LIMIT 3)"
)


def insert_snapshot(d: Dialect) -> str:
    m = d.mark
    return f"INSERT INTO snapshots (seq, created_at, checksum, state) VALUES ({m}, {m}, {m}, {m})"


def read_after(d: Dialect) -> str:
    """Every event after a seq, in order (paged by the adapter)."""
    return f"SELECT {COLUMNS} FROM events WHERE seq > {d.mark} ORDER BY seq"


def page(
    d: Dialect,
    *,
    after_seq: int,
    limit: int,
    filters: dict[str, str] | None,
    before_seq: int | None = None,
) -> tuple[str, list[Any]]:
    """``GET /v1/events``: up to ``limit`` events after ``after_seq`` (up to ``before_seq``)."""
    where = [f"seq > {d.mark}"]
    args: list[Any] = [after_seq]
    if before_seq is not None:
        where.append(f"seq <= {d.mark}")
        args.append(before_seq)
    _filter(d, where, args, filters)
    sql = f"SELECT {COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY seq LIMIT {d.mark}"
    return sql, [*args, limit]


def latest(d: Dialect, *, limit: int, filters: dict[str, str] | None) -> tuple[str, list[Any]]:
    """The ``limit`` newest events matching ``filters``, newest first."""
    where = ["1 = 1"]
    args: list[Any] = []
    _filter(d, where, args, filters)
    sql = (
        f"SELECT {COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT {d.mark}"
    )
    return sql, [*args, limit]


def _filter(d: Dialect, where: list[str], args: list[Any], filters: dict[str, str] | None) -> None:
    for column, value in (filters or {}).items():
        if column not in FILTERS:
            raise ValueError(f"cannot filter events by {column!r}")
        where.append(f"{column} = {d.mark}")
        args.append(value)


class Queries:
    """``GET /v1/events``'s reads, for a reader holding a DB-API connection of ``dialect``."""

    dialect: ClassVar[Dialect]

    def _connection(self) -> Any:
        raise NotImplementedError

    def query(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        filters: dict[str, str] | None = None,
        before_seq: int | None = None,
    ) -> list[Event]:
        statement, args = page(
            self.dialect, after_seq=after_seq, limit=limit, filters=filters, before_seq=before_seq
        )
        return [event(row) for row in self._connection().execute(statement, args)]

    def latest(self, *, limit: int, filters: dict[str, str] | None = None) -> list[Event]:
        """The ``limit`` newest events matching ``filters``, oldest first."""
        statement, args = latest(self.dialect, limit=limit, filters=filters)
        rows = self._connection().execute(statement, args).fetchall()
        return [event(row) for row in reversed(rows)]


# ---------------------------------------------------------------------- rows


def event(row: tuple[Any, ...]) -> Event:
    """An event from a row of :data:`COLUMNS`, as its typed class (see ``events.typed``)."""
    cls, decode = typed(row[2])
    return cls(
        seq=row[0],
        event_id=row[1],
        event_type=row[2],
        schema_version=row[3],
        ts_event=row[4],
        ts_ingest=row[5],
        source=Source(origin_kind=row[6], origin_id=row[7], writer_id=row[8]),
        dimensions=Dimensions(
            agent_id=row[9], identity_id=row[10], workload_id=row[11], scope_id=row[12]
        ),
        provider_id=row[13],
        pool_id=row[14],
        constraint_id=row[15],
        correlation_id=row[16],
        causation_id=row[17],
        dedupe_key=row[18],
        payload=decode(row[19]),
    )


def replayed(rows: list[tuple[Any, ...]]) -> list[Event]:
    """Events from rows of :data:`REPLAY_COLUMNS`: what projections read, no more."""
    return [_replayed(r) for r in rows]


def _replayed(r: tuple[Any, ...]) -> Event:
    cls, decode = typed(r[1])
    return cls(
        seq=r[0],
        event_id="",
        event_type=r[1],
        ts_event=r[2],
        dimensions=Dimensions(agent_id=r[3], identity_id=r[4], workload_id=r[5], scope_id=r[6]),
        provider_id=r[7],
        pool_id=r[8],
        dedupe_key=r[9],
        payload=decode(r[10]),
    )


def checksum(state: bytes) -> str:
    return hashlib.sha256(state).hexdigest()


def snapshot(row: tuple[Any, ...], high_water: int) -> Snapshot | str:
    """A row of :data:`SELECT_SNAPSHOTS` as a snapshot, or the warning why it is unusable."""
    snapshot_id, seq, created_at, stored_checksum, state = row
    data = bytes(state) if isinstance(state, bytes | memoryview) else None
    if data is None or checksum(data) != stored_checksum:
        return f"snapshot {snapshot_id} (seq {seq}) is corrupt: checksum mismatch; ignored"
    if seq > high_water:
        return f"snapshot {snapshot_id} covers seq {seq} beyond the log's {high_water}"
    return Snapshot(seq=seq, created_at=created_at, state=data)
