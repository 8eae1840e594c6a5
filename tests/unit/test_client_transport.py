"""The transports (in front of httpx2 and legacy httpx clients) and the requests adapter
in front of a fake provider API."""

from __future__ import annotations

import json
import logging
from types import ModuleType
from typing import Any

import httpx
import httpx2
import pytest
import requests
from requests.adapters import HTTPAdapter

from ratelord.client import (
    AsyncClient,
    AsyncRatelordTransport,
    Client,
    RatelordAdapter,
    RatelordDenied,
    RatelordTransport,
    rate_limit_headers,
)

URL = "http://ratelord.test"
GITHUB_HEADERS = {
    "x-ratelimit-limit": "5000",
    "x-ratelimit-remaining": "4321",
    "x-ratelimit-reset": "1767229200",
    "x-ratelimit-resource": "core",
    "date": "Thu, 01 Jan 2026 00:00:00 GMT",
    "content-type": "application/json",
    "set-cookie": "session=secret",
}


@pytest.fixture(params=[httpx2, httpx], ids=["httpx2", "httpx"])
def library(request: pytest.FixtureRequest) -> ModuleType:
    """The agent's HTTP library: the transports plug into either."""
    return request.param  # type: ignore[no-any-return]


class Recorder:
    """A fake daemon and a fake provider (of the agent's ``library``), logging every call."""

    def __init__(
        self,
        decision: dict[str, Any] | None = None,
        usage_status: int = 200,
        library: ModuleType = httpx2,
    ) -> None:
        self.decision = {"intent_id": "int-3", "decision": "approve", **(decision or {})}
        self.usage_status = usage_status
        self.library = library
        self.log: list[tuple[str, Any]] = []

    def daemon(self, request: httpx2.Request) -> httpx2.Response:
        self.log.append((request.url.path, json.loads(request.content)))
        if request.url.path == "/v1/usage":
            return httpx2.Response(self.usage_status, json={"accepted": True})
        return httpx2.Response(200, json=self.decision)

    def provider(self, request: Any) -> Any:
        self.log.append(("provider", str(request.url)))
        return self.library.Response(200, headers=GITHUB_HEADERS, json={"ok": True})

    def sleep(self, seconds: float) -> None:
        self.log.append(("sleep", seconds))

    def client(self) -> Client:
        return Client(URL, transport=httpx2.MockTransport(self.daemon), sleep=self.sleep)

    def api(self, **options: Any) -> Any:
        transport = RatelordTransport(
            self.library.MockTransport(self.provider),
            client=self.client(),
            agent_id="crawler-01",
            identity_id="id-a",
            workload_id="repo_scan",
            **options,
        )
        return self.library.Client(base_url="https://api.github.test", transport=transport)


def cost_by_path(request: Any) -> dict[str, Any]:
    if request.url.path.startswith("/search/"):
        return {"resource": "search", "cost": 1}
    return {"resource": "core", "cost": 2}


def test_transport_asks_forwards_and_reports_rate_limit_headers(library: ModuleType) -> None:
    recorder = Recorder(library=library)
    response = recorder.api(route=cost_by_path).get("/search/code?q=x")
    assert isinstance(response, library.Response)
    assert response.json() == {"ok": True}
    (_, intent), (provider, url), (_, usage) = recorder.log
    assert (intent["agent_id"], intent["resource"], intent["cost"]) == ("crawler-01", "search", 1)
    assert intent["workload_id"] == "repo_scan"
    assert provider == "provider" and url.endswith("/search/code?q=x")
    assert usage["intent_id"] == "int-3"
    assert (usage["path"], usage["status_code"]) == ("/search/code", 200)
    assert usage["headers"] == {
        name: value
        for name, value in GITHUB_HEADERS.items()
        if name not in ("content-type", "set-cookie")
    }


def test_transport_waits_as_told_before_forwarding(library: ModuleType) -> None:
    recorder = Recorder(
        {"decision": "approve_with_modifications", "modifications": {"wait_seconds": 1.5}},
        library=library,
    )
    recorder.api().get("/user")
    assert [entry[0] for entry in recorder.log] == ["/v1/intent", "sleep", "provider", "/v1/usage"]
    assert recorder.log[1] == ("sleep", 1.5)


