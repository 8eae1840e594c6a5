"""The real ``ratelord`` executable against a real ``ratelord-d`` (SPEC §9, D-06)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.daemon import RunningDaemon, free_port

pytestmark = pytest.mark.e2e

RATELORD = str(Path(sys.executable).parent / "ratelord")
SECRET = "e2e-secret-value-never-shown"
POOL = "mock:requests:acct-1"
#: One pool of 100 per principal: an intent of 85 and 12 unseen take it to CRIT.
SMALL_MOCK = {
    "providers": {
        "mock": {
            "poll_interval_seconds": 1,
            "principals": {
                name: {
                    "pools": {
                        "requests": {
                            "limit": 100,
                            "window_seconds": 3600,
                            "remaining": 100,
                            "burn_per_second": 0,
                        }
                    }
                }
                for name in ("acct-1", "acct-2")
            },
        }
    }
}
POLICY_V1 = """\
policies:
  - id: floor
    target: global
    kind: hard
    rules:
      - name: keep-ten
        when: 'pool.remaining - intent.cost < 10.0'
        action: deny
"""
POLICY_V2 = POLICY_V1.replace("keep-ten", "keep-five").replace("10.0", "5.0")
POLICY_BAD = POLICY_V1.replace("pool.remaining", "pool.no_such_field")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATELORD_")}
    env["COLUMNS"] = "200"
    return env


def ratelord(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RATELORD, "--url", url, *args], capture_output=True, text=True, timeout=60, env=_env()
    )


def ok(url: str, *args: str) -> str:
    done = ratelord(url, *args)
    assert done.returncode == 0, f"ratelord {' '.join(args)}: {done.stderr}"
    return done.stdout


def as_json(url: str, *args: str) -> Any:
    return json.loads(ok(url, *args, "--json"))


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture
def small(daemon_factory: Callable[..., RunningDaemon]) -> RunningDaemon:
    return daemon_factory(config=SMALL_MOCK, env={"MOCK_TOKEN": SECRET}, policy=POLICY_V1)


def _add(url: str, identity_id: str, principal: str) -> str:
    return ok(
        url, "identity", "add", identity_id, "--provider", "mock", "--principal", principal,
        "--secret-ref", "env:MOCK_TOKEN", "--label", "team=e2e",
    )  # fmt: skip


def _pool_polled(url: str, pool_id: str) -> bool:
    pools = as_json(url, "pools")["pools"]
    return any(p["pool_id"] == pool_id and p["remaining"] is not None for p in pools)


# ------------------------------------------------------------------ identities (D-06)


@pytest.mark.acceptance("D-06")
def test_identity_lifecycle_through_the_cli(small: RunningDaemon):
    url = small.url
    added = _add(url, "id-a", "acct-1")
    assert "registered identity id-a" in added

    listed = as_json(url, "identity", "list")["identities"]
    assert [i["identity_id"] for i in listed] == ["id-a"]
    assert listed[0]["labels"] == {"team": "e2e"}
    table = ok(url, "identity", "list")
    assert any(line.split()[:3] == ["id-a", "active", "mock"] for line in table.splitlines())
    assert "id-a" in ok(url, "identity", "show", "id-a")

    quarantined = as_json(url, "identity", "quarantine", "id-a", "--reason", "suspected leak")
    assert quarantined["status"] == "quarantined"
    rotated = ok(url, "identity", "rotate", "id-a", "--secret-ref", "env:MOCK_TOKEN")
    assert "rotated identity id-a" in rotated
    assert as_json(url, "identity", "revoke", "id-a", "--reason", "done")["status"] == "revoked"

    types = [
        e["event_type"]
        for e in as_json(url, "events", "--identity", "id-a", "--limit", "1000")["events"]
    ]
    for expected in (
        "identity_registered",
        "identity_quarantined",
        "identity_rotated",
        "identity_revoked",
    ):
        assert expected in types
    everything = ok(url, "events", "--limit", "1000") + json.dumps(listed) + added + rotated
    assert SECRET not in everything
    assert SECRET not in small.logs()
    for path in small.workdir.glob("ratelord.db*"):  # the database, its WAL and shm files
        assert SECRET.encode() not in path.read_bytes(), path


def test_unknown_identity_is_one_line_exit_1(small: RunningDaemon):
    done = ratelord(small.url, "identity", "show", "nobody")
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("error: ") and "[" in done.stderr


# ------------------------------------------------------------------ intent, status, pools


def test_intent_moves_the_pool_to_crit_and_status_shows_it(small: RunningDaemon):
    url = small.url
    _add(url, "id-a", "acct-1")
    assert eventually(lambda: _pool_polled(url, POOL)), "the mock pool was never polled"

    approved = ok(
        url, "intent", "--agent", "a1", "--identity", "id-a", "--workload", "build",
        "--resource", "requests", "--cost", "85",
    )  # fmt: skip
    assert approved.startswith("decision  APPROVED"), approved
    assert POOL in approved

    # An approved burst alone is not a burn rate that will last (WARN at 15 left); a consumer
    # ratelord cannot see takes the pool under 5 %, which the next poll shows: CRIT.
    spent = {"principal": "acct-1", "resource": "requests", "amount": 12}
    assert httpx.post(f"{url}/v1/admin/mock/external-usage", json=spent).status_code == 200

    def crit() -> bool:
        pool = next(p for p in as_json(url, "pools")["pools"] if p["pool_id"] == POOL)
        return pool["remaining"] <= 4 and pool["status"] == "CRIT"

    assert eventually(crit), "the pool never read CRIT"
    status = ok(url, "status")
    assert "posture CRIT" in status
    assert any(line.startswith(POOL) and "CRIT" in line for line in status.splitlines())
    detail = ok(url, "pools", POOL)
    assert detail.splitlines()[0].split() == [POOL, "CRIT"]
    assert "id-a" in detail

    denied = ratelord(
        url, "intent", "--agent", "a1", "--identity", "id-a", "--resource", "requests",
        "--cost", "10", "--json", "--fail-on-deny",
    )  # fmt: skip
    assert denied.returncode == 2, denied.stderr
    answer = json.loads(denied.stdout)
    assert answer["decision"] == "deny_with_reason"
    assert "keep-ten" in " ".join(answer["evaluation"]["rules_fired"])

    decided = as_json(url, "events", "--type", "intent_decided", "--agent", "a1")["events"]
    assert [e["payload"]["decision"] for e in decided] == ["approve", "deny_with_reason"]
    lines = ok(url, "events", "--type", "intent_decided").splitlines()
    assert lines[0].endswith("[a1] build -> APPROVED")
    assert "DENIED" in lines[1]


def test_explain_shared_and_isolated(small: RunningDaemon):
    url = small.url
    for identity_id, principal in (("id-a", "acct-1"), ("id-b", "acct-1"), ("id-c", "acct-2")):
        _add(url, identity_id, principal)
    assert ok(url, "pools", "explain", "id-a", "id-b").startswith("SHARED")
    assert ok(url, "pools", "explain", "id-a", "id-c").startswith("ISOLATED")


# ------------------------------------------------------------------ policy


def test_reload_rejects_a_bad_file_and_keeps_the_old_policy(small: RunningDaemon):
    url = small.url
    policy_file = small.workdir / "policy.yaml"
    before = as_json(url, "policy", "show")
    assert "keep-ten" in ok(url, "policy", "show")

    policy_file.write_text(POLICY_BAD)
    rejected = ratelord(url, "reload")
    assert rejected.returncode == 1
    assert len(rejected.stderr.splitlines()) == 1
    assert "[policy_rejected]" in rejected.stderr
    assert "stays in force" in rejected.stderr
    assert as_json(url, "policy", "show")["version"] == before["version"]

    policy_file.write_text(POLICY_V2)
    reloaded = ok(url, "reload")
    after = as_json(url, "policy", "show")
    assert after["version"] != before["version"]
    assert after["version"] in reloaded
    assert "keep-five" in ok(url, "policy", "show")


def test_policy_check_needs_no_daemon(tmp_path: Path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(POLICY_V1)
    bad.write_text(POLICY_BAD)
    nowhere = f"http://127.0.0.1:{free_port()}"
    assert "keep-ten" in ok(nowhere, "policy", "check", str(good))
    done = ratelord(nowhere, "policy", "check", str(bad))
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert str(bad) in done.stderr and "keep-ten" in done.stderr


# ------------------------------------------------------------------ admin


@pytest.mark.acceptance("D-05")
def test_rebuild_equals_full_replay(small: RunningDaemon):
    url = small.url
    _add(url, "id-a", "acct-1")
    ok(url, "intent", "--agent", "a1", "--identity", "id-a", "--resource", "requests")
    result = as_json(url, "rebuild")
    assert result["equal"] is True
    assert result["events"] > 0
    assert ok(url, "rebuild").startswith("rebuild equal to a full replay")


def test_daemon_down_is_exit_3_and_one_line():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["status"], ["identity", "list", "--json"], ["events", "--follow"]):
        done = ratelord(url, *args)
        assert done.returncode == 3, args
        assert done.stdout == ""
        assert done.stderr == (
            f"error: cannot reach ratelord-d at {url} (connection refused). "
            "Start it with 'ratelord-d' or point --url/RATELORD_URL at it.\n"
        )


# ------------------------------------------------------------------ follow


class _Follower:
    """``ratelord events --follow --json`` in the background, its lines in a queue."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen(
            [RATELORD, "--url", url, "events", "--follow", "--json", "--limit", "1000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> list:
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(event)
            if predicate(event):
                return seen
        raise AssertionError(f"not seen within {timeout}s; got {[e['event_type'] for e in seen]}")

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=10)
        return err


@pytest.mark.slow
def test_follow_streams_live_and_survives_a_daemon_restart(small: RunningDaemon):
    url = small.url
    follower = _Follower(url)
    try:
        follower.until(lambda e: e["event_type"] == "system_started")
        _add(url, "id-a", "acct-1")
        ok(url, "intent", "--agent", "a1", "--identity", "id-a", "--resource", "requests")
        before = follower.until(lambda e: e["event_type"] == "intent_decided")

        small.restart()
        ok(url, "intent", "--agent", "a2", "--identity", "id-a", "--resource", "requests")
        after = follower.until(
            lambda e: e["event_type"] == "intent_decided" and e["dimensions"]["agent_id"] == "a2"
        )
    finally:
        err = follower.stop()
    seqs = [e["seq"] for e in before + after]
    assert seqs == sorted(set(seqs)), "an event was shown twice or out of order"
    assert sum(e["event_type"] == "system_started" for e in after) == 1, err
