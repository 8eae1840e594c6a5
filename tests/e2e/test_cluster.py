"""Several ``ratelord-d`` on one real PostgreSQL log: one leader, followers, failover.

Each test starts its own daemons against a fresh database of the session's
PostgreSQL server (``tests/support/postgres.py``: ``initdb``, never a mock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ratelord.client import Client
from ratelord.client._base import is_local
from tests.e2e.test_cli import ratelord
from tests.support.daemon import (
    TLS,
    RunningDaemon,
    events,
    free_port,
    github_headers,
    make_daemon,
    register,
    wait_for,
)

pytestmark = pytest.mark.e2e

Cluster = Callable[[int], list[RunningDaemon]]


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    """``cluster(n)`` → n running daemons sharing the test's PostgreSQL database."""
    made: list[RunningDaemon] = []

    def start(n: int) -> list[RunningDaemon]:
        for _ in range(n):
            daemon = make_daemon(tmp_path / f"m{len(made)}", args=["--store", pg_url])
            made.append(daemon)  # before start: one that never gets ready is killed too
            daemon.start()
            if len(made) == 1:
                wait_for(lambda d=daemon: role(d) == "leader", timeout=10, what="a first leader")
        return made

    yield start
    for daemon in made:
        if daemon.alive():
            daemon.kill()


def health(daemon: RunningDaemon) -> dict[str, Any]:
    return dict(httpx.get(f"{daemon.url}/v1/health", timeout=2, verify=TLS).json())


def role(daemon: RunningDaemon) -> str | None:
    try:
        return str(health(daemon)["cluster"]["role"])
    except httpx.HTTPError:
        return None


def test_one_leader_followers_serve_reads_and_hand_writes_to_it(cluster: Cluster) -> None:
    leader, *followers = cluster(3)
    wait_for(lambda: all(role(f) == "follower" for f in followers), what="two followers")
    for daemon in (leader, *followers):
        assert health(daemon)["cluster"]["leader"] == leader.url
    follower = followers[0]
    with follower.client() as http:
        register(http, "pat:a", "alice", provider_id="github")
        http.post("/v1/usage", json={"identity_id": "pat:a", "headers": github_headers(4000)})
        body = {"agent_id": "a", "identity_id": "pat:a", "resource": "core", "cost": 7}
        answer = http.post("/v1/intent", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-ratelord-leader"] == leader.url
    decided = answer.json()["intent_id"]
    for daemon in followers:  # the decision reaches every member's projections and log reads
        with daemon.client() as http:
            wait_for(
                lambda h=http: (
                    (h.get("/v1/pools/github:core:alice").json() or {}).get("remaining") == 4000 - 7
                ),
                what="the follower's pool to show the charge",
            )
            logged = {e["payload"]["intent_id"] for e in events(http, type="intent_decided")}
            assert decided in logged
            assert http.get("/v1/health").json()["cluster"]["replication_lag_events"] == 0
    # the CLI takes every member; the first is down here, and it says who leads
    dead = f"http://127.0.0.1:{free_port()}"
    shown = ratelord(f"{dead},{follower.url}", "status")
    assert shown.returncode == 0, shown.stderr
    assert f"cluster: follower (leader {leader.url}, epoch 1, 0 events behind)" in shown.stdout


def test_a_stopped_leader_hands_over_cleanly(cluster: Cluster) -> None:
    leader, follower = cluster(2)
    wait_for(lambda: role(follower) == "follower", what="a follower")
    assert follower.stop() == 0  # a follower stops like a single daemon
    follower.start()
    wait_for(lambda: role(follower) == "follower", what="the follower back")
    assert leader.stop() == 0
    wait_for(lambda: role(follower) == "leader", timeout=30, what="the follower to lead")
    with follower.client() as http:
        kinds = [e["event_type"] for e in events(http) if e["event_type"].startswith("system_")]
    # the old leader's goodbye was not fenced off: it precedes the new leader's start
    assert kinds == ["system_started", "system_stopped", "system_started"]
    assert '"level": "error"' not in leader.logs()


def test_a_leader_that_loses_its_lock_session_stops_and_a_follower_leads(
    cluster: Cluster, pg_url: str
) -> None:
    import psycopg

    leader, follower = cluster(2)
    wait_for(lambda: role(follower) == "follower", what="a follower")
    with psycopg.connect(pg_url, autocommit=True) as admin:  # as a network partition would
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
        )
    wait_for(lambda: role(follower) == "leader", timeout=30, what="the follower to lead")
    assert leader.proc is not None and leader.proc.wait(timeout=15) == 0
    assert "no longer the leader" in leader.logs()


