"""The fake GitHub behaves like the documented API, so other tests can trust it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from ratelord.engine.clock import ManualClock
from tests.fakes import FakeGitHub

TOKEN = "ghp_" + "Fk7" * 12
START = 1_767_225_600.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def github(clock: ManualClock) -> Iterator[FakeGitHub]:
    with FakeGitHub({TOKEN: "alice"}, prefix="/api/v3", clock=clock.now) as fake:
        yield fake


@pytest.fixture
def http(github: FakeGitHub) -> Iterator[httpx2.Client]:
    auth = {"Authorization": f"token {TOKEN}"}
    with httpx2.Client(base_url=github.url, headers=auth, timeout=5) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "resource"),
    [
        ("GET", "/repos/acme/api", "core"),
        ("GET", "/search/issues?q=x", "search"),
        ("GET", "/search/code?q=x", "code_search"),
        ("POST", "/graphql", "graphql"),
    ],
)
def test_requests_are_charged_to_githubs_bucket(
    http: httpx2.Client, github: FakeGitHub, method: str, path: str, resource: str
) -> None:
    response = http.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 200
    assert response.headers["x-ratelimit-resource"] == resource
    assert response.headers["x-ratelimit-used"] == "1"
    assert github.bucket("alice", resource).used == 1


def test_rate_limit_is_free_and_lists_every_bucket(http: httpx2.Client) -> None:
    body = http.get("/rate_limit").json()
    assert set(body["resources"]) >= {"core", "search", "graphql", "code_search"}
    assert body["resources"]["core"] == {
        "limit": 5000,
        "used": 0,
        "remaining": 5000,
        "reset": START + 3600,
    }
    assert http.get("/rate_limit").json()["resources"]["core"]["used"] == 0


def test_empty_bucket_answers_primary_limit_until_reset(
    http: httpx2.Client, github: FakeGitHub, clock: ManualClock
) -> None:
    github.spend("alice", "search", 30)
    limited = http.get("/search/issues")
    assert limited.status_code == 403
    assert limited.json()["message"].startswith("API rate limit exceeded")
    assert limited.headers["x-ratelimit-remaining"] == "0"
    clock.advance(60)
    assert http.get("/search/issues").status_code == 200


def test_unknown_token_and_missing_prefix(http: httpx2.Client, github: FakeGitHub) -> None:
    assert http.get("/user", headers={"Authorization": "Bearer ghp_nobody"}).status_code == 401
    assert httpx2.get(f"http://127.0.0.1:{github.port}/rate_limit").status_code == 404


def test_request_log_names_the_user_not_the_token(http: httpx2.Client, github: FakeGitHub) -> None:
    http.get("/user")
    (request,) = github.requests
    assert (request.method, request.path, request.user) == ("GET", "/user", "alice")
    assert TOKEN not in repr(request)


def test_injected_failures_are_used_once_and_in_order(
    http: httpx2.Client, github: FakeGitHub
) -> None:
    github.fail_next(500, path="/rate_limit")
    github.fail_next("403-secondary", retry_after=30)
    first = http.get("/user")  # the path-bound failure waits for its path
    assert (first.status_code, first.headers["retry-after"]) == (403, "30")
    assert "secondary rate limit" in first.json()["message"]
    assert http.get("/rate_limit").status_code == 500
    assert http.get("/rate_limit").status_code == 200
    assert github.pending_failures == 0


def test_unknown_failure_name_is_refused(github: FakeGitHub) -> None:
    with pytest.raises(ValueError, match="403-secondary"):
        github.fail_next("403-tertiary")
