"""Retention on the real daemon (issue 15, item 13): ``ratelord archive`` moves old events
into compressed segments and out of the table, and nothing anyone sees changes: a full
replay through the segments equals the live state, the history views keep the long view
(from the rollups saved with the archive), and a restart keeps every pool as it was."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import MOCK_CONFIG
from tests.support.daemon import BIN, RunningDaemon, register

CONFIG: dict[str, Any] = {**MOCK_CONFIG, "retention": {"archive_after": "7d", "every": None}}


def _cli(daemon: RunningDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ratelord"), "--url", daemon.url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _rebuild_equal(daemon: RunningDaemon) -> bool:
    with daemon.client() as http:
        answer = http.post("/v1/admin/rebuild", timeout=120)
    return bool(json.loads(answer.text.strip().splitlines()[-1])["result"]["equal"])


def _pools(daemon: RunningDaemon) -> dict[str, tuple[Any, ...]]:
    with daemon.client() as http:
        pools = http.get("/v1/pools").json()["pools"]
    return {p["pool_id"]: (p["limit"], p["remaining"], p["reset_at"]) for p in pools}


def _history(daemon: RunningDaemon) -> dict[str, int]:
    with daemon.client() as http:
        answer = http.get("/v1/history", params={"since": "2h", "bucket": "1h"})
        assert answer.status_code == 200, answer.text
    totals = answer.json()["totals"]
    return {k: totals[k] for k in ("intents", "approved", "denied", "modified")}


def _rows_upto(daemon: RunningDaemon, seq: int) -> int:
    conn = sqlite3.connect(f"file:{daemon.db_path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events WHERE seq <= ?", (seq,)).fetchone()[0])
    finally:
        conn.close()


def test_archiving_moves_old_events_to_segments_and_changes_nothing_seen(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    daemon = daemon_factory(config=CONFIG)
    with daemon.client() as http:
        register(http, "pat:a", "acct-1")
        register(http, "pat:b", "acct-2")
        for i in range(40):
            body = {"agent_id": f"a{i % 3}", "identity_id": f"pat:{'ab'[i % 2]}", "cost": 7}
            assert http.post("/v1/intent", json={**body, "resource": "requests"}).status_code == 200
    history = _history(daemon)
    assert history["intents"] == 40
    # Nothing is 7 days old yet: the configured age archives nothing.
    nothing = _cli(daemon, "archive", "--json")
    assert nothing.returncode == 0, nothing.stderr
    assert json.loads(nothing.stdout)["archived_events"] == 0

    done = _cli(daemon, "archive", "--older-than", "0s", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    archived, upto = report["archived_events"], report["archived_upto_seq"]
    assert archived > 40 and report["deleted_events"] == archived
    assert report["bytes"] * 3 < report["raw_bytes"]  # compressed
    directory = daemon.db_path.with_name("ratelord.db.archive")
    segment = directory / report["segments"][0]["file"]
    first = json.loads(gzip.decompress(segment.read_bytes()).splitlines()[0])
    assert first[0] == 1 and first[2] == "system_started"
    assert (
        json.loads(segment.with_name(segment.name.replace(".ndjson.gz", ".json")).read_text())[
            "sha256"
        ]
        == report["segments"][0]["sha256"]
    )
    assert _rows_upto(daemon, upto) == 0  # the archived rows left the table

    assert _rebuild_equal(daemon)  # a full replay reads the segments, then the table
    assert _history(daemon) == history
    pools = _pools(daemon)
    daemon.restart()
    assert _pools(daemon) == pools
    assert _history(daemon) == history  # from the rollups saved at the archive boundary
    # Time travel to before the boundary replays the segments from the start of the log.
    middle = json.loads(gzip.decompress(segment.read_bytes()).splitlines()[upto // 2])
    with daemon.client() as http:
        past = http.get("/v1/history/state", params={"at": str(middle[4])})
        assert past.status_code == 200, past.text
    assert past.json()["checkpoint_seq"] == 0 and past.json()["seq"] <= upto
    assert {i["identity_id"] for i in past.json()["identities"]} == {"pat:a", "pat:b"}
    with daemon.client() as http:
        status = http.get("/v1/history/status").json()
        assert status["indexed_seq"] >= upto
        body = {"agent_id": "late", "identity_id": "pat:a", "resource": "requests", "cost": 1}
        assert http.post("/v1/intent", json=body).status_code == 200
    assert _rebuild_equal(daemon)
    assert _history(daemon)["intents"] == 41

    # Without its segments the daemon still starts and shows the long view (the snapshot
    # and the saved rollups); only a full replay needs them, and says so.
    pools = _pools(daemon)
    daemon.stop()
    directory.rename(directory.with_name("moved"))
    daemon.start()
    assert _pools(daemon) == pools
    assert _history(daemon)["intents"] == 41
    with daemon.client() as http:
        answer = http.post("/v1/admin/rebuild", timeout=120).text.strip().splitlines()[-1]
    assert "missing: restore the archive directory" in json.loads(answer)["error"]["message"]


def test_archive_without_retention_says_what_to_configure(daemon: RunningDaemon) -> None:
    done = _cli(daemon, "archive")
    assert done.returncode == 1
    assert "retention" in done.stderr and "archive_after" in done.stderr
    with daemon.client() as http:
        refused = http.post("/v1/admin/archive", json={"older_than": "7x"})
        assert refused.status_code == 400, refused.text
