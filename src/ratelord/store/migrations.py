"""Forward-only schema migrations; entry ``i`` takes the database from version ``i`` to ``i+1``.

Never edit a released migration: append a new one.
"""

MIGRATIONS: tuple[str, ...] = (
    # 1: the event log, its immutability triggers, and projection snapshots.
    """
    CREATE TABLE events (
        seq            INTEGER PRIMARY KEY,
        event_id       TEXT    NOT NULL UNIQUE,
        event_type     TEXT    NOT NULL,
        schema_version INTEGER NOT NULL,
        ts_event       REAL    NOT NULL,
        ts_ingest      REAL    NOT NULL,
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
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events is append-only: UPDATE refused'); END;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events is append-only: DELETE refused'); END;
    CREATE TABLE snapshots (
        id         INTEGER PRIMARY KEY,
        seq        INTEGER NOT NULL,
        created_at REAL    NOT NULL,
        checksum   TEXT    NOT NULL,
        state      BLOB    NOT NULL
    );
    """,
)
