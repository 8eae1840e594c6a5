"""``ratelord backup PATH`` while intents are being decided, and a restore from the copy
(issue 15, item 13): the copy is one consistent instant of the log, and a daemon
started on it has exactly that log and rebuilds to the same state."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import MOCK_CONFIG
from tests.support.daemon import BIN, RunningDaemon, events, make_daemon, register


def _cli(daemon: RunningDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    """``ratelord … `` run where the daemon runs, on its database."""
    return subprocess.run(
        [str(BIN / "ratelord"), *args, "--db", str(daemon.db_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_online_backup_restores_to_the_same_log_and_state(
    daemon_factory: Callable[..., RunningDaemon], tmp_path: Path
):
    daemon = daemon_factory(config=MOCK_CONFIG)
    stop = threading.Event()
    asked: list[int] = []

    def ask() -> None:
        with daemon.client() as http:
            body = {"agent_id": "a", "identity_id": "pat:a", "resource": "requests", "cost": 1}
            while not stop.is_set():
                asked.append(http.post("/v1/intent", json=body).status_code)

    with daemon.client() as http:
        register(http, "pat:a", "acct-1")
        register(http, "pat:b", "acct-2")
    writer = threading.Thread(target=ask)
    writer.start()
    try:
        copy = tmp_path / "backup.db"
        done = _cli(daemon, "backup", str(copy), "--json")
    finally:
        stop.set()
        writer.join(timeout=30)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["path"] == str(copy) and copy.stat().st_mode & 0o777 == 0o600
    assert not copy.with_name("backup.db-wal").exists()  # one self-contained file
    assert 200 in asked
    with daemon.client() as http:
        original = events(http)
    daemon.stop()

    restored = make_daemon(tmp_path / "restored", config=MOCK_CONFIG)
    restored.args[restored.args.index("--db") + 1] = str(copy)
    restored.start()
    try:
        with restored.client() as http:
            log = events(http)
            head = [e for e in log if e["seq"] <= answer["high_water_seq"]]
            assert head == [e for e in original if e["seq"] <= answer["high_water_seq"]]
            assert len(head) == answer["high_water_seq"]
            ids = {i["identity_id"] for i in http.get("/v1/identities").json()["identities"]}
            assert ids == {"pat:a", "pat:b"}
            rebuild = http.post("/v1/admin/rebuild", timeout=120)
            assert json.loads(rebuild.text.strip().splitlines()[-1])["result"]["equal"] is True
    finally:
        restored.stop()


def test_a_backup_never_overwrites_a_file(daemon: RunningDaemon, tmp_path: Path):
    taken = tmp_path / "taken.db"
    taken.write_text("precious")
    done = _cli(daemon, "backup", str(taken))
    assert done.returncode == 1
    assert "exists already" in done.stderr
    assert taken.read_text() == "precious"
    assert not list(tmp_path.glob("*.part"))


def test_a_postgresql_log_is_sent_to_pg_dump(tmp_path: Path):
    done = subprocess.run(
        [str(BIN / "ratelord"), "backup", str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        env={"RATELORD_STORE": "postgresql://ratelord@db/ratelord", "PATH": str(BIN)},
        timeout=60,
    )
    assert done.returncode == 1
    assert "pg_dump" in done.stderr
    assert not (tmp_path / "x.db").exists()
