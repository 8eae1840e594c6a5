"""``ratelord proxy`` in front of a GitHub-shaped server: no 403 however many clients."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import github as pygithub
import githubkit
import httpx
import pytest

from tests.fakes import FakeGitHub
from tests.support.daemon import RunningDaemon, wait_for
from tests.support.proxy import RunningProxy, start_proxy

TOKEN = "ghp_" + "proxyAlice" * 4
CORE = "github:core:user/alice"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub({TOKEN: "alice"}, buckets={"core": (30, 15), "search": (30, 60)}) as fake:
        yield fake


@pytest.fixture
def proxy(
    github: FakeGitHub, daemon_factory: Callable[..., RunningDaemon], tmp_path: Path
) -> Iterator[RunningProxy]:
    daemon = daemon_factory(
        config={"providers": {"github": {"base_url": github.url, "poll_interval_seconds": 5}}},
        env={"GITHUB_TOKEN": TOKEN},
    )
    with daemon.client() as http:
        answer = http.post(
            "/v1/identities",
            json={
                "identity_id": "pat:alice",
                "provider_id": "github",
                "secret_ref": "env:GITHUB_TOKEN",
            },
        )
        assert answer.status_code == 201, answer.text
        wait_for(lambda: http.get(f"/v1/pools/{CORE}").status_code == 200, what="the first poll")
    running = start_proxy(
        daemon, {"github": {"kind": "github", "url": github.url}}, tmp_path, max_wait_seconds=45
    )
    yield running
    running.stop()
    assert TOKEN not in running.logs() and TOKEN not in daemon.logs()


def test_githubkit_and_pygithub_work_through_the_proxy(
    proxy: RunningProxy, github: FakeGitHub
) -> None:
    before = len(github.requests_to("/user"))  # the daemon's poller asks who the token is
    with githubkit.GitHub(TOKEN, base_url=f"{proxy.url}/github") as kit:
        assert kit.rest.users.get_authenticated().json()["login"] == "alice"
    classic = pygithub.Github(auth=pygithub.Auth.Token(TOKEN), base_url=f"{proxy.url}/github")
    assert classic.get_user().login == "alice"
    classic.close()
    assert [r.user for r in github.requests_to("/user")[before:]] == ["alice", "alice"]


@pytest.mark.slow
def test_eight_clients_exhausting_the_budget_get_no_403(
    proxy: RunningProxy, github: FakeGitHub
) -> None:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(
            base_url=f"{proxy.url}/github", headers={"authorization": f"token {TOKEN}"}, timeout=60
        ) as http:
            for _ in range(5):  # 8 × 5 = 40 calls on a budget of 30 per 15 s
                status = http.get("/repos/acme/api").status_code
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses[403] == 0, statuses
    assert statuses[200] >= 30, statuses  # the whole first window was used
    assert set(statuses) <= {200, 429}, statuses
