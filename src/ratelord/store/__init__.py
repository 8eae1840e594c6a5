"""The event store: a small port (append, read, snapshots) and its SQLite adapter."""

from ratelord.store.sqlite import Checkpointer, EventReader, Snapshot, SQLiteStore, StoreError
from ratelord.store.writer import GroupCommitWriter

__all__ = [
    "Checkpointer",
    "EventReader",
    "GroupCommitWriter",
    "SQLiteStore",
    "Snapshot",
    "StoreError",
]
