"""Forward-only SQLite schema migrations; entry ``i`` takes the database from version ``i`` to
``i+1``.  The tables are :mod:`ratelord.store.sql`'s, shared with PostgreSQL.

Never edit a released migration: append a new one.
"""

from ratelord.store.retention import SQLITE_MIGRATION
from ratelord.store.sql import SQLITE, events_table, snapshots_table

MIGRATIONS: tuple[str, ...] = (
    # 1: the event log, its immutability triggers, and projection snapshots.
    events_table(SQLITE)
    + """
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events is append-only: UPDATE refused'); END;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events is append-only: DELETE refused'); END;
    """
    + snapshots_table(SQLITE),
    # 2: retention: archive segments, the archive boundary; only archived events may go.
    SQLITE_MIGRATION,
)
