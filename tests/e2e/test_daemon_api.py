"""The real ``ratelord-d``'s HTTP surface: bad input, SSE resume, secrets, rebuild (issue 2)."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.daemon import (
    BIN,
    RunningDaemon,
    events,
    github_headers,
    make_daemon,
    register,
)

pytestmark = pytest.mark.e2e

Factory = Callable[..., RunningDaemon]
MAX_BODY = 2048
SMALL_BODY = {"server": {"max_body_bytes": MAX_BODY}}
INTENT = {"agent_id": "a", "identity_id": "pat:a", "resource": "core", "cost": 1}


def _prepare(d: RunningDaemon) -> RunningDaemon:
    with d.client() as http:
        register(http, "pat:a", "alice", provider_id="github")
        http.post("/v1/usage", json={"identity_id": "pat:a", "headers": github_headers(4000)})
    return d


@pytest.fixture
def api(daemon_factory: Factory) -> RunningDaemon:
    """A daemon with a small body limit and one identity whose pool came from headers."""
    return _prepare(daemon_factory(config=SMALL_BODY))


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """Like ``api`` but one daemon for a whole table of requests that change nothing."""
    d = make_daemon(tmp_path_factory.mktemp("shared"), config=SMALL_BODY).start()
    try:
        yield _prepare(d)
    finally:
        d.kill()


# ------------------------------------------------------------------ bad input

#: name -> (method, path, content, status, error code)
BAD_REQUESTS: dict[str, tuple[str, str, bytes | None, int, str]] = {
    "malformed-json": ("POST", "/v1/intent", b'{"agent_id": "a",', 400, "malformed_json"),
    "empty-body": ("POST", "/v1/intent", b"", 400, "malformed_json"),
    "wrong-type": (
        "POST", "/v1/intent", b'{"agent_id": 5, "identity_id": "pat:a"}', 400, "invalid_request"
    ),
    "negative-cost": (
        "POST", "/v1/intent", json.dumps({**INTENT, "cost": -1}).encode(), 400, "invalid_request"
    ),
    "unknown-field": (
        "POST", "/v1/intent", json.dumps({**INTENT, "bogus": 1}).encode(), 400, "invalid_request"
    ),
    "unknown-identity-on-usage": (
        "POST", "/v1/usage", b'{"identity_id": "nobody", "cost": 1}', 404, "unknown_identity"
    ),
    "oversized-body": (
        "POST", "/v1/intent",
        json.dumps({**INTENT, "labels": {"pad": "x" * MAX_BODY}}).encode(), 413, "body_too_large",
    ),
    "json-array": ("POST", "/v1/usage", b"[]", 400, "invalid_request"),
    "duplicate-identity": (
        "POST", "/v1/identities",
        b'{"identity_id": "pat:a", "provider_id": "github", "principal": "alice"}',
        409, "identity_exists",
    ),
    "credential-in-labels": (
        "POST", "/v1/intent",
        json.dumps({**INTENT, "labels": {"note": "sk-ant-api03-" + "x" * 40}}).encode(),
        400, "raw_credential",
    ),
    "credential-header-in-usage": (
        "POST", "/v1/usage",
        b'{"identity_id": "pat:a", "headers": {"Authorization": "Bearer abc"}}',
        400, "raw_credential",
    ),
    "unknown-path": ("GET", "/v1/nothing-here", None, 404, "not_found"),
    "wrong-method": ("DELETE", "/v1/intent", None, 405, "method_not_allowed"),
    "bad-query-param": ("GET", "/v1/events?limit=many", None, 400, "invalid_parameter"),
    "unknown-query-param": ("GET", "/v1/events?colour=red", None, 400, "invalid_parameter"),
    "raw-credential": (
        "POST", "/v1/identities",
        json.dumps({"identity_id": "pat:x", "provider_id": "github", "principal": "x",
                    "token": "ghp_" + "a1B2" * 9}).encode(),
        400, "raw_credential",
    ),
    "bad-secret-ref": (
        "POST", "/v1/identities",
        b'{"identity_id": "pat:y", "provider_id": "github", "principal": "y", '
        b'"secret_ref": "vault:kv/github"}',
        400, "invalid_secret_ref",
    ),
    "unknown-provider": (
        "POST", "/v1/identities",
        b'{"identity_id": "pat:z", "provider_id": "nope", "principal": "z"}',
        400, "unknown_provider",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_its_status_and_error_body_and_the_daemon_stays_healthy(
    shared_api: RunningDaemon, case: str
) -> None:
    method, path, content, status, code = BAD_REQUESTS[case]
    with shared_api.client() as http:
        before = http.get("/v1/health").json()["high_water_seq"]
        response = http.request(
            method, path, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code
        assert error["message"]
        assert error["request_id"] == response.headers["x-request-id"]
        health = http.get("/v1/health").json()
        assert health["status"] == "ok"
        assert health["high_water_seq"] == before, "a refused request must not be logged"
        assert http.post("/v1/intent", json=INTENT).json()["decision"] == "approve"


def test_an_oversized_chunked_body_is_413_without_a_content_length(
    shared_api: RunningDaemon,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"agent_id": "a", "identity_id": "pat:a", "labels": {"pad": "'
        for _ in range(MAX_BODY // 100 + 1):
            yield b"x" * 100
        yield b'"}}'

    with shared_api.client() as http:
        response = http.post("/v1/intent", content=chunks())
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"
        assert http.get("/v1/health").json()["status"] == "ok"


# ------------------------------------------------------------------ SSE


def _read_sse(response: httpx.Response, until_seq: int) -> list[int]:
    """The ``id:`` of each event on the stream until ``until_seq`` has been seen."""
    seen: list[int] = []
    for line in response.iter_lines():
        if line.startswith("id: "):
            seen.append(int(line[4:]))
            if seen[-1] >= until_seq:
                return seen
    raise AssertionError(f"stream ended after {seen[-5:]} before seq {until_seq}")


def test_sse_resumes_after_a_reconnect_with_last_event_id_without_gaps_or_duplicates(
    api: RunningDaemon,
) -> None:
    with api.client() as http:
        first_target = http.get("/v1/health").json()["high_water_seq"]
        with http.stream("GET", "/v1/events", params={"stream": "true", "after_seq": 0}) as s:
            first = _read_sse(s, first_target)
        for _ in range(20):  # logged while nobody listens
            http.post("/v1/intent", json=INTENT)
        second_target = http.get("/v1/health").json()["high_water_seq"]
        headers = {"last-event-id": str(first[-1])}
        with http.stream("GET", "/v1/events", params={"stream": "true"}, headers=headers) as s:
            for _ in range(5):  # and some while it is back-filling or live
                http.post("/v1/intent", json=INTENT)
            second = _read_sse(s, second_target + 10)
        logged = [e["seq"] for e in events(http)]
    seen = first + second
    assert len(seen) == len(set(seen)), "duplicates on the stream"
    assert seen == logged[: len(seen)], "gap or reordering on the stream"
    assert second[0] == first[-1] + 1


# ------------------------------------------------------------------ D-06

FAKE_TOKEN = "ghp_" + "Zq9" * 12  # shaped like a GitHub token; no such token exists


@pytest.mark.acceptance("D-06")
def test_a_referenced_secret_appears_nowhere_and_the_cli_lists_the_identity(
    daemon_factory: Factory,
) -> None:
    d = daemon_factory(env={"ACCEPTANCE_TOKEN": FAKE_TOKEN})
    bodies: list[bytes] = []
    with d.client() as http:
        created = http.post(
            "/v1/identities",
            json={"identity_id": "pat:alice", "provider_id": "github", "principal": "alice",
                  "secret_ref": "env:ACCEPTANCE_TOKEN", "labels": {"team": "infra"}},
        )  # fmt: skip
        assert created.status_code == 201
        assert created.json()["token_fingerprint"]
        bodies.append(created.content)
        rotated = http.post("/v1/identities/pat:alice/rotate", json={})
        bodies.append(rotated.content)
        http.post("/v1/usage", json={"identity_id": "pat:alice", "headers": github_headers(10)})
        for path in (
            "/v1/identities",
            "/v1/identities/pat:alice",
            "/v1/pools",
            "/v1/graph",
            "/v1/events?limit=1000",
            "/metrics",
            "/v1/stats",
            "/v1/health",
        ):
            bodies.append(http.get(path).content)  # fmt: skip
        registered = events(http, type="identity_registered")
    assert [e["payload"]["identity_id"] for e in registered] == ["pat:alice"]
    cli = subprocess.run(
        [str(BIN / "ratelord"), "--url", d.url, "identity", "list", "--json"],
        capture_output=True, text=True, timeout=60, env=d.env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    listed = json.loads(cli.stdout)
    listed = listed["identities"] if isinstance(listed, dict) else listed
    assert [i["identity_id"] for i in listed] == ["pat:alice"]
    wal = Path(f"{d.db_path}-wal").read_bytes()
    assert d.stop() == 0
    secret = FAKE_TOKEN.encode()
    places = {"db": d.db_path.read_bytes(), "wal": wal, "logs": d.logs().encode(),
              "cli": cli.stdout.encode() + cli.stderr.encode()}  # fmt: skip
    places.update({f"response {i}": body for i, body in enumerate(bodies)})
    for place, data in places.items():
        assert secret not in data, f"the secret leaked into {place}"
        assert secret[4:] not in data, f"the secret's body leaked into {place}"


# ------------------------------------------------------------------ D-05


def _pools(http: httpx.Client) -> list[dict[str, Any]]:
    pools = http.get("/v1/pools").json()["pools"]
    for p in pools:
        p.pop("stale_seconds")
    return pools


@pytest.mark.acceptance("D-05")
def test_rebuild_drops_snapshots_and_equals_a_full_replay(api: RunningDaemon) -> None:
    with api.client() as http:
        for i in range(20):
            http.post("/v1/intent", json={**INTENT, "agent_id": f"a{i % 4}", "cost": 3})
        assert http.post("/v1/admin/snapshot").status_code == 200
        before = _pools(http)
        with http.stream("POST", "/v1/admin/rebuild") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/x-ndjson")
            lines = [json.loads(line) for line in response.iter_lines() if line]
        after = _pools(http)
    result = lines[-1]["result"]
    assert result["equal"] is True, result["differences"]
    assert result["snapshots_dropped"] >= 1
    assert result["events"] > 20
    assert after == before


@pytest.mark.acceptance("D-05")
@pytest.mark.parametrize("checksum", ["stale", "matching"])
def test_a_corrupt_snapshot_is_ignored_with_a_warning_and_state_is_replayed(
    api: RunningDaemon, checksum: str
) -> None:
    with api.client() as http:
        for _ in range(10):
            http.post("/v1/intent", json={**INTENT, "cost": 7})
        before = _pools(http)
    assert api.stop(signal.SIGTERM) == 0  # writes a snapshot on the way out
    garbage = b"\x00not a snapshot\xff" * 8
    with sqlite3.connect(api.db_path) as conn:
        count = conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
        assert count >= 1
        digest = hashlib.sha256(garbage).hexdigest() if checksum == "matching" else "0" * 64
        conn.execute("UPDATE snapshots SET state = ?, checksum = ?", (garbage, digest))
    conn.close()
    api.start()
    with api.client() as http:
        assert _pools(http) == before
        assert http.get("/v1/health").json()["status"] == "ok"
    warnings = [
        json.loads(line)
        for line in api.logs().splitlines()
        if line.startswith("{") and '"warning"' in line and "snapshot" in line
    ]
    assert warnings, "no warning about the corrupt snapshot"
    assert "ignored" in warnings[0]["msg"]
