"""The GitHub provider against the local fake GitHub (in-process, no daemon)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratelord.engine.clock import ManualClock
from ratelord.providers.base import ProviderFailure, ProviderIdentity
from ratelord.providers.github import DEFAULT_WINDOWS, GitHubProvider, rate_limit_observations
from tests.fakes import FakeGitHub

ALICE_TOKEN = "ghp_" + "A1" * 18
ALICE_OTHER_TOKEN = "ghp_" + "C3" * 18
BOB_TOKEN = "ghp_" + "B2" * 18
START = 1_767_225_600.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def github(clock: ManualClock) -> Iterator[FakeGitHub]:
    tokens = {ALICE_TOKEN: "alice", ALICE_OTHER_TOKEN: "alice", BOB_TOKEN: "bob"}
    with FakeGitHub(tokens, clock=clock.now) as fake:
        yield fake


@pytest.fixture
def environ() -> dict[str, str]:
    return {"GH_ALICE": ALICE_TOKEN, "GH_BOB": BOB_TOKEN}


@pytest.fixture
async def provider(github: FakeGitHub, environ: dict[str, str]) -> AsyncIterator[GitHubProvider]:
    provider = GitHubProvider(base_url=github.url, environ=environ, timeout_seconds=5)
    yield provider
    await provider.aclose()


def identity(
    identity_id: str = "pat:alice",
    *,
    ref: str | None = "env:GH_ALICE",
    principal: str | None = None,
    kind: str = "token",
) -> ProviderIdentity:
    return ProviderIdentity(
        identity_id=identity_id,
        provider_id="github",
        principal=principal,
        kind=kind,
        secret_ref=ref,
    )


# --------------------------------------------------------------------------- pools


async def test_every_bucket_becomes_a_pool_observation(
    provider: GitHubProvider, github: FakeGitHub
) -> None:
    github.spend("alice", "core", 312)
    github.spend("alice", "graphql", 41)
    result = await provider.poll(identity(), START)

    by_name = {obs.resource: obs for obs in result.observations}
    assert set(by_name) == {"core", "search", "graphql", "code_search", "dependency_snapshots"}
    core = by_name["core"]
    # /user (principal discovery) costs one core request on GitHub too.
    assert (core.limit, core.remaining, core.used) == (5000, 4687, 313)
    assert (core.reset_at, core.window, core.window_seconds, core.unit) == (
        START + 3600,
        "fixed",
        3600,
        "requests",
    )
    assert (by_name["search"].limit, by_name["search"].window_seconds) == (30, 60)
    assert (by_name["code_search"].limit, by_name["code_search"].window_seconds) == (10, 60)
    assert (by_name["graphql"].remaining, by_name["graphql"].unit) == (4959, "points")
    # An unknown bucket is kept, its window inferred from its reset.
    assert by_name["dependency_snapshots"].window_seconds == 3600
    assert result.observed_at == START


async def test_polls_send_the_token_and_github_headers(
    provider: GitHubProvider, github: FakeGitHub
) -> None:
    await provider.poll(identity(), START)
    await provider.poll(identity("pat:bob", ref="env:GH_BOB"), START)

    polls = github.requests_to("/rate_limit")
    assert [request.user for request in polls] == ["alice", "bob"]
    headers = polls[0].headers
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"].startswith("ratelord/")


async def test_polling_follows_quota_spent_elsewhere(
    provider: GitHubProvider, github: FakeGitHub, clock: ManualClock
) -> None:
    declared = identity(principal="github:user/alice")
    before = {o.resource: o.remaining for o in (await provider.poll(declared, START)).observations}
    github.spend("alice", "search", 29)
    clock.advance(10)
    after = {
        o.resource: o.remaining for o in (await provider.poll(declared, clock.now())).observations
    }
    assert (before["search"], after["search"]) == (30, 1)


async def test_search_window_resets_on_github_clock(
    provider: GitHubProvider, github: FakeGitHub, clock: ManualClock
) -> None:
    declared = identity(principal="github:user/alice")
    github.spend("alice", "search", 30)
    clock.advance(61)
    search = next(
        o
        for o in (await provider.poll(declared, clock.now())).observations
        if o.resource == "search"
    )
    assert search.remaining == 30
    assert search.reset_at == START + 61 + 60


# --------------------------------------------------------------------------- principals


async def test_principal_of_a_user_token_is_discovered_once(
    provider: GitHubProvider, github: FakeGitHub
) -> None:
    first = await provider.poll(identity(), START)
    second = await provider.poll(identity(), START + 60)
    assert first.principal == second.principal == "github:user/alice"
    assert len(github.requests_to("/user")) == 1


async def test_two_tokens_of_one_user_discover_the_same_principal(
    provider: GitHubProvider, environ: dict[str, str]
) -> None:
    environ["GH_ALICE_2"] = ALICE_OTHER_TOKEN
    one = await provider.poll(identity("pat:alice"), START)
    two = await provider.poll(identity("pat:alice-ci", ref="env:GH_ALICE_2"), START)
    assert one.principal == two.principal == "github:user/alice"


async def test_rotated_token_is_rediscovered(
    provider: GitHubProvider, github: FakeGitHub, environ: dict[str, str]
) -> None:
    assert (await provider.poll(identity(), START)).principal == "github:user/alice"
    environ["GH_ALICE"] = BOB_TOKEN  # the same reference now holds another user's token
    assert (await provider.poll(identity(), START)).principal == "github:user/bob"
    assert [request.user for request in github.requests_to("/user")] == ["alice", "bob"]


async def test_declared_principal_skips_discovery(
    provider: GitHubProvider, github: FakeGitHub
) -> None:
    result = await provider.poll(identity(principal="github:user/alice"), START)
    assert result.principal is None
    assert github.requests_to("/user") == []


async def test_app_installation_must_declare_its_principal(
    provider: GitHubProvider, github: FakeGitHub
) -> None:
    with pytest.raises(ProviderFailure) as failure:
        await provider.poll(identity("app:acme", kind="app_installation"), START)
    assert failure.value.kind == "config"
    assert "declare its principal" in failure.value.message
    declared = identity("app:acme", kind="app_installation", principal="github:installation/42")
    assert (await provider.poll(declared, START)).observations
    assert github.requests_to("/user") == []


async def test_token_that_cannot_name_its_user_asks_for_a_principal(
    provider: GitHubProvider, github: FakeGitHub
) -> None:
    github.fail_next(403, body={"message": "Resource not accessible by integration"}, path="/user")
    with pytest.raises(ProviderFailure) as failure:
        await provider.poll(identity(), START)
    assert failure.value.kind == "forbidden"
    assert "declare identity pat:alice's principal" in failure.value.message


@pytest.mark.parametrize("body", [{"id": 1}, {"login": ""}, {"login": 7}])
async def test_user_answer_without_login_is_a_parse_failure(
    provider: GitHubProvider, github: FakeGitHub, body: dict[str, object]
) -> None:
    github.fail_next(200, body=body, path="/user")
    with pytest.raises(ProviderFailure) as failure:
        await provider.poll(identity(), START)
    assert failure.value.kind == "parse"


# --------------------------------------------------------------------------- secrets


async def test_missing_secret_is_a_config_failure(provider: GitHubProvider) -> None:
    with pytest.raises(ProviderFailure) as failure:
        await provider.poll(identity(ref="env:GH_NOBODY"), START)
    assert failure.value.kind == "config"
    assert "GH_NOBODY" in failure.value.message


async def test_identity_without_secret_ref_is_a_config_failure(provider: GitHubProvider) -> None:
    with pytest.raises(ProviderFailure) as failure:
        await provider.poll(identity(ref=None), START)
    assert failure.value.kind == "config"


async def test_file_secret_is_read_at_poll_time(
    provider: GitHubProvider, github: FakeGitHub, tmp_path: Path
) -> None:
    secret = tmp_path / "token"
    secret.write_text(BOB_TOKEN + "\n")
    os.chmod(secret, 0o600)
    result = await provider.poll(identity(ref=f"file:{secret}"), START)
    assert result.principal == "github:user/bob"

    os.chmod(secret, 0o644)
    with pytest.raises(ProviderFailure) as failure:
        await provider.poll(identity(ref=f"file:{secret}"), START)
    assert failure.value.kind == "config"
    assert "chmod 600" in failure.value.message
    assert BOB_TOKEN not in repr(failure.value)


# --------------------------------------------------------------------------- GHES


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_enterprise_server_base_url(clock: ManualClock, suffix: str) -> None:
    with FakeGitHub({ALICE_TOKEN: "alice"}, prefix="/api/v3", clock=clock.now) as ghes:
        provider = GitHubProvider(base_url=ghes.url + suffix, environ={"GH_ALICE": ALICE_TOKEN})
        try:
            result = await provider.poll(identity(), START)
        finally:
            await provider.aclose()
        assert result.principal == "github:user/alice"
        assert [r.path for r in ghes.requests] == ["/user", "/rate_limit"]


async def test_enterprise_server_without_the_api_prefix_is_not_found(clock: ManualClock) -> None:
    with FakeGitHub({ALICE_TOKEN: "alice"}, prefix="/api/v3", clock=clock.now) as ghes:
        root = f"http://127.0.0.1:{ghes.port}"
        provider = GitHubProvider(base_url=root, environ={"GH_ALICE": ALICE_TOKEN})
        try:
            with pytest.raises(ProviderFailure) as failure:
                await provider.poll(identity(principal="github:user/alice"), START)
        finally:
            await provider.aclose()
    assert failure.value.kind == "not_found"


# --------------------------------------------------------------------------- parsing


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=30),
        st.tuples(
            st.integers(0, 10**6),
            st.integers(-100, 10**6),
            st.integers(0, 10**6),
            st.integers(-100, 10**5),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_rate_limit_observations_keep_every_bucket(
    buckets: dict[str, tuple[int, int, int, int]],
) -> None:
    body = {
        "resources": {
            name: {"limit": limit, "remaining": remaining, "used": used, "reset": START + offset}
            for name, (limit, remaining, used, offset) in buckets.items()
        }
    }
    observations = rate_limit_observations(body, START)
    assert [o.resource for o in observations] == list(buckets)
    for obs in observations:
        limit, remaining, used, offset = buckets[obs.resource]
        assert obs.remaining == max(0, remaining)  # as sent, clamped; never limit - used
        assert (obs.limit, obs.used, obs.reset_at) == (limit, used, START + offset)
        if obs.resource in DEFAULT_WINDOWS:
            assert obs.window_seconds == DEFAULT_WINDOWS[obs.resource]
        elif offset <= 0:
            assert obs.window_seconds is None  # reset already passed: nothing to infer from
        else:  # the smallest usual window covering the time left, or that time itself
            assert obs.window_seconds in (60, 3600, 86400, offset)
            assert obs.window_seconds >= offset


def test_used_beyond_limit_is_kept_and_remaining_clamped() -> None:
    body = {"resources": {"graphql": {"limit": 5000, "used": 5002, "remaining": -2, "reset": 0}}}
    (graphql,) = rate_limit_observations(body, START)
    assert (graphql.used, graphql.remaining, graphql.window_seconds) == (5002, 0, 3600)


def test_malformed_bucket_is_skipped_and_the_rest_kept(caplog: pytest.LogCaptureFixture) -> None:
    body = {
        "resources": {
            "core": {"limit": 5000, "used": 1, "remaining": 4999, "reset": START + 3600},
            "weird": {"limit": "lots"},
        },
        "rate": {"limit": 5000, "used": 1, "remaining": 4999, "reset": START + 3600},
    }
    assert [o.resource for o in rate_limit_observations(body, START)] == ["core"]
    assert "weird" in caplog.text


@pytest.mark.parametrize(
    "body",
    [[], {}, {"resources": []}, {"resources": {}}, {"resources": {"core": None}}, {"rate": {}}],
)
def test_answer_without_readable_buckets_is_a_parse_failure(body: object) -> None:
    with pytest.raises(ProviderFailure) as failure:
        rate_limit_observations(body, START)
    assert failure.value.kind == "parse"


@pytest.mark.parametrize(
    ("resource", "window"),
    [("core", 3600), ("graphql", 3600), ("search", 60), ("code_search", 60), ("scim", None)],
)
def test_default_windows(resource: str, window: float | None) -> None:
    assert GitHubProvider().default_window_seconds(resource) == window
