"""The event store: a small port (append, read, snapshots) and its SQLite adapter."""

from ratelord.store.sql import Snapshot, StoreError
from ratelord.store.sqlite import Checkpointer, EventReader, SQLiteStore
from ratelord.store.writer import GroupCommitWriter

__all__ = [
    "Checkpointer",
    "EventReader",
    "GroupCommitWriter",
    "SQLiteStore",
    "Snapshot",
    "StoreError",
]
