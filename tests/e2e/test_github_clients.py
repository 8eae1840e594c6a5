"""githubkit, PyGithub and requests through the SDK (no proxy), against a GitHub-shaped
server and a real ratelord-d that polls it: more calls than the budget, and no 403."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import github as pygithub
import githubkit
import pytest
import requests

from ratelord.client import (
    Client,
    RatelordAdapter,
    RatelordDenied,
    RatelordGithubAuth,
    RatelordTransport,
)
from tests.fakes import FakeGitHub
from tests.support.daemon import RunningDaemon, wait_for

pytestmark = pytest.mark.slow

TOKEN = "ghp_" + "sdkClients" * 4
CORE = "github:core:user/alice"
#: a small window, so that going past the budget costs seconds, not an hour
LIMIT, WINDOW = 8, 8


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub({TOKEN: "alice"}, buckets={"core": (LIMIT, WINDOW)}) as fake:
        yield fake


@pytest.fixture
def ratelord(github: FakeGitHub, daemon_factory: Callable[..., RunningDaemon]) -> Iterator[Client]:
    daemon = daemon_factory(
        config={"providers": {"github": {"base_url": github.url, "poll_interval_seconds": 2}}},
        env={"GITHUB_TOKEN": TOKEN},
    )
    with Client(daemon.url, timeout=30) as client:
        client.register(
            identity_id="pat:alice", provider_id="github", secret_ref="env:GITHUB_TOKEN"
        )
        with daemon.client() as http:
            wait_for(lambda: http.get(f"/v1/pools/{CORE}").status_code == 200, what="a poll")
        yield client
    assert TOKEN not in daemon.logs()


def test_githubkit_through_the_transport_never_meets_a_403(
    ratelord: Client, github: FakeGitHub
) -> None:
    transport = RatelordTransport(client=ratelord, agent_id="kit", identity_id="pat:alice")
    with githubkit.GitHub(TOKEN, base_url=github.url, transport=transport) as kit:
        logins = [kit.rest.users.get_authenticated().json()["login"] for _ in range(LIMIT + 4)]
    assert logins == ["alice"] * (LIMIT + 4)  # the last ones waited for the reset
    assert github.rate_limited == 0


def test_pygithub_through_its_auth_never_meets_a_403(ratelord: Client, github: FakeGitHub) -> None:
    auth = RatelordGithubAuth(
        pygithub.Auth.Token(TOKEN), client=ratelord, agent_id="classic", identity_id="pat:alice"
    )
    gh = pygithub.Github(auth=auth, base_url=github.url, retry=None)
    try:
        logins = [gh.get_user().login for _ in range(LIMIT + 4)]
    finally:
        gh.close()
    assert logins == ["alice"] * (LIMIT + 4)
    assert github.rate_limited == 0
    asked = [r for r in github.requests if r.path == "/user"]
    assert len(asked) >= LIMIT + 4


def test_pygithub_gets_a_refusal_it_does_not_retry(ratelord: Client, github: FakeGitHub) -> None:
    auth = RatelordGithubAuth(
        pygithub.Auth.Token(TOKEN),
        client=ratelord,
        agent_id="classic",
        identity_id="pat:alice",
        resource="no-such-resource",
    )
    gh = pygithub.Github(auth=auth, base_url=github.url)
    before = len(github.requests)
    try:
        with pytest.raises(RatelordDenied, match="never been observed"):
            gh.get_user().login  # noqa: B018
    finally:
        gh.close()
    assert len(github.requests) == before  # GitHub was never called


def test_requests_through_the_adapter_never_meets_a_403(
    ratelord: Client, github: FakeGitHub
) -> None:
    with requests.Session() as session:
        session.mount(
            github.url,
            RatelordAdapter(client=ratelord, agent_id="plain", identity_id="pat:alice"),
        )
        headers = {"authorization": f"token {TOKEN}"}
        statuses = [
            session.get(f"{github.url}/user", headers=headers).status_code for _ in range(LIMIT + 4)
        ]
    assert statuses == [200] * (LIMIT + 4)
    assert github.rate_limited == 0
