"""The proxy's pure parts: credentials, charges, refusals, usage taps, settings, the identity
book, and the ASGI app against in-process fakes of the daemon and an upstream."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx2
import msgspec
import pytest

from ratelord.client import AsyncClient
from ratelord.llm import tap_for
from ratelord.providers.secrets import fingerprint
from ratelord.proxy.app import ProxyApp
from ratelord.proxy.charges import charge_for
from ratelord.proxy.credentials import IdentityBook, credential_of
from ratelord.proxy.refusals import rate_limited, unknown_credential
from ratelord.proxy.settings import (
    ProxyConfigError,
    ProxySettings,
    UpstreamSettings,
    load_proxy_settings,
)
from ratelord.schema import Identity

KEY = "sk-unit-test-key-000000000000000000"


def test_credentials_come_from_any_of_the_usual_headers() -> None:
    assert credential_of([(b"authorization", f"Bearer {KEY}".encode())]) == KEY
    assert credential_of([(b"authorization", b"token ghp_abc")]) == "ghp_abc"
    assert credential_of([(b"x-api-key", b"sk-ant-1")]) == "sk-ant-1"
    assert credential_of([(b"api-key", b"azure-1")]) == "azure-1"
    assert credential_of([(b"authorization", b"Basic dXNlcjpwYXNz")]) is None
    assert credential_of([(b"authorization", b"Bearer ")]) is None
    assert credential_of([]) is None


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/repos/acme/api", "core"),
        ("/search/code", "code_search"),
        ("/search/issues", "search"),
        ("/graphql", "graphql"),
    ],
)
def test_github_charges_follow_the_path(path: str, resource: str) -> None:
    github = UpstreamSettings(url="https://api.github.com", kind="github")
    charge = charge_for(github, "GET", path, b"")
    assert charge is not None and charge.costs == {resource: 1.0}
    assert charge_for(github, "GET", "/rate_limit", b"") is None  # free, as on GitHub


def test_llm_charges_come_from_the_body() -> None:
    openai = UpstreamSettings(url="https://api.openai.com", kind="openai")
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50}
    ).encode()
    charge = charge_for(openai, "POST", "/v1/chat/completions", body)
    assert charge is not None and charge.estimate is not None
    assert charge.estimate.model == "gpt-4o-mini" and charge.estimate.output_tokens == 50
    assert charge.costs["requests@gpt-4o-mini"] == 1.0
    assert charge.costs["tokens@gpt-4o-mini"] == charge.estimate.total
    listing = charge_for(openai, "GET", "/v1/models", b"")
    assert listing is not None and listing.costs == {"requests": 1.0}
    generic = UpstreamSettings(url="https://x.example", resource="calls", cost=2.5)
    assert charge_for(generic, "PUT", "/a", b"").costs == {"calls": 2.5}  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["openai", "anthropic", "github", "generic"])
def test_refusals_speak_the_upstreams_error_shape(kind: Any) -> None:
    headers, body = rate_limited("pool p is paced", 2.2).render(kind)
    names = dict(headers)
    assert names[b"retry-after"] == b"3" and names[b"retry-after-ms"] == b"2200"
    decoded = json.loads(body)
    message = {
        "openai": lambda d: d["error"]["message"],
        "anthropic": lambda d: d["error"]["message"],
        "github": lambda d: d["message"],
        "generic": lambda d: d["error"]["message"],
    }[kind](decoded)
    assert message == "ratelord: pool p is paced"
    if kind == "openai":
        assert decoded["error"]["code"] == "rate_limit_exceeded"
    if kind == "anthropic":
        assert decoded["type"] == "error" and decoded["error"]["type"] == "rate_limit_error"
    assert unknown_credential("openai").status == 403


def test_a_usage_tap_reads_json_gzip_and_streams() -> None:
    body = json.dumps({"usage": {"prompt_tokens": 10, "completion_tokens": 5}}).encode()
    plain = tap_for("application/json", "")
    assert plain is not None
    plain.feed(body[:7])
    plain.feed(body[7:])
    assert plain.usage() is not None and plain.usage().total == 15  # type: ignore[union-attr]
    zipped = tap_for("application/json", "gzip")
    assert zipped is not None
    zipped.feed(gzip.compress(body))
    assert zipped.usage().total == 15  # type: ignore[union-attr]
    stream = tap_for("text/event-stream; charset=utf-8", "")
    assert stream is not None
    stream.feed(b'data: {"choices": []}\n\ndata: {"usage": {"prompt_tokens": 3, ')
    stream.feed(b'"completion_tokens": 4}}\n\ndata: [DONE]\n\n')
    assert stream.usage().total == 7  # type: ignore[union-attr]
    assert tap_for("application/json", "br") is None  # cannot be read: not tapped


def test_settings_are_checked_with_the_key_and_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "proxy.yaml"
    config.write_text("upstreams:\n  corp: {url: ftp://x}\n")
    with pytest.raises(ProxyConfigError, match=r"upstreams\.corp\.url"):
        load_proxy_settings(str(config), {}, environ={})
    config.write_text("upstreams:\n  corp: {url: https://x, colour: red}\n")
    with pytest.raises(ProxyConfigError, match="colour"):
        load_proxy_settings(str(config), {}, environ={})
    with pytest.raises(ProxyConfigError, match="needs a bearer token"):
        load_proxy_settings(None, {"bind": "0.0.0.0"}, environ={})
    settings = load_proxy_settings(None, {}, environ={"RATELORD_PROXY_PORT": "9000"})
    assert settings.port == 9000
    assert sorted(settings.upstreams) == ["anthropic", "github", "openai"]


def _identity(identity_id: str, secret: str, status: str = "active") -> Identity:
    return Identity(
        identity_id=identity_id,
        kind="token",
        provider_id="openai",
        principal="org",
        scope_id="sentinel:global",
        labels={},
        status=status,  # type: ignore[arg-type]
        token_fingerprint=fingerprint(secret),
        registered_at="2026-01-01T00:00:00Z",
    )


async def test_the_identity_book_rereads_the_registry_on_a_miss_at_most_every_2_s() -> None:
    now = [0.0]
    registry = [_identity("a", "key-a")]
    fetches = []

    async def fetch() -> list[Identity]:
        fetches.append(now[0])
        return list(registry)

    book = IdentityBook(fetch, clock=lambda: now[0])
    assert (await book.lookup("key-a")).identity_id == "a"  # type: ignore[union-attr]
    assert await book.lookup("key-b") is None  # a miss right after a read: no new read
    registry.append(_identity("b", "key-b"))
    now[0] = 2.5
    assert (await book.lookup("key-b")).identity_id == "b"  # type: ignore[union-attr]
    assert fetches == [0.0, 2.5]


# ---------------------------------------------------------------------------- the app


class _Asgi:
    """Drive one request through an ASGI app and collect what it sends."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def run(
        self, app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            self.messages.append(message)

        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
        }
        await app(scope, receive, send)
        start = self.messages[0]
        return (
            start["status"],
            dict(start["headers"]),
            b"".join(m.get("body", b"") for m in self.messages[1:]),
        )


