"""Registrations that could never work are refused with the fix (issue 15, items 5 and 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes import FakeGitHub
from tests.support.daemon import RunningDaemon, events, pool, register, wait_for

pytestmark = pytest.mark.e2e

Factory = Callable[..., RunningDaemon]
RATELORD = str(Path(sys.executable).parent / "ratelord")
TOKEN = "ghp_" + "e2eFile0" * 5


def test_a_github_identity_is_refused_where_nothing_polls_github(daemon: RunningDaemon) -> None:
    """Without a github provider its principal is never learned: refused, not 'retry' forever."""
    with daemon.client() as http:
        body = {"identity_id": "pat:a", "provider_id": "github", "secret_ref": "env:GITHUB_TOKEN"}
        refused = http.post("/v1/identities", json=body)
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "provider_not_configured"
        assert "providers.github" in error["message"] and "principal" in error["message"]
        assert "retry" not in error["message"]
        assert not events(http, type="identity_registered")
        # With its principal declared, its pools are learned from reported usage headers.
        body = {"identity_id": "pat:b", "provider_id": "github", "principal": "bob"}
        assert http.post("/v1/identities", json=body).status_code == 201


def test_a_world_readable_secret_file_is_refused_with_chmod(
    mock_daemon: RunningDaemon, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATELORD_")}
    result = subprocess.run(
        [
            RATELORD,
            "--url",
            mock_daemon.url,
            "identity",
            "add",
            "id-x",
            "--provider",
            "mock",
            "--principal",
            "acct-1",
            "--secret-ref",
            "file:/etc/passwd",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "200"},
    )
    assert result.returncode != 0, result.stdout
    said = " ".join((result.stdout + result.stderr).split())
    assert "chmod 600 /etc/passwd" in said, said
    assert "retry" not in said

    secret = tmp_path / "token"
    secret.write_text("a-mock-token\n")
    secret.chmod(0o600)
    body = {"identity_id": "id-y", "provider_id": "mock", "principal": "acct-1"}
    with mock_daemon.client() as http:
        ok = http.post("/v1/identities", json={**body, "secret_ref": f"file:{secret}"})
        assert ok.status_code == 201, ok.text
        secret.chmod(0o644)
        rotated = http.post("/v1/identities/id-y/rotate", json={"secret_ref": f"file:{secret}"})
        assert rotated.status_code == 400
        assert rotated.json()["error"]["code"] == "insecure_secret_file"
        assert f"chmod 600 {secret}" in rotated.json()["error"]["message"]
        assert [
            e["dimensions"]["identity_id"] for e in events(http, type="identity_registered")
        ] == ["id-y"]


def test_a_secret_file_gone_world_readable_says_chmod_not_retry(
    daemon_factory: Factory, tmp_path: Path
) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN)
    secret.chmod(0o600)
    with FakeGitHub({TOKEN: "alice"}) as github:
        config = {"providers": {"github": {"base_url": github.url, "poll_interval_seconds": 1}}}
        d = daemon_factory(config=config)
        with d.client() as http:
            body = {"identity_id": "pat:a", "provider_id": "github", "secret_ref": f"file:{secret}"}
            assert http.post("/v1/identities", json=body).status_code == 201
            wait_for(lambda: events(http, type="usage_observed"), 10, "a first poll")
            secret.chmod(0o644)
            wait_for(lambda: events(http, type="provider_error"), 10, "the failing poll")
            health = http.get("/v1/health").json()
            said = " ".join(health["reasons"])
            assert f"chmod 600 {secret}" in said, said
            assert "retry" not in said
            decision = http.post(
                "/v1/intent", json={"agent_id": "a", "identity_id": "pat:a", "resource": "core"}
            ).json()
            assert "retry" not in (decision.get("reason") or ""), decision


@pytest.mark.acceptance("D-07")
def test_a_registered_identity_is_polled_within_5_s_and_observations_are_logged(
    mock_daemon: RunningDaemon,
) -> None:
    with mock_daemon.client() as http:
        register(http, "id-a", "acct-1")
        wait_for(lambda: pool(http, "mock:requests:acct-1"), timeout=5, what="the first poll")
        registered = events(http, type="identity_registered")[0]
        poll = events(http, type="provider_poll_observed", identity_id="id-a")[0]
        kinds = {e["event_type"] for e in events(http, identity_id="id-a")}
    assert poll["ts_event"] - registered["ts_event"] < 5.0
    assert {"constraint_observed", "usage_observed"} <= kinds
    assert poll["source"]["origin_kind"] == "provider"
