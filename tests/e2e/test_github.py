"""The real ``ratelord-d`` polling a local fake GitHub (acceptance D-06, D-07, P-03)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from tests.fakes import FakeGitHub
from tests.support.daemon import RunningDaemon

pytestmark = pytest.mark.e2e

ALICE_TOKEN = "ghp_" + "e2eAlice" * 5
ALICE_CI_TOKEN = "ghp_" + "e2eAlCi" * 5
ENV = {"GH_TOKEN_ALICE": ALICE_TOKEN, "GH_TOKEN_ALICE_CI": ALICE_CI_TOKEN}
CORE = "github:core:user/alice"
T = TypeVar("T")


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub({ALICE_TOKEN: "alice", ALICE_CI_TOKEN: "alice"}) as fake:
        yield fake


def github_config(base_url: str) -> dict[str, Any]:
    return {
        "providers": {
            "github": {"base_url": base_url, "poll_interval_seconds": 1, "timeout_seconds": 1}
        }
    }


@pytest.fixture
def gh_daemon(github: FakeGitHub, daemon_factory: Callable[..., RunningDaemon]) -> RunningDaemon:
    return daemon_factory(config=github_config(github.url), env=ENV)


def register(
    daemon: RunningDaemon, identity_id: str = "pat:alice", ref: str = "env:GH_TOKEN_ALICE"
) -> dict[str, Any]:
    with daemon.client() as http:
        response = http.post(
            "/v1/identities",
            json={"identity_id": identity_id, "provider_id": "github", "secret_ref": ref},
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def get(daemon: RunningDaemon, path: str, **params: Any) -> Any:
    with daemon.client() as http:
        response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def pools(daemon: RunningDaemon) -> dict[str, dict[str, Any]]:
    return {pool["pool_id"]: pool for pool in get(daemon, "/v1/pools")["pools"]}


def events(daemon: RunningDaemon, event_type: str, after_seq: int = 0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = get(
        daemon, "/v1/events", type=event_type, after_seq=after_seq, limit=1000
    )["events"]
    return found


def high_water(daemon: RunningDaemon) -> int:
    return int(get(daemon, "/v1/health")["high_water_seq"])


def wait_for(check: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy (the daemon works on its own time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def wait_for_pools(daemon: RunningDaemon, *ids: str, timeout: float = 30.0) -> dict[str, Any]:
    return wait_for(
        lambda: (found := pools(daemon)) and all(i in found for i in ids) and found,
        timeout,
        f"pools {ids}",
    )


# --------------------------------------------------------------------------- polling


def test_pools_appear_within_five_seconds_of_registration(
    gh_daemon: RunningDaemon, github: FakeGitHub
) -> None:
    registered = time.time()
    register(gh_daemon)
    ids = [f"github:{r}:user/alice" for r in ("core", "search", "graphql", "code_search")]
    found = wait_for_pools(gh_daemon, *ids, "github:dependency_snapshots:user/alice")
    # D-07: when the poll reached GitHub, not when this test's own requests got their
    # turn on a machine the other test workers keep busy.
    first_poll = github.requests_to("/rate_limit")[0].at
    assert first_poll - registered < 5.0, f"first poll {first_poll - registered:.2f}s after"

    core, graphql, search = found[CORE], found["github:graphql:user/alice"], found[ids[1]]
    assert (core["limit"], core["remaining"]) == (5000, github.bucket("alice", "core").remaining)
    assert (core["unit"], core["window"]) == ("requests", "fixed")
    assert core["principal"].endswith("user/alice")
    assert (graphql["unit"], search["limit"]) == ("points", 30)
    assert core["members"] == ["pat:alice"]
    assert [r.user for r in github.requests_to("/rate_limit")][:1] == ["alice"]
    assert events(gh_daemon, "constraint_observed")
    identity = get(gh_daemon, "/v1/identities/pat:alice")
    assert identity["principal"] == "github:user/alice"
    assert identity["token_fingerprint"].startswith("sha256:")


def test_two_tokens_of_one_user_share_pools(gh_daemon: RunningDaemon) -> None:
    register(gh_daemon, "pat:alice")
    register(gh_daemon, "pat:alice-ci", "env:GH_TOKEN_ALICE_CI")
    wait_for(
        lambda: (
            sorted(pools(gh_daemon).get(CORE, {}).get("members", []))
            == ["pat:alice", "pat:alice-ci"]
        ),
        10,
        "both identities in one core pool",
    )


def test_quota_spent_behind_ratelords_back_is_drift(
    gh_daemon: RunningDaemon, github: FakeGitHub
) -> None:
    register(gh_daemon)
    wait_for_pools(gh_daemon, CORE)
    after = high_water(gh_daemon)
    github.spend("alice", "core", 1000)
    spent_at = time.time()

    drift = wait_for(
        lambda: [e for e in events(gh_daemon, "drift_detected", after) if e["pool_id"] == CORE],
        30,
        "drift_detected on github:core",
    )
    # P-03's "next poll", however long a busy machine makes the polls: the daemon logged
    # the drift before it asked GitHub again.
    polls = [r.at for r in github.requests_to("/rate_limit") if r.at > spent_at]
    assert len(polls) < 2 or drift[0]["ts_event"] < polls[1], (drift[0]["ts_event"], polls)
    assert drift[0]["provider_id"] == "github"
    remaining = github.bucket("alice", "core").remaining
    wait_for(lambda: pools(gh_daemon)[CORE]["remaining"] == remaining, 30, "pool snapped to GitHub")


def test_enterprise_server_base_url(daemon_factory: Callable[..., RunningDaemon]) -> None:
    with FakeGitHub({ALICE_TOKEN: "alice"}, prefix="/api/v3") as ghes:
        daemon = daemon_factory(config=github_config(ghes.url), env=ENV)
        register(daemon)
        wait_for_pools(daemon, CORE, "github:search:user/alice")
        assert {r.path for r in ghes.requests} >= {"/user", "/rate_limit"}


# --------------------------------------------------------------------------- failures


#: failure -> the provider_error kind it must produce
FAILURES = {
    "401": "auth",
    "403-secondary": "rate_limited",
    "429": "rate_limited",
    "500": "server",
    "timeout": "timeout",
    "truncated": "parse",
}


def inject(github: FakeGitHub, failure: str) -> None:
    """Two failed polls in a row, so the degraded state lasts long enough to be seen."""
    at: dict[str, Any] = {"path": "/rate_limit", "times": 2}
    if failure == "timeout":
        github.timeout_next(3, **at)  # the daemon's timeout is 1 s
    elif failure == "truncated":
        github.truncate_next(**at)
    else:  # retry-after 1 s, which wins over a 429's reset an hour away
        retry_after = 1 if FAILURES[failure] == "rate_limited" else None
        github.fail_next(failure, retry_after=retry_after, **at)


@pytest.mark.slow
@pytest.mark.parametrize("failure", list(FAILURES))
def test_failure_degrades_health_then_recovers(
    gh_daemon: RunningDaemon, github: FakeGitHub, failure: str
) -> None:
    kind = FAILURES[failure]
    register(gh_daemon)
    wait_for_pools(gh_daemon, CORE)
    wait_for(lambda: get(gh_daemon, "/v1/health")["status"] == "ok", 30, "health ok")
    after = high_water(gh_daemon)
    inject(github, failure)

    error = wait_for(
        lambda: events(gh_daemon, "provider_error", after), 10, f"provider_error after {failure}"
    )[0]
    assert (error["provider_id"], error["payload"]["kind"]) == ("github", kind)
    assert error["dimensions"]["identity_id"] == "pat:alice"
    health = wait_for(
        lambda: (h := get(gh_daemon, "/v1/health"))["status"] == "degraded" and h,
        5,
        "health degraded",
    )
    assert any("github" in reason for reason in health["reasons"])
    wait_for(lambda: get(gh_daemon, "/v1/health")["status"] == "ok", 30, "health back to ok")
    assert github.pending_failures == 0


# --------------------------------------------------------------------------- secrets


def test_token_appears_nowhere(gh_daemon: RunningDaemon, github: FakeGitHub) -> None:
    token = ALICE_TOKEN.encode()
    register(gh_daemon)
    wait_for_pools(gh_daemon, CORE)
    github.fail_next(401, path="/rate_limit", body={"message": f"Bad credentials {ALICE_TOKEN}"})
    after = high_water(gh_daemon)
    wait_for(lambda: events(gh_daemon, "provider_error", after), 10, "provider_error")

    bodies = [
        httpx.get(f"{gh_daemon.url}{path}", timeout=10).content
        for path in (
            "/v1/identities",
            "/v1/identities/pat:alice",
            "/v1/pools",
            f"/v1/pools/{CORE}",
            "/v1/events?limit=10000",
            "/v1/health",
            "/v1/forecasts",
            "/metrics",
            "/openapi.json",
        )
    ]
    assert not [body for body in bodies if token in body]
    files = [gh_daemon.db_path.with_name(gh_daemon.db_path.name + s) for s in ("", "-wal", "-shm")]
    assert files[0].exists()
    stored = b"".join(path.read_bytes() for path in files if path.exists())
    assert b"pat:alice" in stored  # the grep sees the log (it is not compressed or elsewhere)
    leaks = [path for path in files if path.exists() and token in path.read_bytes()]
    gh_daemon.stop()  # and again once everything is flushed (clean exit is D-03's test)
    leaks += [
        path for path in files + gh_daemon.log_paths if path.exists() and token in path.read_bytes()
    ]
    assert not leaks


@pytest.mark.slow
def test_repeated_bad_credentials_quarantine_until_rotated(
    gh_daemon: RunningDaemon, github: FakeGitHub
) -> None:
    register(gh_daemon)
    wait_for_pools(gh_daemon, CORE)
    github.fail_next(401, path="/rate_limit", times=3)
    identity = wait_for(
        lambda: (i := get(gh_daemon, "/v1/identities/pat:alice"))["status"] == "quarantined" and i,
        15,
        "identity quarantined after three 401s",
    )
    assert "rotate" in identity["status_reason"]
    assert get(gh_daemon, "/v1/health")["status"] == "degraded"

    with gh_daemon.client() as http:
        rotated = http.post("/v1/identities/pat:alice/rotate", json={"reason": "new token"})
    assert (rotated.status_code, rotated.json()["status"]) == (200, "active")
    wait_for(lambda: get(gh_daemon, "/v1/health")["status"] == "ok", 10, "health back to ok")