def test_transport_refuses_a_denied_request_with_the_reason(library: ModuleType) -> None:
    recorder = Recorder(
        {"decision": "deny_with_reason", "reason": "pool github:core is CRIT"}, library=library
    )
    with pytest.raises(RatelordDenied, match="pool github:core is CRIT") as info:
        recorder.api().get("/user")
    assert info.value.decision.intent_id == "int-3"
    assert [entry[0] for entry in recorder.log] == ["/v1/intent"]


def test_transport_fails_safe_when_the_daemon_is_down(library: ModuleType) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("Connection refused", request=request)

    provider_calls: list[Any] = []
    transport = RatelordTransport(
        library.MockTransport(lambda r: provider_calls.append(r) or library.Response(200)),
        client=Client(URL, transport=httpx2.MockTransport(refuse)),
        agent_id="a",
        identity_id="id-a",
    )
    with pytest.raises(RatelordDenied, match="ratelord-d unreachable"):
        library.Client(transport=transport).get("https://api.github.test/user")
    assert provider_calls == []


def test_a_failed_report_does_not_break_the_agents_request(
    caplog: pytest.LogCaptureFixture, library: ModuleType
) -> None:
    recorder = Recorder(usage_status=400, library=library)
    with caplog.at_level(logging.WARNING, logger="ratelord.client"):
        assert recorder.api().get("/user").status_code == 200
    assert "could not report usage" in caplog.text


async def test_async_transport_does_the_same(library: ModuleType) -> None:
    recorder = Recorder(
        {"decision": "approve_with_modifications", "modifications": {"wait_seconds": 0.5}},
        library=library,
    )

    async def sleep(seconds: float) -> None:
        recorder.sleep(seconds)

    ratelord = AsyncClient(URL, transport=httpx2.MockTransport(recorder.daemon), sleep=sleep)
    transport = AsyncRatelordTransport(
        library.MockTransport(recorder.provider),
        client=ratelord,
        agent_id="crawler-01",
        identity_id="id-a",
        route=cost_by_path,
    )
    async with library.AsyncClient(transport=transport) as api:
        response = await api.get("https://api.github.test/graphql")
    assert isinstance(response, library.Response)
    assert response.status_code == 200
    assert [entry[0] for entry in recorder.log] == ["/v1/intent", "sleep", "provider", "/v1/usage"]
    assert recorder.log[-1][1]["headers"]["x-ratelimit-remaining"] == "4321"


def test_rate_limit_headers_keeps_only_what_the_daemon_parses() -> None:
    items = [
        ("X-RateLimit-Remaining", "5"),
        ("RateLimit", '"burst";r=1'),
        ("RateLimit-Policy", '"burst";q=10'),
        ("anthropic-ratelimit-tokens-remaining", "9000"),
        ("Retry-After", "3"),
        ("Authorization", "Bearer nope"),
        ("x-ratelimit-huge", "x" * 5000),
        ("ratelimit", '"daily";r=7'),
    ]
    assert rate_limit_headers(items) == {
        "x-ratelimit-remaining": "5",
        "ratelimit": '"burst";r=1, "daily";r=7',
        "ratelimit-policy": '"burst";q=10',
        "anthropic-ratelimit-tokens-remaining": "9000",
        "retry-after": "3",
    }


# --------------------------------------------------------------------------- requests


def test_requests_adapter_asks_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()

    def fake_send(
        self: HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        recorder.log.append(("provider", request.url))
        response = requests.Response()
        response.status_code = 403
        response.headers.update({"X-RateLimit-Remaining": "0", "Retry-After": "60"})
        return response

    monkeypatch.setattr(HTTPAdapter, "send", fake_send)
    session = requests.Session()
    session.mount(
        "https://api.github.test/",
        RatelordAdapter(client=recorder.client(), agent_id="a1", identity_id="id-a"),
    )
    assert session.get("https://api.github.test/repos/acme/api").status_code == 403
    (_, intent), _, (_, usage) = recorder.log
    assert intent["identity_id"] == "id-a"
    assert (usage["path"], usage["status_code"]) == ("/repos/acme/api", 403)
    assert usage["headers"] == {"x-ratelimit-remaining": "0", "retry-after": "60"}


def test_requests_adapter_refuses_denied_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder({"decision": "deny_with_reason", "reason": "nope"})
    monkeypatch.setattr(HTTPAdapter, "send", lambda *a, **k: pytest.fail("must not send"))
    session = requests.Session()
    session.mount(
        "https://", RatelordAdapter(client=recorder.client(), agent_id="a", identity_id="i")
    )
    with pytest.raises(RatelordDenied, match="nope"):
        session.get("https://api.github.test/user")
