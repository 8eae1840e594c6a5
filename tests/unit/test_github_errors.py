"""How the GitHub provider classifies failures, and that no failure ever shows the token."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2
import pytest

from ratelord.engine.clock import ManualClock
from ratelord.providers.base import ErrorKind, ProviderFailure, ProviderIdentity
from ratelord.providers.github import GitHubProvider
from tests.fakes import FakeGitHub
from tests.support.daemon import free_port

TOKEN = "ghp_" + "Zq9" * 12
START = 1_767_225_600.0
IDENTITY = ProviderIdentity(
    identity_id="pat:alice",
    provider_id="github",
    principal="github:user/alice",
    kind="token",
    secret_ref="env:GH_TOKEN",
)
ENVIRON = {"GH_TOKEN": TOKEN}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def github(clock: ManualClock) -> Iterator[FakeGitHub]:
    with FakeGitHub({TOKEN: "alice"}, clock=clock.now) as fake:
        yield fake


@pytest.fixture
async def provider(github: FakeGitHub) -> AsyncIterator[GitHubProvider]:
    provider = GitHubProvider(base_url=github.url, environ=ENVIRON, timeout_seconds=5)
    yield provider
    await provider.aclose()


async def poll_failure(provider: GitHubProvider, now: float = START) -> ProviderFailure:
    with pytest.raises(ProviderFailure) as failure:
        await provider.poll(IDENTITY, now)
    assert_no_token(failure.value)
    return failure.value


def assert_no_token(failure: ProviderFailure) -> None:
    """Nothing a caller could log or show carries the token."""
    shown = [
        str(failure),
        repr(failure),
        failure.message,
        repr(failure.args),
        "".join(traceback.format_exception(failure)),
    ]
    assert not any(TOKEN in text for text in shown), failure.kind


# --------------------------------------------------------------------------- HTTP statuses


@pytest.mark.parametrize(
    ("status", "kind", "retry_after"),
    [
        (401, "auth", None),
        ("403-secondary", "rate_limited", 60.0),  # no retry-after: GitHub says wait 60 s
        ("429-secondary", "rate_limited", 60.0),
        (403, "forbidden", None),
        (404, "not_found", None),
        (500, "server", None),
        (502, "server", None),
        (503, "server", None),
        (422, "parse", None),
    ],
)
async def test_status_is_classified(
    provider: GitHubProvider,
    github: FakeGitHub,
    status: int | str,
    kind: ErrorKind,
    retry_after: float | None,
) -> None:
    github.fail_next(status)
    failure = await poll_failure(provider)
    assert (failure.kind, failure.retry_after) == (kind, retry_after)
    assert failure.status_code == int(str(status)[:3])


@pytest.mark.parametrize("status", ["403-secondary", "429-secondary", 503])
async def test_retry_after_header_is_honoured(
    provider: GitHubProvider, github: FakeGitHub, status: int | str
) -> None:
    github.fail_next(status, retry_after=42)
    assert (await poll_failure(provider)).retry_after == 42


@pytest.mark.parametrize("status", [429, "403-primary", "429-primary"])
async def test_primary_limit_waits_until_the_reset(
    provider: GitHubProvider, github: FakeGitHub, clock: ManualClock, status: int | str
) -> None:
    await provider.poll(IDENTITY, START)  # alice's core window opens: reset at START + 3600
    clock.advance(600)
    github.fail_next(status)
    failure = await poll_failure(provider, clock.now())
    assert failure.kind == "rate_limited"
    assert failure.retry_after == pytest.approx(3000)


async def test_old_abuse_message_is_a_rate_limit(
    provider: GitHubProvider, github: FakeGitHub
) -> None:
    github.fail_next(403, body={"message": "You have triggered an abuse detection mechanism."})
    failure = await poll_failure(provider)
    assert (failure.kind, failure.retry_after) == ("rate_limited", 60)


async def test_primary_limit_recognised_by_message_alone(
    provider: GitHubProvider, github: FakeGitHub
) -> None:
    github.fail_next(403, body={"message": "API rate limit exceeded for 10.0.0.1."})
    assert (await poll_failure(provider)).kind == "rate_limited"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1.5", 1.5),
        ("999999", 3600.0),  # implausible: capped
        ("-5", 60.0),  # negative: ignored, GitHub's default applies
        ("soon", 60.0),
        ("Thu, 01 Jan 2026 00:02:00 GMT", 120.0),  # an HTTP-date, against the Date header
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),  # a past date
    ],
)
async def test_retry_after_forms(header: str, expected: float) -> None:
    sent = format_datetime(datetime.fromtimestamp(START, UTC), usegmt=True)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(429, headers={"retry-after": header, "date": sent}, json={})

    failure = await failure_from(handler)
    assert (failure.kind, failure.retry_after) == ("rate_limited", expected)


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize(
    "body", ["<html>GitHub is down</html>", "", '{"resources": {"core": {"limit": 5000,']
)
async def test_unreadable_body_is_a_parse_failure(
    provider: GitHubProvider, github: FakeGitHub, body: str
) -> None:
    github.fail_next(200, body=body)
    failure = await poll_failure(provider)
    assert (failure.kind, failure.status_code) == ("parse", 200)


async def test_wrong_shape_is_a_parse_failure(provider: GitHubProvider, github: FakeGitHub) -> None:
    github.fail_next(200, body={"resources": ["core"]})
    assert (await poll_failure(provider)).kind == "parse"


async def test_truncated_body_is_a_parse_failure(
    provider: GitHubProvider, github: FakeGitHub
) -> None:
    github.truncate_next()
    failure = await poll_failure(provider)
    assert failure.kind == "parse"
    assert "truncated" in failure.message
    assert failure.status_code == 200  # the status line arrived, the answer did not
    # The connection was dropped; the next poll opens a new one and succeeds.
    assert (await provider.poll(IDENTITY, START)).observations


# --------------------------------------------------------------------------- transport


async def test_slow_answer_is_a_timeout(github: FakeGitHub) -> None:
    provider = GitHubProvider(base_url=github.url, environ=ENVIRON, timeout_seconds=0.2)
    github.timeout_next(5)
    try:
        failure = await poll_failure(provider)
        assert failure.kind == "timeout"
        assert (await provider.poll(IDENTITY, START)).observations
    finally:
        await provider.aclose()


async def test_refused_connection_is_a_network_failure() -> None:
    provider = GitHubProvider(base_url=f"http://127.0.0.1:{free_port()}", environ=ENVIRON)
    try:
        assert (await poll_failure(provider)).kind == "network"
    finally:
        await provider.aclose()


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx2.ConnectTimeout, "timeout"),
        (httpx2.ReadTimeout, "timeout"),
        (httpx2.ConnectError, "network"),
        (httpx2.RemoteProtocolError, "network"),
    ],
)
async def test_transport_errors_are_classified_without_the_token(
    error: Callable[..., httpx2.TransportError], kind: ErrorKind
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        # A transport whose error text echoes the credential must not leak it.
        raise error(f"failed with {request.headers['authorization']}", request=request)

    failure = await failure_from(handler)
    assert failure.kind == kind
    assert "[redacted]" in failure.message


async def test_undecodable_content_encoding_is_a_parse_failure(
    provider: GitHubProvider, github: FakeGitHub
) -> None:
    github.fail_next(200, body=b"not gzip", headers={"content-encoding": "gzip"})
    assert (await poll_failure(provider)).kind == "parse"


async def test_github_message_echoing_the_token_is_redacted() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, json={"message": f"bad token {TOKEN}"})

    failure = await failure_from(handler)
    assert failure.kind == "auth"
    assert "bad token [redacted]" in failure.message


async def failure_from(handler: Callable[[httpx2.Request], httpx2.Response]) -> ProviderFailure:
    provider = GitHubProvider(environ=ENVIRON, transport=httpx2.MockTransport(handler))
    try:
        return await poll_failure(provider)
    finally:
        await provider.aclose()
