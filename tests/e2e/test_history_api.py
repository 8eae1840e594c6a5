"""The history endpoints over HTTP: aggregates, the state at an instant, sandboxed replay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ratelord.engine.state import State
from ratelord.history.synth import busy_end, generate
from ratelord.store.replay import replay_into
from ratelord.store.sqlite import EventReader
from tests.support.daemon import RunningDaemon, events, make_daemon

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
STRICT = """
policies:
  - id: strict
    target: global
    kind: hard
    rules:
      - name: no-background
        when: 'intent.urgency == "background"'
        action: deny
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """The last six hours of a recorded working day."""
    workdir = tmp_path_factory.mktemp("history")
    daemon = make_daemon(workdir)
    generate(daemon.db_path, days=0.25, scale=0.8, seed=5, end=busy_end(time.time()))
    daemon.start()
    http = daemon.client()
    for _ in range(200):
        if http.get("/v1/history/status").json()["ready"]:
            break
        time.sleep(0.1)
    yield daemon
    http.close()
    daemon.stop()


@pytest.fixture
def http(recorded: RunningDaemon) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=recorded.url, timeout=60.0) as client:
        yield client


def full_replay(db: Path, seq: int) -> State:
    reader = EventReader(db)
    try:
        state = State()
        replay_into(state, reader, 0, seq)
        return state
    finally:
        reader.close()


def test_history_aggregates_what_the_log_holds(http: httpx.Client) -> None:
    body = http.get("/v1/history", params={"since": "7d", "bucket": "1h"}).json()
    decided = events(http, type="intent_decided")
    assert body["totals"]["intents"] == len(decided)
    denied = sum(1 for e in decided if e["payload"]["decision"] == "deny_with_reason")
    assert body["totals"]["denied"] == denied
    assert len(body["ts"]) == len(body["intents"]) in (7 * 24, 7 * 24 + 1)
    consumed = sum(sum(v or 0 for v in p["burn_per_hour"]) for p in body["pools"])
    charged = sum(sum(e["payload"]["charges"].values()) for e in decided)
    assert consumed == pytest.approx(charged, rel=1e-6)
    assert {r["id"] for r in body["top_agents"]} <= set(body["agent_identities"])


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_state_at_an_instant_equals_a_full_replay(
    http: httpx.Client, recorded: RunningDaemon, fraction: float
) -> None:
    history = http.get("/v1/history", params={"since": "7d"}).json()
    at = history["first_ts"] + fraction * (history["last_ts"] - history["first_ts"])
    body = http.get("/v1/history/state", params={"at": str(at)}).json()
    expected = full_replay(recorded.db_path, body["seq"])
    assert {p["pool_id"]: p["remaining"] for p in body["pools"]} == {
        pool_id: pool.remaining for pool_id, pool in expected.pools.items()
    }
    assert {p["pool_id"]: p["status"] for p in body["pools"]} == {
        pool_id: pool.posture for pool_id, pool in expected.pools.items()
    }
    assert all(e["ts_event"] <= at for e in body["recent"])
    assert body["recent"][-1]["seq"] == body["seq"]


def test_replay_compares_without_touching_the_log(http: httpx.Client) -> None:
    before = len(events(http, type="intent_decided"))
    body = http.post("/v1/replay", json={"since": "7d", "traffic": 2.0}).json()
    assert body["scenario"]["intents"] == pytest.approx(2 * body["baseline"]["intents"], abs=2)
    assert body["baseline"]["intents"] == before
    assert body["scenario"]["denial_rate"] > body["baseline"]["denial_rate"]
    same = http.post("/v1/replay", json={"since": "7d"}).json()
    assert same["scenario"]["intents"] == same["baseline"]["intents"]
    assert len(events(http, type="intent_decided")) == before


def test_replay_on_the_command_line(recorded: RunningDaemon, tmp_path: Path) -> None:
    cli = [str(BIN / "ratelord"), "--url", recorded.url, "replay", "--since", "7d"]
    env = {**os.environ, "COLUMNS": "80"}
    as_json = subprocess.run([*cli, "--traffic", "2", "--json"], capture_output=True, env=env)
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["scenario"]["denied"] > body["baseline"]["denied"]
    policy = tmp_path / "strict.yaml"
    policy.write_text(STRICT)
    shown = subprocess.run(
        [*cli, "--policy", str(policy), "--limit", "0.5"], capture_output=True, env=env, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert "denial rate" in shown.stdout and "strict/no-background" in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    missing = subprocess.run(
        [*cli, "--policy", str(tmp_path / "nope.yaml")], capture_output=True, text=True
    )
    assert missing.returncode == 1 and "cannot read the policy file" in missing.stderr


def test_replay_under_another_policy(http: httpx.Client) -> None:
    body = http.post("/v1/replay", json={"since": "7d", "policy": STRICT}).json()
    assert "strict/no-background" in body["scenario"]["triggers"]
    assert body["scenario"]["denied"] > body["baseline"]["denied"]


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/v1/history", {"since": "yesterday"}, "invalid_parameter"),
        ("/v1/history", {"since": "800d"}, "conflicting_parameters"),
        ("/v1/history", {"since": "1h", "until": "2h"}, "conflicting_parameters"),
        ("/v1/history", {"bucket": "10"}, "invalid_parameter"),
        ("/v1/history/state", {"at": "soon"}, "invalid_parameter"),
        ("/v1/history/events/x", {}, "invalid_parameter"),
    ],
)
def test_bad_queries_are_precise_400s(
    http: httpx.Client, path: str, params: dict[str, str], code: str
) -> None:
    response = http.get(path, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"traffic": 0}, "invalid_request"),
        ({"since": "1h", "until": "2h"}, "conflicting_parameters"),
        ({"policy": "policies: [{id: x}]"}, "policy_rejected"),
        ({"clones": 3}, "conflicting_parameters"),
        ({"speed": 2}, "invalid_request"),
    ],
)
def test_bad_scenarios_are_precise_400s(
    http: httpx.Client, body: dict[str, object], code: str
) -> None:
    response = http.post("/v1/replay", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


def test_an_event_comes_with_its_intent(http: httpx.Client) -> None:
    decided = events(http, type="intent_decided")[-1]
    body = http.get(f"/v1/history/events/{decided['seq']}").json()
    assert body["event"]["event_id"] == decided["event_id"]
    kinds = {e["event_type"] for e in body["related"]}
    assert "intent_submitted" in kinds
    assert all(e["correlation_id"] == decided["correlation_id"] for e in body["related"])
    assert http.get("/v1/history/events/999999999").status_code == 404


def test_documented_in_openapi(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/v1/history", "/v1/history/state", "/v1/replay", "/v1/history/events/{seq}"):
        assert path in paths
    assert "requestBody" in paths["/v1/replay"]["post"]


def test_the_page_is_served_and_root_redirects(http: httpx.Client) -> None:
    root = http.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    page = http.get("/ui/timeline?at=2026-01-01T00:00:00Z")
    assert page.status_code == 200 and b'type="module"' in page.content
    script = http.get("/ui/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert http.get("/ui/static/vendor/uplot/LICENSE").status_code == 200
    assert http.get("/ui/static/nope.js").status_code == 404
