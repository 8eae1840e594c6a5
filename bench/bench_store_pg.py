"""PostgreSQL store beside SQLite, in the same run: POST /v1/intent and replay.

Starts a real PostgreSQL server (``initdb`` in a temporary directory, as the
tests do), a SQLite daemon and a PostgreSQL-backed leader, and measures both in
alternating rounds (this machine's speed drifts): throughput under 32
connections, and one-connection latency.  Then fills a PostgreSQL log with
realistic events made by the engine and times the replay a starting daemon does.

Usage: python bench/bench_store_pg.py [seconds-per-run] [rounds] [replay-events]
"""

from __future__ import annotations

import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _harness import BENCH_CONFIG, INTENT, dump, start_daemon, wrk
from bench_store import realistic_log
from tests.support.postgres import PostgresServer, find_bin_dir

from ratelord.store.postgres import PostgresStore
from ratelord.store.replay import load
from ratelord.store.sql import COLUMNS as _COLUMNS
from ratelord.store.sqlite import SQLiteStore

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
REPLAY_EVENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000


def intents(server: PostgresServer) -> dict:
    pg_config = copy.deepcopy(BENCH_CONFIG)
    pg_config["store"]["url"] = server.create_database("intents")
    daemons = {"sqlite": start_daemon(), "postgresql": start_daemon(pg_config)}
    loaded: dict[str, list[dict]] = {name: [] for name in daemons}
    light: dict[str, list[dict]] = {name: [] for name in daemons}
    try:
        for daemon in daemons.values():
            wrk(f"{daemon.url}/v1/intent", INTENT, connections=32, seconds=1)  # warm up
        for _ in range(ROUNDS):
            for name, daemon in daemons.items():
                url = f"{daemon.url}/v1/intent"
                loaded[name].append(wrk(url, INTENT, connections=32, seconds=SECONDS))
                light[name].append(wrk(url, INTENT, connections=1, seconds=SECONDS))
    finally:
        for daemon in daemons.values():
            daemon.stop()

    def median(runs: list[dict], key: str) -> float:
        return round(statistics.median(run[key] for run in runs), 3)

    result: dict = {}
    for name in daemons:
        result[name] = {
            "rps_32_connections": round(median(loaded[name], "rps")),
            "p99_ms_32_connections": median(loaded[name], "p99"),
            "p50_ms_1_connection": median(light[name], "p50"),
            "p99_ms_1_connection": median(light[name], "p99"),
            "errors": sum(run["err"] for run in loaded[name] + light[name]),
        }
    result["postgresql_vs_sqlite_throughput"] = round(
        result["postgresql"]["rps_32_connections"] / result["sqlite"]["rps_32_connections"], 3
    )
    return result


def replay(server: PostgresServer) -> dict:
    """The same realistic log replayed from SQLite and from PostgreSQL."""
    sqlite = SQLiteStore(Path(tempfile.mkdtemp(prefix="ratelord-bench-")) / "log.db")
    fill_seconds = realistic_log(sqlite, REPLAY_EVENTS)
    store = PostgresStore(server.create_database("replay"))
    started = time.perf_counter()
    copy_log(sqlite, store)
    copy_seconds = time.perf_counter() - started
    result = {"events": store.high_water, "fill_seconds": round(fill_seconds, 1)}
    result["copy_to_postgresql_seconds"] = round(copy_seconds, 1)
    for name, source in (("sqlite", sqlite), ("postgresql", store)):
        started = time.perf_counter()
        loaded = load(source)
        seconds = time.perf_counter() - started
        result[f"{name}_replay_seconds"] = round(seconds, 2)
        result[f"{name}_replay_events_per_s"] = round(loaded.replayed / seconds)
    sqlite.close()
    store.close()
    return result


def copy_log(source: SQLiteStore, target: PostgresStore) -> None:
    """Bulk-load the rows as they are (bench set-up only: COPY skips the leader's fence)."""
    rows = source._conn.execute(f"SELECT {_COLUMNS} FROM events ORDER BY seq")
    conn = target._conn
    with conn.transaction(), conn.cursor().copy(f"COPY events ({_COLUMNS}) FROM STDIN") as copy:
        while batch := rows.fetchmany(10_000):
            for row in batch:
                payload = row[-1]  # SQLite keeps the JSON as bytes; PostgreSQL as text
                copy.write_row(
                    (*row[:-1], payload.decode() if isinstance(payload, bytes) else payload)
                )
    target.refresh()


def main() -> None:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer(bin_dir).start()
    try:
        dump(
            "intent_sqlite_vs_postgresql", {"seconds": SECONDS, "rounds": ROUNDS, **intents(server)}
        )
        dump("replay_from_postgresql", replay(server))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
