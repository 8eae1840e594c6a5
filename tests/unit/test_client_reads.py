from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx2
import pytest

from ratelord.client import (
    AsyncClient,
    Client,
    RatelordProtocolError,
    RatelordRequestError,
    RatelordTransportError,
)
from ratelord.schema import Decision
from ratelord.tui.main import daemon_client

Handler = Callable[[httpx2.Request], httpx2.Response]

POOL = {
    "pool_id": "github:core:user/alice",
    "provider_id": "github",
    "resource": "core",
    "principal": "user/alice",
    "unit": "requests",
    "limit": 5000.0,
    "remaining": 4000.0,
    "used": 1000.0,
    "reset_at": "2026-01-01T13:00:00Z",
    "window": "fixed",
    "window_seconds": 3600.0,
    "members": ["pat:alice"],
    "status": "OK",
    "forecast": None,
    "stale_seconds": 1.0,
    "a_field_added_later": True,
}


def api(handler: Handler) -> AsyncClient:
    """The client as the TUI builds it (no retries: its feed reconnects by itself)."""
    return daemon_client("http://daemon.test/", transport=httpx2.MockTransport(handler))


async def test_pool_detail_sends_the_raw_id_and_decodes_history_and_consumers() -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.raw_path.decode())
        body = {
            **POOL,
            "history": [{"ts": "2026-01-01T12:00:00Z", "remaining": 4100.0}],
            "top_consumers": {"agents": [{"id": "a1", "used": 60.0}], "identities": []},
        }
        return httpx2.Response(200, json=body)

    async with api(handler) as client:
        detail = await client.pool("github:core:user/alice")
    assert seen == ["/v1/pools/github:core:user/alice"]
    assert detail.remaining == 4000.0
    assert detail.history[0].remaining == 4100.0
    assert detail.top_consumers.agents[0].id == "a1"


async def test_stats_tolerate_missing_fields() -> None:
    async with api(lambda r: httpx2.Response(200, json={"intents_total": 3})) as client:
        stats = await client.stats()
    assert stats.intents_total == 3
    assert stats.intents_per_minute == []
    assert stats.store.commit_lag_ms == 0.0


async def test_events_asks_by_type_and_limit() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.params["type"] == "intent_decided"
        assert request.url.params["limit"] == "2"
        return httpx2.Response(200, json={"events": [{"seq": 9}, {"seq": 4}], "next_after_seq": 9})

    async with api(handler) as client:
        page = await client.events(type="intent_decided", limit=2)
    assert [e["seq"] for e in page.events] == [9, 4]
    assert page.next_after_seq == 9


async def test_a_400_is_rejected_with_the_daemons_code_and_message() -> None:
    error = {
        "error": {"code": "bad_request", "message": "agent_id is required", "request_id": "r1"}
    }
    async with api(lambda r: httpx2.Response(400, json=error)) as client:
        with pytest.raises(RatelordRequestError) as caught:
            await client.post("/v1/intent", {}, into=Decision)
    assert (caught.value.status_code, caught.value.code) == (400, "bad_request")
    assert "agent_id is required" in str(caught.value)


@pytest.mark.parametrize(
    "respond",
    [
        lambda r: httpx2.Response(503, headers={"Retry-After": "1"}, json={}),
        lambda r: httpx2.Response(200, content=b"not json"),
        lambda r: httpx2.Response(200, json={"pools": [{"pool_id": 1}]}),
    ],
)
async def test_outages_and_garbage_are_unavailable(respond: Handler) -> None:
    async with api(respond) as client:
        with pytest.raises(RatelordTransportError):
            await client.pools()


async def test_connection_errors_do_not_leak_httpx_exceptions() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    async with api(refuse) as client:
        with pytest.raises(RatelordTransportError) as caught:
            await client.health()
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)


async def test_event_stream_resumes_after_the_given_seq_and_yields_events() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b": ping\n\n"
        for seq in (5, 6):
            yield f"id: {seq}\nevent: intent_decided\ndata: {json.dumps({'seq': seq})}\n\n".encode()

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.params["stream"] == "true"
        assert request.url.params["after_seq"] == "4"
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    async with api(handler) as client, client.event_stream(after_seq=4) as events:
        assert [event["seq"] async for event in events] == [5, 6]


async def test_a_broken_stream_raises_unavailable() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'id: 1\ndata: {"seq": 1}\n\n'
        raise httpx2.ReadError("connection reset")

    handler: Handler = lambda r: httpx2.Response(200, content=body())  # noqa: E731
    received: list[int] = []
    async with api(handler) as client:
        with pytest.raises(RatelordTransportError):
            async with client.event_stream(after_seq=0) as events:
                async for event in events:
                    received.append(event["seq"])
    assert received == [1]


async def test_the_token_travels_as_a_bearer_header_and_never_in_errors() -> None:
    seen: list[str | None] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("authorization"))
        error = {"error": {"code": "unauthorized", "message": "missing or wrong bearer token"}}
        return httpx2.Response(401, json=error)

    client = daemon_client(
        "http://daemon.test", token="s3cr3t-t0ken", transport=httpx2.MockTransport(handler)
    )
    async with client:
        with pytest.raises(RatelordRequestError) as caught:
            await client.health()
    assert seen == ["Bearer s3cr3t-t0ken"]
    assert caught.value.status_code == 401
    assert "s3cr3t-t0ken" not in str(caught.value)


async def test_a_broken_event_on_the_stream_is_a_protocol_error() -> None:
    handler: Handler = lambda r: httpx2.Response(200, content=b"id: 1\ndata: {nope\n\n")  # noqa: E731
    async with api(handler) as client:
        with pytest.raises(RatelordProtocolError):
            async with client.event_stream(after_seq=0) as events:
                _ = [event async for event in events]


def test_the_sync_client_streams_sse_and_ndjson() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST":
            return httpx2.Response(200, content=b'{"phase": "replay"}\n\n{"result": {}}\n')
        assert request.headers["last-event-id"] == "7"
        return httpx2.Response(200, content=b": ping\n\nid: 8\nevent: x\ndata: {}\n\n")

    with Client("http://daemon.test", transport=httpx2.MockTransport(handler)) as client:
        messages = list(client.sse("/v1/events", last_event_id="7", read_timeout=1.0))
        lines = list(client.ndjson("/v1/admin/rebuild", read_timeout=1.0))
    assert [(m.id, m.event, m.data) for m in messages] == [("8", "x", "{}")]
    assert lines == [{"phase": "replay"}, {"result": {}}]
