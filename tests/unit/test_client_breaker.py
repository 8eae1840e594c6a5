"""The SDK's circuit breaker: a hung or down daemon is not asked call after call; the fail
mode applies at once, and the daemon is probed again later (half-open)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest

from ratelord.client import (
    AsyncClient,
    BreakerSettings,
    Client,
    RatelordDenied,
    RatelordTransport,
    RatelordTransportError,
)
from ratelord.client._breaker import Breaker

TIMEOUT = 0.4


@pytest.fixture
def hung_url() -> Iterator[str]:
    """A daemon that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_hung_daemon_costs_the_timeout_only_until_the_circuit_opens(hung_url: str) -> None:
    breaker = BreakerSettings(threshold=2, cooldown=60.0)
    with Client(hung_url, timeout=TIMEOUT, breaker=breaker) as client:
        started = time.monotonic()
        decisions = [client.ask(agent_id="a", identity_id="i") for _ in range(20)]
        elapsed = time.monotonic() - started
    assert elapsed < 2 * TIMEOUT + 1.0, elapsed  # two timeouts, then none
    assert all(d.decision == "deny_with_reason" for d in decisions)  # fail-safe
    assert "no answer within" in (decisions[0].reason or "")
    assert "circuit open" in (decisions[-1].reason or "")


def test_fail_open_approves_at_once_while_the_circuit_is_open(hung_url: str) -> None:
    breaker = BreakerSettings(threshold=1, cooldown=60.0)
    with Client(hung_url, timeout=TIMEOUT, fail_open=True, breaker=breaker) as client:
        started = time.monotonic()
        decisions = [client.ask(agent_id="a", identity_id="i") for _ in range(10)]
        assert time.monotonic() - started < TIMEOUT + 1.0
    assert all(d.decision == "approve" for d in decisions)


def test_the_transport_refuses_at_once_through_an_open_circuit(hung_url: str) -> None:
    """The SDK's HTTP transport (what openai/anthropic/githubkit use) behind a hung daemon."""
    upstream = httpx2.MockTransport(lambda request: httpx2.Response(200, json={}))
    breaker = BreakerSettings(threshold=2, cooldown=60.0)
    with Client(hung_url, timeout=TIMEOUT, breaker=breaker) as ratelord:
        transport = RatelordTransport(
            upstream, client=ratelord, agent_id="a", identity_id="i", refusal="response"
        )
        with httpx2.Client(transport=transport, base_url="http://api.test") as api:
            started = time.monotonic()
            answers = [api.get("/x") for _ in range(10)]
            elapsed = time.monotonic() - started
    assert elapsed < 2 * TIMEOUT + 1.0, elapsed
    assert [a.status_code for a in answers] == [429] * 10
    assert answers[-1].headers["x-should-retry"] == "false"


def test_a_probe_after_the_cooldown_closes_the_circuit_when_the_daemon_is_back() -> None:
    up = {"now": False}
    asked: list[str] = []

    def daemon(request: httpx2.Request) -> httpx2.Response:
        asked.append(request.url.path)
        if not up["now"]:
            raise httpx2.ConnectError("connection refused")
        return httpx2.Response(
            200, json={"intent_id": "int_1", "decision": "approve", "modifications": {}}
        )

    breaker = BreakerSettings(threshold=2, cooldown=0.2)
    with Client("http://d.test", transport=httpx2.MockTransport(daemon), breaker=breaker) as client:
        for _ in range(5):
            client.ask(agent_id="a", identity_id="i")
        assert len(asked) == 2  # then the circuit opened
        time.sleep(0.25)
        client.ask(agent_id="a", identity_id="i")  # the probe: still down, open again (0.4 s)
        assert len(asked) == 3 and client.breaker.state == "open"
        up["now"] = True
        client.ask(agent_id="a", identity_id="i")
        assert len(asked) == 3  # not yet: the cooldown doubled
        time.sleep(0.45)
        assert client.ask(agent_id="a", identity_id="i").decision == "approve"
        assert client.breaker.state == "closed" and client.breaker.failures == 0
        assert client.ask(agent_id="a", identity_id="i").decision == "approve"
        assert len(asked) == 5


def test_one_probe_at_a_time_and_an_answer_resets_the_count() -> None:
    now = [0.0]
    breaker = Breaker(
        BreakerSettings(threshold=3, cooldown=10.0, max_cooldown=15.0), lambda: now[0]
    )
    for _ in range(2):
        breaker.before("u")
        breaker.failed(False)
    breaker.succeeded()  # an answer: the two failures are forgotten
    for _ in range(3):
        breaker.failed(breaker.before("u"))
    assert breaker.state == "open"
    with pytest.raises(RatelordTransportError, match=r"next probe in 10\.0 s"):
        breaker.before("u")
    now[0] = 10.0
    assert breaker.before("u") is True  # the probe
    with pytest.raises(RatelordTransportError):
        breaker.before("u")  # the others still fail at once
    breaker.failed(True)
    now[0] = 24.0
    assert breaker.state == "open"  # 15 s (doubled, capped), not 10
    now[0] = 25.0
    assert breaker.before("u") is True


def test_off_with_threshold_zero(hung_url: str) -> None:
    breaker = BreakerSettings(threshold=0)
    with Client(hung_url, timeout=0.2, breaker=breaker) as client:
        started = time.monotonic()
        for _ in range(3):
            client.ask(agent_id="a", identity_id="i")
        assert time.monotonic() - started >= 3 * 0.2


def test_the_async_client_shares_the_breaker(hung_url: str) -> None:
    async def main() -> list[str]:
        breaker = BreakerSettings(threshold=1, cooldown=60.0)
        async with AsyncClient(hung_url, timeout=TIMEOUT, breaker=breaker) as client:
            started = time.monotonic()
            out = [(await client.ask(agent_id="a", identity_id="i")).decision for _ in range(8)]
            assert time.monotonic() - started < TIMEOUT + 1.0
            return out

    assert asyncio.run(main()) == ["deny_with_reason"] * 8


def test_a_guard_raises_denied_at_once_through_an_open_circuit(hung_url: str) -> None:
    breaker = BreakerSettings(threshold=1, cooldown=60.0)
    with Client(hung_url, timeout=TIMEOUT, breaker=breaker) as client:
        started = time.monotonic()
        for _ in range(5):
            with (
                pytest.raises(RatelordDenied),
                client.guard(identity="i", agent="a", raise_on_deny=True),
            ):
                pass
        assert time.monotonic() - started < TIMEOUT + 1.0
