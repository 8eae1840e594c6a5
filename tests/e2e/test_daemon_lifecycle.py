"""The real ``ratelord-d`` across its life: start, stop, crash, restart (D-01..D-04, issue 2)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.daemon import BIN, RunningDaemon, events, github_headers, register, wait_for

pytestmark = pytest.mark.e2e

Factory = Callable[..., RunningDaemon]


def log_rows(db_path: Path) -> list[tuple[int, str, dict[str, Any]]]:
    """(seq, event_type, payload) of every event, read straight from a stopped daemon's file."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT seq, event_type, payload FROM events ORDER BY seq").fetchall()
    return [(seq, kind, json.loads(payload)) for seq, kind, payload in rows]


# ------------------------------------------------------------------ D-01


@pytest.mark.acceptance("D-01")
def test_clean_start_creates_a_private_wal_database_and_logs_system_started(
    daemon: RunningDaemon,
) -> None:
    db = daemon.db_path
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        assert path.exists(), f"{path.name} missing after start"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with daemon.client() as http:
        started = events(http, type="system_started")
    assert len(started) == 1
    assert started[0]["seq"] == 1


# ------------------------------------------------------------------ D-03


@pytest.mark.acceptance("D-03")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_finishes_in_flight_intents_logs_system_stopped_and_exits_0(
    daemon_factory: Factory, sig: signal.Signals
) -> None:
    d = daemon_factory()
    with d.client() as http:
        register(http, "pat:a", "alice", provider_id="github")
        http.post("/v1/usage", json={"identity_id": "pat:a", "headers": github_headers(4000)})
    acknowledged: list[str] = []
    statuses: list[int] = []
    stop = threading.Event()

    def agent() -> None:
        with d.client() as http:
            while not stop.is_set():
                try:
                    response = http.post(
                        "/v1/intent",
                        json={
                            "agent_id": "a",
                            "identity_id": "pat:a",
                            "resource": "core",
                            "cost": 1,
                        },
                    )
                except httpx.TransportError:
                    return  # the server closed: fine, nothing was acknowledged
                statuses.append(response.status_code)
                if response.status_code == 200:
                    acknowledged.append(response.json()["intent_id"])

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(agent) for _ in range(4)]
        wait_for(lambda: len(acknowledged) >= 40, what="40 acknowledged intents")
        d.proc.send_signal(sig)  # type: ignore[union-attr]
        code = d.proc.wait(timeout=20)  # type: ignore[union-attr]
        stop.set()
        for future in futures:
            future.result()

    assert code == 0, d.logs()
    assert set(statuses) <= {200, 503}, statuses
    rows = log_rows(d.db_path)
    assert rows[-1][1] == "system_stopped"
    decided = {p["intent_id"] for _, kind, p in rows if kind == "intent_decided"}
    assert set(acknowledged) <= decided
    assert "Traceback" not in d.logs()


# ------------------------------------------------------------------ D-04


@pytest.mark.acceptance("D-04")
@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE events SET event_type = 'forged' WHERE seq = 1", "UPDATE refused"),
        ("DELETE FROM events WHERE seq = 1", "DELETE refused"),
    ],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_the_log(
    daemon: RunningDaemon, statement: str, refusal: str
) -> None:
    conn = sqlite3.connect(daemon.db_path, timeout=5)
    try:
        with pytest.raises(sqlite3.DatabaseError, match=f"append-only: {refusal}"), conn:
            conn.execute(statement)
        assert conn.execute("SELECT event_type FROM events WHERE seq = 1").fetchone() == (
            "system_started",
        )
    finally:
        conn.close()


# ------------------------------------------------------------------ D-02 and kill -9


def _pools_without_staleness(http: httpx.Client) -> list[dict[str, Any]]:
    pools = http.get("/v1/pools").json()["pools"]
    for p in pools:
        p.pop("stale_seconds")
    return sorted(pools, key=lambda p: p["pool_id"])


def _view(http: httpx.Client) -> dict[str, Any]:
    return {
        "pools": _pools_without_staleness(http),
        "forecasts": http.get("/v1/forecasts").json(),
        "identities": http.get("/v1/identities").json(),
    }


def _quiet_view(http: httpx.Client) -> tuple[int, dict[str, Any]]:
    """The view and the seq it reflects: retaken if the daemon logged anything meanwhile."""
    while True:
        high_water = http.get("/v1/health").json()["high_water_seq"]
        view = _view(http)
        if http.get("/v1/health").json()["high_water_seq"] == high_water:
            return high_water, view


