"""The transports with llm=True (httpx2 and legacy httpx), the routed identity, and
refusals shaped as a 429 the API client understands (fake daemon, fake provider)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx2
import pytest

from ratelord.client import AsyncClient, AsyncRatelordTransport, Client, RatelordTransport

URL = "http://ratelord.test"
CHAT = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "hello there"}],
    "max_tokens": 50,
}
USAGE = {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}
STREAM = (
    b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7}}\n\n'
    b"data: [DONE]\n\n"
)


class Daemon:
    """A fake ratelord-d answering with ``decision``; records asks and reports."""

    def __init__(self, **decision: Any) -> None:
        self.decision = {"intent_id": "int-1", "decision": "approve", **decision}
        self.asks: list[dict[str, Any]] = []
        self.reports: list[dict[str, Any]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        if request.url.path == "/v1/usage":
            self.reports.append(body)
            return httpx2.Response(200, json={"accepted": True})
        self.asks.append(body)
        return httpx2.Response(200, json=self.decision)

    def client(self) -> Client:
        return Client(URL, transport=httpx2.MockTransport(self.handle), sleep=lambda s: None)


def provider(library: Any, status: int = 200) -> Any:
    def handle(request: Any) -> Any:
        headers = {"x-ratelimit-limit-tokens": "4000", "x-ratelimit-remaining-tokens": "3900"}
        if json.loads(request.content).get("stream"):
            headers["content-type"] = "text/event-stream"  # streamed in two pieces
            return library.Response(
                status, headers=headers, content=iter([STREAM[:40], STREAM[40:]])
            )
        body = {"model": "gpt-4o-mini-2024-07-18", "usage": USAGE}
        return library.Response(status, headers=headers, json=body)

    return library.MockTransport(handle)


@pytest.mark.parametrize("library", [httpx2, httpx], ids=["httpx2", "httpx"])
def test_an_llm_call_is_priced_from_its_body_and_reconciled_from_its_answer(library: Any) -> None:
    daemon = Daemon()
    transport = RatelordTransport(
        provider(library), client=daemon.client(), agent_id="a", identity_id="key:a", llm=True
    )
    with library.Client(base_url="https://api.test/v1", transport=transport) as api:
        answer = api.post("/chat/completions", json=CHAT)
    assert answer.json()["usage"] == USAGE  # the agent reads the body untouched
    (ask,) = daemon.asks
    assert ask["costs"]["requests@gpt-4o-mini"] == 1
    assert ask["costs"]["tokens@gpt-4o-mini"] > 50
    (report,) = daemon.reports
    assert report["model"] == "gpt-4o-mini" and report["intent_id"] == "int-1"
    assert report["costs"] == {"tokens@gpt-4o-mini": 42.0}
    assert report["headers"]["x-ratelimit-remaining-tokens"] == "3900"


def test_a_stream_is_passed_through_and_reported_when_closed() -> None:
    daemon = Daemon()
    transport = RatelordTransport(
        provider(httpx2), client=daemon.client(), agent_id="a", identity_id="key:a", llm=True
    )
    with httpx2.Client(base_url="https://api.test/v1", transport=transport) as api:
        with api.stream("POST", "/chat/completions", json=CHAT | {"stream": True}) as response:
            assert daemon.reports == []  # nothing reported before the stream is read
            body = b"".join(response.iter_bytes())
        assert body == STREAM
    (report,) = daemon.reports
    assert report["costs"] == {"tokens@gpt-4o-mini": 19.0}


def test_a_failed_call_is_reported_as_no_tokens_spent() -> None:
    daemon = Daemon()
    transport = RatelordTransport(
        provider(httpx2, status=500),
        client=daemon.client(),
        agent_id="a",
        identity_id="key:a",
        llm=True,
    )
    with httpx2.Client(base_url="https://api.test/v1", transport=transport) as api:
        assert api.post("/chat/completions", json=CHAT).status_code == 500
    assert daemon.reports[0]["costs"] == {"tokens@gpt-4o-mini": 0.0}


def test_usage_is_reported_under_the_identity_the_route_asked_for() -> None:
    daemon = Daemon()
    transport = RatelordTransport(
        provider(httpx2),
        client=daemon.client(),
        agent_id="a",
        identity_id="key:default",
        route=lambda request: {"identity_id": "key:other"},
    )
    with httpx2.Client(base_url="https://api.test/v1", transport=transport) as api:
        api.post("/chat/completions", json=CHAT)
    assert daemon.asks[0]["identity_id"] == "key:other"
    assert daemon.reports[0]["identity_id"] == "key:other"


@pytest.mark.parametrize(
    ("decision", "retry_after", "should_retry"),
    [
        ({"decision": "deny_with_reason", "reason": "budget spent"}, None, "false"),
        (
            {"decision": "approve_with_modifications", "modifications": {"wait_seconds": 90}},
            "90",
            None,
        ),
    ],
)
def test_a_refusal_can_come_back_as_a_429_the_client_understands(
    decision: dict[str, Any], retry_after: str | None, should_retry: str | None
) -> None:
    daemon = Daemon(**decision)
    transport = RatelordTransport(
        provider(httpx2),
        client=daemon.client(),
        agent_id="a",
        identity_id="key:a",
        max_wait=5,
        refusal="response",
    )
    with httpx2.Client(base_url="https://api.test/v1", transport=transport) as api:
        answer = api.post("/chat/completions", json=CHAT)
    assert answer.status_code == 429
    assert answer.headers.get("retry-after") == retry_after
    assert answer.headers.get("x-should-retry") == should_retry
    assert answer.json()["error"]["message"].startswith("ratelord: ")
    assert daemon.reports == []  # the provider was never called


def test_refusal_must_be_raise_or_response() -> None:
    with pytest.raises(ValueError, match="refusal"):
        RatelordTransport(client=Daemon().client(), agent_id="a", identity_id="i", refusal="x")  # type: ignore[arg-type]


async def test_the_async_transport_reconciles_streams_too() -> None:
    daemon = Daemon()

    def ratelord(request: httpx2.Request) -> httpx2.Response:
        return daemon.handle(request)

    async def sleep(seconds: float) -> None:
        pass

    client = AsyncClient(URL, transport=httpx2.MockTransport(ratelord), sleep=sleep)

    async def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=STREAM)

    transport = AsyncRatelordTransport(
        httpx2.MockTransport(handle), client=client, agent_id="a", identity_id="key:a", llm=True
    )
    async with httpx2.AsyncClient(base_url="https://api.test/v1", transport=transport) as api:
        response = await api.post("/chat/completions", json=CHAT | {"stream": True})
        assert response.content == STREAM
    assert daemon.reports[0]["costs"] == {"tokens@gpt-4o-mini": 19.0}


def anthropic_provider() -> httpx2.MockTransport:
    calls: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        calls.append(request.url.path)
        return httpx2.Response(500)

    transport = httpx2.MockTransport(handle)
    transport.calls = calls  # type: ignore[attr-defined]
    return transport


@pytest.mark.parametrize("why", ["denied", "daemon down"])
def test_the_anthropic_sdk_does_not_retry_a_refusal(why: str) -> None:
    """A refusal is the SDK's RateLimitError, not an APIConnectionError it retries twice."""
    anthropic = pytest.importorskip("anthropic")
    daemon = Daemon(decision="deny_with_reason", reason="budget spent")
    if why == "daemon down":

        def down(request: httpx2.Request) -> httpx2.Response:
            daemon.asks.append({})
            raise httpx2.ConnectError("connection refused")

        ratelord = Client(URL, transport=httpx2.MockTransport(down), sleep=lambda s: None)
    else:
        ratelord = daemon.client()
    upstream = anthropic_provider()
    transport = RatelordTransport(
        upstream, client=ratelord, agent_id="a", identity_id="key:a", llm=True
    )
    api = anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url="https://api.test",
        max_retries=2,
        http_client=httpx2.Client(transport=transport),
    )
    with pytest.raises(anthropic.RateLimitError, match="ratelord: "):
        api.messages.create(
            model="claude-haiku-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "hello"}],
        )
    assert len(daemon.asks) == 1  # asked once: not retried
    assert upstream.calls == []  # type: ignore[attr-defined]


def test_the_openai_sdk_does_not_retry_a_denial() -> None:
    openai = pytest.importorskip("openai")
    daemon = Daemon(decision="deny_with_reason", reason="budget spent")
    transport = RatelordTransport(
        provider(httpx2), client=daemon.client(), agent_id="a", identity_id="key:a", llm=True
    )
    api = openai.OpenAI(
        api_key="sk-test",
        base_url="https://api.test/v1",
        max_retries=2,
        http_client=httpx2.Client(transport=transport),
    )
    with pytest.raises(openai.RateLimitError):
        api.chat.completions.create(**CHAT)
    assert len(daemon.asks) == 1
