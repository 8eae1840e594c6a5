"""Client and AsyncClient against an in-process fake daemon (httpx2.MockTransport)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx2
import pytest

from ratelord.client import (
    AsyncClient,
    Client,
    Decision,
    IntentRequest,
    RatelordProtocolError,
    RatelordRequestError,
    RatelordTransportError,
    RatelordUnavailable,
    UsageReport,
)

URL = "http://ratelord.test"
APPROVE = {"intent_id": "int-1", "decision": "approve", "modifications": {}, "reason": None}
HEALTH = {
    "status": "ok",
    "version": "0.1.0",
    "uptime_seconds": 1.0,
    "started_at": "2026-01-01T00:00:00Z",
    "high_water_seq": 3,
}
Handler = Callable[[httpx2.Request], httpx2.Response]


def error(status: int, code: str, message: str, **headers: str) -> httpx2.Response:
    body = {"error": {"code": code, "message": message, "request_id": "req-9"}}
    return httpx2.Response(status, json=body, headers=headers)


def scripted(*responses: httpx2.Response) -> tuple[Handler, list[httpx2.Request]]:
    """A handler answering ``responses`` in order, and the requests it saw."""
    seen: list[httpx2.Request] = []
    queue = list(responses)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return queue.pop(0)

    return handler, seen


def make_client(handler: Handler, sleeps: list[float] | None = None, **kwargs: object) -> Client:
    sleeper = (sleeps if sleeps is not None else []).append
    return Client(URL, transport=httpx2.MockTransport(handler), sleep=sleeper, **kwargs)  # type: ignore[arg-type]


def refuse(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("Connection refused", request=request)


def test_ask_sends_the_intent_and_decodes_the_decision() -> None:
    handler, seen = scripted(httpx2.Response(200, json=APPROVE))
    with make_client(handler, token="s3cret") as client:
        decision = client.ask(agent_id="a1", identity_id="id-a", resource="requests", cost=2)
    assert decision == Decision(intent_id="int-1", decision="approve")
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/v1/intent")
    assert request.headers["authorization"] == "Bearer s3cret"
    body = json.loads(request.content)
    assert body["agent_id"] == "a1" and body["cost"] == 2 and body["scope_id"] == "sentinel:global"


def test_ask_accepts_a_model_and_field_overrides() -> None:
    handler, seen = scripted(httpx2.Response(200, json=APPROVE))
    intent = IntentRequest(agent_id="a1", identity_id="id-a", urgency="low")
    make_client(handler).ask(intent, urgency="high")
    assert json.loads(seen[0].content)["urgency"] == "high"


def test_invalid_intent_is_refused_before_sending() -> None:
    handler, seen = scripted()
    with pytest.raises(RatelordRequestError) as info:
        make_client(handler).ask(agent_id="a1", identity_id="id-a", cost=-1)
    assert info.value.code == "invalid_request" and info.value.status_code is None
    assert seen == []


def test_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATELORD_URL", "http://10.1.2.3:9000/")
    assert Client().url == "http://10.1.2.3:9000"
    monkeypatch.delenv("RATELORD_URL")
    assert Client().url == "http://127.0.0.1:8090"


def test_repr_never_shows_the_token() -> None:
    assert "s3cret" not in repr(Client(URL, token="s3cret"))


def test_503_is_retried_honouring_retry_after() -> None:
    handler, seen = scripted(
        error(503, "initializing", "replaying the log", **{"Retry-After": "2"}),
        error(429, "overloaded", "too many requests", **{"Retry-After": "0.5"}),
        httpx2.Response(200, json=HEALTH),
    )
    sleeps: list[float] = []
    health = make_client(handler, sleeps).health()
    assert health.status == "ok" and health.high_water_seq == 3
    assert len(seen) == 3
    assert sleeps == [2.0, 0.5]


def test_retry_without_retry_after_backs_off_exponentially() -> None:
    handler, _ = scripted(*[error(503, "busy", "x")] * 3, httpx2.Response(200, json=HEALTH))
    sleeps: list[float] = []
    make_client(handler, sleeps).health()
    assert [0.1, 0.2, 0.4] <= sleeps <= [0.2, 0.4, 0.8]


def test_400_is_never_retried_and_carries_the_daemons_error() -> None:
    handler, seen = scripted(error(400, "invalid_intent", "cost must be >= 0"))
    with pytest.raises(RatelordRequestError) as info:
        make_client(handler).ask(agent_id="a1", identity_id="id-a")
    assert len(seen) == 1
    exc = info.value
    assert (exc.status_code, exc.code, exc.message, exc.request_id) == (
        400,
        "invalid_intent",
        "cost must be >= 0",
        "req-9",
    )
    assert "cost must be >= 0" in str(exc)


def test_retries_run_out_into_a_fail_safe_denial() -> None:
    handler, seen = scripted(*[error(503, "initializing", "starting")] * 4)
    decision = make_client(handler, retries=3).ask(agent_id="a1", identity_id="id-a")
    assert len(seen) == 4
    assert decision.decision == "deny_with_reason"
    assert decision.reason is not None and "503 initializing" in decision.reason


def test_unreachable_daemon_denies_by_default() -> None:
    decision = make_client(refuse).ask(agent_id="a1", identity_id="id-a")
    assert not decision.allowed
    assert decision.reason == f"ratelord-d unreachable at {URL}: connection refused"


def test_timeout_denies_and_says_so() -> None:
    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    decision = make_client(slow, timeout=0.25).ask(agent_id="a1", identity_id="id-a")
    assert decision.reason == f"ratelord-d unreachable at {URL}: no answer within 0.25 s"


def test_fail_open_approves_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ratelord.client"):
        decision = make_client(refuse, fail_open=True).ask(agent_id="a1", identity_id="id-a")
    assert decision.decision == "approve"
    assert decision.intent_id.startswith("local:")
    assert "fail-open" in caplog.text


def test_other_calls_raise_transport_errors_not_httpx_ones() -> None:
    with pytest.raises(RatelordTransportError) as info:
        make_client(refuse).health()
    assert isinstance(info.value.__cause__, httpx2.ConnectError)


def test_a_garbled_answer_is_a_protocol_error() -> None:
    handler, _ = scripted(httpx2.Response(200, content=b"<html>proxy</html>"))
    with pytest.raises(RatelordProtocolError):
        make_client(handler).health()


def test_500_is_unavailable_without_retry() -> None:
    handler, seen = scripted(httpx2.Response(500, content=b"boom"))
    with pytest.raises(RatelordUnavailable) as info:
        make_client(handler).health()
    assert info.value.status_code == 500 and len(seen) == 1


def test_report_usage_posts_the_report() -> None:
    accepted = {"accepted": True, "events": 2, "pools": ["mock:requests:acct-1"]}
    handler, seen = scripted(httpx2.Response(200, json=accepted))
    result = make_client(handler).report_usage(
        UsageReport(identity_id="id-a", intent_id="int-1", cost=3)
    )
    assert result.pools == ["mock:requests:acct-1"]
    assert seen[0].url.path == "/v1/usage"
    assert json.loads(seen[0].content)["intent_id"] == "int-1"


# --------------------------------------------------------------------------- async twin


async def test_async_client_retries_and_fails_safe() -> None:
    handler, seen = scripted(
        error(503, "initializing", "starting", **{"Retry-After": "1"}),
        httpx2.Response(200, json=APPROVE),
    )
    sleeps: list[float] = []

    async def sleeper(seconds: float) -> None:
        sleeps.append(seconds)

    async with AsyncClient(URL, transport=httpx2.MockTransport(handler), sleep=sleeper) as client:
        decision = await client.ask(agent_id="a1", identity_id="id-a")
    assert decision.intent_id == "int-1" and sleeps == [1.0] and len(seen) == 2

    async with AsyncClient(URL, transport=httpx2.MockTransport(refuse)) as client:
        denied = await client.ask(agent_id="a1", identity_id="id-a")
        with pytest.raises(RatelordTransportError):
            await client.health()
    assert denied.decision == "deny_with_reason"
