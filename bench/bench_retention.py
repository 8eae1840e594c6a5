"""Retention: what an event costs in the table and in an archive segment, and how fast
the real daemon archives (``POST /v1/admin/archive``) and replays through segments.

Usage: python bench/bench_retention.py [--days 2] [--scale 0.3]

A recorded history made by the real engine (``ratelord.history.synth``) is
written, a daemon started on it, and everything older than a day archived.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from _harness import make_daemon

from ratelord.history.synth import generate


def table_bytes(db: Path) -> int:
    """Bytes the database uses (pages in use: data and indexes), after a WAL checkpoint."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--scale", type=float, default=0.3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ratelord-bench-retention-"))
    db = workdir / "ratelord.db"
    events = generate(db, days=args.days, scale=args.scale, end=time.time() - 60)
    used = table_bytes(db)
    daemon = make_daemon(
        workdir,
        config={"retention": {"archive_after": "1d", "every": None}},
        args=["--db", str(db)],
    )
    daemon.args[daemon.args.index("--db") + 1] = str(db)
    daemon.start()
    try:
        daemon.wait_ready(timeout=600)
        with daemon.client() as http:
            answer = http.post("/v1/admin/archive", json={}, timeout=3600)
            answer.raise_for_status()
            report = answer.json()
            started = time.perf_counter()
            rebuilt = http.post("/v1/admin/rebuild", timeout=3600).text.strip().splitlines()[-1]
            rebuild_seconds = time.perf_counter() - started
    finally:
        daemon.stop()
    result = json.loads(rebuilt)["result"]
    archived = report["archived_events"]
    after = table_bytes(db)
    print(f"events: {events}")
    print(f"archived_events: {archived}")
    print(f"table_bytes_per_event: {used / events:.1f}")
    print(f"segment_bytes_per_event: {report['bytes'] / archived:.1f}")
    print(f"ndjson_bytes_per_event: {report['raw_bytes'] / archived:.1f}")
    print(f"compression_ratio_vs_table: {used / events / (report['bytes'] / archived):.1f}")
    print(f"compression_ratio_vs_ndjson: {report['raw_bytes'] / report['bytes']:.1f}")
    print(f"table_bytes_freed: {used - after}")
    print(f"segments: {len(report['segments'])}")
    print(f"archive_seconds: {report['seconds']:.2f}")
    print(f"archive_events_per_second: {report['events_per_second']:.0f}")
    print(f"rebuild_through_segments_events_per_second: {result['events'] / rebuild_seconds:.0f}")
    print(f"rebuild_equal: {result['equal']}")


if __name__ == "__main__":
    main()