@pytest.mark.acceptance("D-02")
def test_kill_9_and_restart_rebuild_identical_pools_forecasts_and_identities(
    daemon_factory: Factory,
) -> None:
    d = daemon_factory()
    intent_ids = []
    with d.client() as http:
        register(http, "pat:a", "alice", provider_id="github")
        register(http, "pat:b", "bob", provider_id="github")
        for identity, remaining in (("pat:a", 4000), ("pat:b", 4900)):
            body = {"identity_id": identity, "headers": github_headers(remaining)}
            assert http.post("/v1/usage", json=body).status_code == 200
        for i in range(30):
            body = {"agent_id": f"agent-{i % 3}", "identity_id": "pat:a", "resource": "core",
                    "cost": 5 + i % 4}  # fmt: skip
            intent_ids.append(http.post("/v1/intent", json=body).json()["intent_id"])
        high_water, before = _quiet_view(http)
    d.kill()
    d.start()
    with d.client() as http:
        after = _view(http)
        since = [e["event_type"] for e in events(http) if e["seq"] > high_water]
        decided = {e["payload"]["intent_id"] for e in events(http, type="intent_decided")}
    # Only the restart itself was logged after the snapshot we compared.
    assert since[0] == "system_started", since
    assert {"forecast_computed", "usage_observed"}.isdisjoint(since), since
    assert before["pools"][0]["forecast"] is not None
    assert after == before
    assert set(intent_ids) <= decided


@pytest.mark.slow
def test_kill_9_during_a_burst_of_registrations_keeps_every_acknowledged_one(
    daemon_factory: Factory,
) -> None:
    d = daemon_factory()
    acknowledged: list[str] = []
    lock = threading.Lock()

    def registrar(worker: int) -> None:
        with d.client() as http:
            for n in range(10_000):
                identity_id = f"id-{worker}-{n}"
                body = {"identity_id": identity_id, "provider_id": "mock", "principal": "acct"}
                try:
                    response = http.post("/v1/identities", json=body)
                except httpx.TransportError:
                    return
                if response.status_code == 201:
                    with lock:
                        acknowledged.append(identity_id)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(registrar, w) for w in range(8)]
        wait_for(lambda: len(acknowledged) >= 200, what="200 registrations")
        d.kill()
        for future in futures:
            future.result()

    d.start()
    with d.client() as http:
        listed = {i["identity_id"] for i in http.get("/v1/identities").json()["identities"]}
    missing = set(acknowledged) - listed
    assert not missing, (
        f"{len(missing)} acknowledged registrations lost, e.g. {sorted(missing)[:3]}"
    )


# ------------------------------------------------------------------ refusals at start


def test_a_second_daemon_on_the_same_database_is_refused(daemon: RunningDaemon) -> None:
    args = [a if a != str(daemon.port) else "0" for a in daemon.args]
    done = _run_daemon(args, daemon.workdir)
    assert done.returncode != 0
    assert str(daemon.db_path) in done.stderr
    assert "another" in done.stderr.lower() or "lock" in done.stderr.lower(), done.stderr
    assert "Traceback" not in done.stderr
    with daemon.client() as http:
        assert http.get("/v1/health").json()["status"] == "ok"


BAD_CONFIGS = {
    "unknown-key": ("providers:\n  mock:\n    principals: {}\n    polling: 3\n", "polling"),
    "wrong-type": ("port: eighty\n", "port"),
    "negative-limit": (
        "providers:\n  mock:\n    principals:\n      acct:\n"
        "        pools: {requests: {limit: -5}}\n",
        "limit",
    ),
    "yaml-error": ("providers: [unclosed\n", "invalid YAML"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_a_bad_config_file_stops_start_up_naming_file_key_and_reason(
    tmp_path: Path, case: str
) -> None:
    text, key = BAD_CONFIGS[case]
    config = tmp_path / "config.yaml"
    config.write_text(text)
    done = _run_daemon(["--config", str(config), "--db", str(tmp_path / "x.db")], tmp_path)
    assert done.returncode != 0
    assert str(config) in done.stderr, done.stderr
    assert key in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "x.db").exists()


def test_a_non_loopback_bind_without_a_token_is_refused(tmp_path: Path) -> None:
    done = _run_daemon(
        ["--bind", "0.0.0.0", "--port", "0", "--db", str(tmp_path / "x.db")], tmp_path
    )
    assert done.returncode != 0
    assert "0.0.0.0" in done.stderr and "token" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def _run_daemon(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATELORD_")}
    return subprocess.run(
        [str(BIN / "ratelord-d"), *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