def test_a_followers_event_stream_shows_what_the_leader_decides(cluster: Cluster) -> None:
    leader, follower = cluster(2)
    wait_for(lambda: role(follower) == "follower", what="a follower")
    with leader.client() as http:
        register(http, "pat:a", "alice", provider_id="github")
        http.post("/v1/usage", json={"identity_id": "pat:a", "headers": github_headers(4000)})
    intent = {"agent_id": "a", "identity_id": "pat:a", "resource": "core", "cost": 1}
    params = {"stream": "true", "type": "intent_decided"}
    with httpx.stream("GET", f"{follower.url}/v1/events", params=params, timeout=10) as stream:
        lines = stream.iter_lines()
        assert ": connected" in next(lines) + next(lines)
        asked = threading.Timer(0.3, lambda: httpx.post(f"{leader.url}/v1/intent", json=intent))
        asked.start()
        seen = next(line for line in lines if line.startswith("data:"))
        asked.join()
    assert '"event_type":"intent_decided"' in seen.replace(" ", "")


@dataclass
class Outcome:
    approved: dict[str, float] = field(default_factory=dict)  # intent id → cost
    held: int = 0  # denied or deferred
    #: (when, what) for every answer that was not the daemon's decision
    failures: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.mark.slow
def test_kill_9_of_the_leader_under_16_clients_loses_nothing_and_overspends_nothing(
    cluster: Cluster,
) -> None:
    budget = 300  # paced clients spend it around the failover (or before: then it must hold)
    members = cluster(3)
    leader = members[0]
    wait_for(lambda: all(role(m) == "follower" for m in members[1:]), what="two followers")
    with leader.client() as http:
        register(http, "pat:a", "alice", provider_id="github")
        report = {"identity_id": "pat:a", "headers": github_headers(budget)}
        assert http.post("/v1/usage", json=report).status_code == 200
    urls = [m.url for m in members]
    outcome, stop = Outcome(), threading.Event()

    def agent(n: int) -> None:
        ring = urls[n % 3 :] + urls[: n % 3]  # spread the clients over the members
        with Client(ring, retries=20, timeout=3.0) as client:
            while not stop.is_set():
                try:
                    decision = client.ask(
                        agent_id=f"agent-{n}", identity_id="pat:a", resource="core", cost=1
                    )
                except Exception as exc:  # any error a client sees counts against the cluster
                    with outcome.lock:
                        outcome.failures.append((time.monotonic(), repr(exc)))
                    continue
                with outcome.lock:
                    if is_local(decision):
                        outcome.failures.append((time.monotonic(), decision.reason or ""))
                    elif decision.decision.startswith("approve") and not (
                        decision.modifications.defer_until
                    ):
                        outcome.approved[decision.intent_id] = 1.0
                    else:  # denied, or deferred until the reset: nothing spent
                        outcome.held += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(outcome.approved) >= 16, timeout=30, what="the clients to be asking")
    time.sleep(0.5)
    with outcome.lock:
        approved_before = len(outcome.approved)
    killed_at, killed_wall = time.monotonic(), time.time()
    leader.kill()  # SIGKILL: no goodbye, its PostgreSQL session just ends
    survivors = members[1:]
    new_leader = wait_for(
        lambda: next((m for m in survivors if role(m) == "leader"), None),
        timeout=30,
        what="a follower to take the lead",
    )
    seen_leading = time.monotonic()
    time.sleep(4.0)
    # The clients go on until the budget runs short (a loaded machine slows them down),
    # so that the cap is put to the test after the failover too.
    wait_for(lambda: outcome.held > 0, timeout=60, what="the budget to run short")
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    with new_leader.client() as http:
        decided = events(http, type="intent_decided")
        leading = events(http, type="system_started")[-1]  # a follower logs it once it leads
    # The daemon's own clock says when it took the lead; this test's polls, like the
    # clients', only see it as soon as the other workers on these cores let them.
    failover = leading["ts_event"] - killed_wall
    assert failover < 5.0, f"a follower took {failover:.2f}s to lead"
    assert outcome.held > 0 or len(outcome.approved) > approved_before  # work went on
    window_end = seen_leading + 2.0
    late = [f for f in outcome.failures if f[0] > window_end or f[0] < killed_at]
    assert not late, f"clients saw errors outside the failover window: {late[:3]}"
    logged = {e["payload"]["intent_id"]: e for e in decided}
    lost = set(outcome.approved) - set(logged)
    assert not lost, f"{len(lost)} acknowledged decisions are missing from the log"
    spent = sum(sum(e["payload"]["charges"].values()) for e in decided)
    assert spent <= budget, f"approved {spent} against a budget of {budget}"
    assert outcome.held > 0  # the budget ran short: the cap was really put to the test
    assert len(outcome.approved) <= budget
