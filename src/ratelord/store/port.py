"""The event store port: what the daemon needs from a log, whatever holds it.

Two adapters implement it: :class:`~ratelord.store.sqlite.SQLiteStore` (one
machine, no set-up) and :class:`~ratelord.store.postgres.PostgresStore` (a
cluster of daemons sharing one log).  :func:`open_store` picks one from a URL.
The contract both keep is written down as tests (``tests/unit/test_store_contract.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from ratelord.engine.events import Event
from ratelord.store.retention import ArchiveTables
from ratelord.store.sql import Snapshot


class EventReads(Protocol):
    """Reads of the log by sequence, in order."""

    def read(self, after_seq: int = 0, batch: int = 5000) -> Iterator[list[Event]]:
        """Every event after ``after_seq`` in order, in lists of up to ``batch``."""
        ...

    def read_for_replay(
        self, after_seq: int, upto_seq: int, types: frozenset[str], batch: int = 5000
    ) -> Iterator[list[Event]]:
        """Only the events (and fields) projections need, for fast start-up."""
        ...


class EventQueries(EventReads, Protocol):
    """The read side the API uses (``GET /v1/events``); safe to use from worker threads."""

    def query(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        filters: dict[str, str] | None = None,
        before_seq: int | None = None,
    ) -> list[Event]: ...

    def latest(self, *, limit: int, filters: dict[str, str] | None = None) -> list[Event]:
        """The ``limit`` newest events matching ``filters``, oldest first."""
        ...

    def close(self) -> None: ...


class Maintenance(Protocol):
    """Background upkeep of the store, off the writer's path (SQLite: WAL checkpoints)."""

    def run(self) -> tuple[int, int]: ...

    def close(self) -> None: ...


class EventStore(EventReads, Protocol):
    """The write side: one per daemon, used from the group-commit writer."""

    #: the ``seq`` of the newest event this store knows of (0 for an empty log)
    high_water: int

    @property
    def schema_version(self) -> int: ...

    def append(self, events: Sequence[Event], ts_ingest: float) -> list[Event]:
        """Append ``events`` atomically and durably; return them with ``seq`` and ``ts_ingest``."""
        ...

    def write_snapshot(self, seq: int, created_at: float, state: bytes) -> None: ...

    def drop_snapshots(self) -> int: ...

    def snapshots(self) -> Iterator[Snapshot | str]:
        """Snapshots newest first; a corrupt one is yielded as a warning string instead."""
        ...

    def reader(self) -> EventQueries: ...

    def checkpointer(self) -> Maintenance: ...

    def archive_tables(self, *, own_connection: bool = False) -> ArchiveTables:
        """Retention's tables (:mod:`ratelord.store.retention`): on the writer's connection,
        or on a new one of its own for a worker thread (the caller closes it)."""
        ...

    def checkpoint(self) -> None: ...

    def close(self) -> None: ...


def open_store(url: str, *, synchronous: str = "normal") -> EventStore:
    """The store a URL names: ``sqlite:///path``, a plain path, or ``postgresql://…``."""
    if url.startswith(("postgresql://", "postgres://")):
        from ratelord.store.postgres import PostgresStore

        return PostgresStore(url, synchronous=synchronous)
    from ratelord.store.sqlite import SQLiteStore

    return SQLiteStore(sqlite_path(url), synchronous=synchronous)


def sqlite_path(url: str) -> Path:
    """``sqlite:///abs/path`` → ``/abs/path``; ``sqlite://rel/path`` and plain paths as given."""
    if not url.startswith("sqlite://"):
        return Path(url)
    rest = url[len("sqlite://") :]
    return Path("/" + rest.lstrip("/")) if rest.startswith("/") else Path(rest)
