"""What a person notices first, on the real daemon (issue 15, item 17): logs, the lock
file, metrics that agree with the stats, event times."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime

from tests.e2e.conftest import MOCK_CONFIG
from tests.support.daemon import RunningDaemon, register, wait_for


def _decisions_metric(text: str) -> dict[str, float]:
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^ratelord_decisions_total\{decision="(\w+)"\} (\S+)$', text, re.M)
    }


def test_metrics_count_every_decision_the_stats_count_across_a_restart(
    daemon_factory: Callable[..., RunningDaemon],
):
    daemon = daemon_factory(config=MOCK_CONFIG)
    with daemon.client() as http:
        register(http, "pat:a", "acct-1")
        ask = {"agent_id": "a", "identity_id": "pat:a", "resource": "requests", "cost": 1}
        wait_for(lambda: http.post("/v1/intent", json=ask).status_code == 200, what="an intent")
        batch = http.post("/v1/intents", json={"intents": [ask] * 5})
        assert batch.status_code == 200, batch.text
    daemon.restart()
    with daemon.client() as http:
        stats = http.get("/v1/stats").json()["decisions"]
        metrics = _decisions_metric(http.get("/metrics").text)
    assert sum(stats.values()) >= 6
    assert metrics == {kind: float(count) for kind, count in stats.items()}


def test_json_logs_hold_no_ansi_colours_and_no_uvicorn_chatter(daemon: RunningDaemon):
    daemon.stop()
    lines = [json.loads(line) for line in daemon.logs().splitlines() if line.startswith("{")]
    assert lines
    assert not [entry for entry in lines if "color_message" in entry]
    assert "\x1b[" not in daemon.logs()
    chatter = [e for e in lines if e["logger"] == "uvicorn.error" and e["level"] == "info"]
    assert not chatter, chatter


def test_a_clean_stop_removes_the_lock_file_which_held_the_pid(daemon: RunningDaemon):
    lock = daemon.db_path.with_name(daemon.db_path.name + ".lock")
    assert daemon.proc is not None
    assert lock.read_text() == str(daemon.proc.pid)
    assert daemon.stop() == 0
    assert not lock.exists()
    daemon.start()  # and a new daemon takes the database again
    assert lock.exists()


def test_events_carry_their_time_as_rfc3339_too(daemon: RunningDaemon):
    with daemon.client() as http:
        first = http.get("/v1/events", params={"after_seq": 0, "limit": 1}).json()["events"][0]
    assert first["occurred_at"].endswith("Z")
    parsed = datetime.fromisoformat(first["occurred_at"].replace("Z", "+00:00")).timestamp()
    assert abs(parsed - first["ts_event"]) < 0.001
    assert abs(parsed - time.time()) < 600