def _app(
    decision: dict[str, Any],
    upstream: httpx2.MockTransport,
    intent_status: int = 200,
    **settings: Any,
) -> ProxyApp:
    asked: list[dict[str, Any]] = []

    def daemon(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/v1/identities":
            identity = msgspec.to_builtins(_identity("openai:acme", KEY))
            return httpx2.Response(200, json={"identities": [identity]})
        if request.url.path == "/v1/intent":
            asked.append(json.loads(request.content))
            return httpx2.Response(intent_status, json={"intent_id": "int_1", **decision})
        return httpx2.Response(200, json={"accepted": True, "events": 0, "pools": []})

    client = AsyncClient("http://daemon", transport=httpx2.MockTransport(daemon), retries=0)
    proxy_settings = ProxySettings(
        upstreams={"openai": UpstreamSettings(url="http://upstream", kind="openai")}, **settings
    )
    app = ProxyApp(proxy_settings, client, sleep=_no_sleep)
    app.upstreams["openai"].transport = upstream
    app.asked = asked  # type: ignore[attr-defined]
    return app


def _no_sleep(seconds: float) -> Awaitable[None]:
    slept.append(seconds)

    async def done() -> None:
        return None

    return done()


slept: list[float] = []


def _streamed(value: Any, status: int = 200) -> httpx2.Response:
    """An upstream answer that streams (a mock's ``json=`` answer is read already)."""

    async def chunks() -> Any:
        yield json.dumps(value).encode()

    return httpx2.Response(status, headers={"content-type": "application/json"}, content=chunks())


CHAT = json.dumps({"model": "m", "messages": [], "max_tokens": 10}).encode()
AUTH = [(b"authorization", f"Bearer {KEY}".encode()), (b"x-ratelord-agent", b"unit")]


async def test_an_approved_request_is_forwarded_without_the_proxys_own_headers() -> None:
    seen: list[httpx2.Request] = []

    def upstream(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return _streamed({"usage": {"prompt_tokens": 1, "completion_tokens": 2}})

    app = _app({"decision": "approve"}, httpx2.MockTransport(upstream))
    status, _, body = await _Asgi().run(app, "POST", "/openai/v1/chat/completions", AUTH, CHAT)
    assert status == 200 and json.loads(body)["usage"]["completion_tokens"] == 2
    assert seen[0].url == "http://upstream/v1/chat/completions"
    assert "x-ratelord-agent" not in seen[0].headers
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    (asked,) = app.asked  # type: ignore[attr-defined]
    assert asked["agent_id"] == "unit" and asked["identity_id"] == "openai:acme"
    await app.aclose()


async def test_a_wait_within_max_wait_is_held_and_a_longer_one_refused() -> None:
    def upstream(request: httpx2.Request) -> httpx2.Response:
        return _streamed({})

    shaped = {"decision": "approve_with_modifications", "modifications": {"wait_seconds": 1.5}}
    slept.clear()
    app = _app(shaped, httpx2.MockTransport(upstream), max_wait_seconds=2.0)
    status, _, _ = await _Asgi().run(app, "POST", "/openai/v1/chat/completions", AUTH, CHAT)
    assert status == 200 and slept == [1.5]
    await app.aclose()
    app = _app(shaped, httpx2.MockTransport(upstream), max_wait_seconds=1.0)
    status, headers, body = await _Asgi().run(
        app, "POST", "/openai/v1/chat/completions", AUTH, CHAT
    )
    assert status == 429 and headers[b"retry-after"] == b"2"
    assert "more than max_wait=1 s" in json.loads(body)["error"]["message"]
    await app.aclose()


async def test_the_proxy_token_is_required_when_set() -> None:
    app = _app({"decision": "approve"}, httpx2.MockTransport(lambda r: _streamed({})))
    app.token = b"proxy-secret"
    status, headers, _ = await _Asgi().run(app, "POST", "/openai/v1/x", AUTH, CHAT)
    assert status == 407 and headers[b"proxy-authenticate"] == b"Bearer"
    with_token = [*AUTH, (b"proxy-authorization", b"Bearer proxy-secret")]
    status, _, _ = await _Asgi().run(app, "POST", "/openai/v1/x", with_token, CHAT)
    assert status == 200
    await app.aclose()


async def test_a_daemon_that_answers_without_deciding_is_a_503_not_a_500() -> None:
    app = _app({}, httpx2.MockTransport(lambda r: _streamed({})), intent_status=503)
    status, headers, body = await _Asgi().run(app, "POST", "/openai/v1/x", AUTH, CHAT)
    assert status == 503 and b"retry-after" in headers
    assert json.loads(body)["error"]["code"] == "ratelord_unavailable"
    await app.aclose()


async def test_requests_in_flight_per_identity_are_capped_and_the_rest_wait() -> None:
    in_flight, most = 0, 0

    async def upstream(request: httpx2.Request) -> httpx2.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return _streamed({})

    app = _app({"decision": "approve"}, httpx2.MockTransport(upstream))
    app.upstreams["openai"].settings = UpstreamSettings(
        url="http://upstream", kind="openai", max_concurrent=2
    )
    calls = [_Asgi().run(app, "POST", "/openai/v1/chat/completions", AUTH, CHAT) for _ in range(6)]
    statuses = [status for status, _, _ in await asyncio.gather(*calls)]
    assert statuses == [200] * 6 and most == 2
    await app.aclose()
