"""The SDK against the real ratelord-d: guard, fail-safe/open, retries, transports.

A small local "provider" (``http.server`` on a free port, in a thread) stands
in for GitHub so the transport's header reports can be checked end to end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import requests

from ratelord.client import (
    Client,
    RatelordAdapter,
    RatelordDenied,
    RatelordTransport,
)
from tests.e2e.conftest import MOCK_CONFIG
from tests.support.daemon import RunningDaemon, events, wait_for
from tests.support.daemon import pool as known_pool

pytestmark = pytest.mark.e2e

SHAPE_POLICY = """
policies:
  - id: pacing
    target: global
    kind: soft
    rules:
      - name: always-shape
        when: 'true'
        action: shape
        params: {wait_seconds: 0.3}
"""

DENY_POLICY = """
policies:
  - id: caps
    target: global
    kind: hard
    rules:
      - name: no-big-spends
        when: 'intent.cost > 10'
        action: deny
        reason: "intents above 10 are refused"
"""


def register(daemon: RunningDaemon, identity_id: str = "id-a", principal: str = "acct-1") -> None:
    body = {"identity_id": identity_id, "provider_id": "mock", "principal": principal}
    with daemon.client() as http:
        response = http.post("/v1/identities", json=body)
    assert response.status_code == 201, response.text


def pool(daemon: RunningDaemon, pool_id: str) -> dict[str, Any]:
    """The pool as the daemon shows it; empty while it is not known (before its first poll:
    a test waiting for that poll must not fail on the 404 that comes first under load)."""
    with daemon.client() as http:
        return known_pool(http, pool_id) or {}


# --------------------------------------------------------------------------- local servers


class Server:
    """A tiny HTTP server in a thread; ``respond(handler)`` answers each request."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler], None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                respond(self)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: Any, **headers: str) -> None:
    payload = json.dumps(body).encode()
    handler.send_response(status)
    for name, value in {"content-type": "application/json", **headers}.items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


@pytest.fixture
def github_like() -> Iterator[Server]:
    """A provider answering every request with GitHub-style rate-limit headers."""
    reset = str(int(time.time()) + 3600)

    def respond(handler: BaseHTTPRequestHandler) -> None:
        resource = "search" if handler.path.startswith("/search/") else "core"
        send(
            handler,
            200,
            {"ok": True},
            **{
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "4321",
                "x-ratelimit-used": "679",
                "x-ratelimit-reset": reset,
                "x-ratelimit-resource": handler.headers.get("x-bucket", resource),
            },
        )

    with Server(respond) as server:
        yield server


# --------------------------------------------------------------------------- decisions


def test_approve_path(mock_daemon: RunningDaemon) -> None:
    register(mock_daemon)
    with Client(mock_daemon.url) as client:
        assert client.health().status == "ok"
        decision = client.ask(agent_id="a1", identity_id="id-a", resource="requests", cost=1)
        with client.guard(identity="id-a", agent="a1", resource="requests", cost=1) as g:
            assert g.allowed
    assert decision.decision == "approve"
    assert decision.evaluation is not None
    assert decision.evaluation.tightest_pool == "mock:requests:acct-1"


def test_shaping_wait_elapses_before_the_body(daemon_factory: Callable[..., RunningDaemon]) -> None:
    daemon = daemon_factory(config=MOCK_CONFIG, policy=SHAPE_POLICY)
    register(daemon)
    with Client(daemon.url) as client:
        started = time.monotonic()
        with client.guard(identity="id-a", agent="a1", resource="requests", cost=1) as g:
            entered = time.monotonic()
    assert g.decision is not None and g.decision.decision == "approve_with_modifications"
    assert g.allowed and g.waited == pytest.approx(0.3)
    assert entered - started >= 0.3


def test_hard_rule_denies_with_its_reason(daemon_factory: Callable[..., RunningDaemon]) -> None:
    daemon = daemon_factory(config=MOCK_CONFIG, policy=DENY_POLICY)
    register(daemon)
    with Client(daemon.url) as client:
        with client.guard(identity="id-a", agent="a1", resource="requests", cost=50) as g:
            pass
        transport = RatelordTransport(
            client=client,
            agent_id="a1",
            identity_id="id-a",
            route=lambda request: {"resource": "requests", "cost": 50},
        )
        with (
            httpx.Client(transport=transport) as api,
            pytest.raises(RatelordDenied, match="intents above 10 are refused"),
        ):
            api.get("http://127.0.0.1:9/never-sent")
    assert not g.allowed
    assert g.reason is not None and "intents above 10 are refused" in g.reason


# --------------------------------------------------------------------------- failure modes


def test_fail_safe_and_fail_open_when_the_daemon_is_stopped(mock_daemon: RunningDaemon) -> None:
    mock_daemon.stop()
    with Client(mock_daemon.url, timeout=1.0) as client:
        denied = client.ask(agent_id="a1", identity_id="id-a")
    with Client(mock_daemon.url, timeout=1.0, fail_open=True) as client:
        approved = client.ask(agent_id="a1", identity_id="id-a")
    assert denied.decision == "deny_with_reason"
    assert denied.reason is not None
    assert denied.reason.startswith(f"ratelord-d unreachable at {mock_daemon.url}")
    assert approved.decision == "approve"


def test_503_then_200_is_retried_honouring_retry_after() -> None:
    answers = [503, 503, 200]
    decision = {"intent_id": "int-1", "decision": "approve"}
    error = {"error": {"code": "initializing", "message": "replaying the log"}}

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("content-length", 0)))
        status = answers.pop(0)
        if status == 503:
            send(handler, 503, error, **{"retry-after": "0.2"})
        else:
            send(handler, 200, decision)

    with Server(respond) as server, Client(server.url) as client:
        started = time.monotonic()
        result = client.ask(agent_id="a1", identity_id="id-a")
        elapsed = time.monotonic() - started
    assert result.intent_id == "int-1" and answers == []
    assert elapsed >= 0.4


# --------------------------------------------------------------------------- transports


def test_transport_reports_github_headers_into_the_pool(
    mock_daemon: RunningDaemon, github_like: Server
) -> None:
    register(mock_daemon)
    with Client(mock_daemon.url) as client:
        transport = RatelordTransport(
            client=client,
            agent_id="crawler-01",
            identity_id="id-a",
            route=lambda request: {"resource": "requests", "cost": 1},
        )
        with httpx.Client(base_url=github_like.url, transport=transport) as api:
            assert api.get("/repos/acme/api").json() == {"ok": True}
    core = pool(mock_daemon, "mock:core:acct-1")
    assert (core["remaining"], core["limit"]) == (4321, 5000)


def test_header_bucket_requests_lands_in_the_mock_requests_pool(
    mock_daemon: RunningDaemon, github_like: Server
) -> None:
    register(mock_daemon)
    with Client(mock_daemon.url) as client:
        transport = RatelordTransport(
            client=client,
            agent_id="crawler-01",
            identity_id="id-a",
            route=lambda request: {"resource": "requests", "cost": 1},
        )
        with httpx.Client(base_url=github_like.url, transport=transport) as api:
            api.get("/user", headers={"x-bucket": "requests"})
    assert pool(mock_daemon, "mock:requests:acct-1")["remaining"] == 4321


def test_requests_adapter_reports_search_headers(
    mock_daemon: RunningDaemon, github_like: Server
) -> None:
    register(mock_daemon)
    with Client(mock_daemon.url) as client, requests.Session() as session:
        session.mount(
            github_like.url,
            RatelordAdapter(
                client=client,
                agent_id="crawler-01",
                identity_id="id-a",
                route=lambda request: {"resource": "requests", "cost": 1},
            ),
        )
        assert session.get(f"{github_like.url}/search/issues?q=x").status_code == 200
    assert pool(mock_daemon, "mock:search:acct-1")["remaining"] == 4321


# ----------------------------------------------------------- approvals that stay true

WAIT_POLICY = """
policies:
  - id: pacing
    target: global
    kind: soft
    rules:
      - name: wait-a-little
        when: 'true'
        action: shape
        params: {wait_seconds: 2.0}
"""


def test_an_approval_whose_pool_drifted_during_its_wait_is_not_spent(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    """A guard told to wait; meanwhile a consumer ratelord cannot see takes most of the pool
    and the next poll shows it (drift): the daemon revokes the approval on the event stream,
    the guard's check before spending learns it, and the guard asks again instead."""
    config = {
        "providers": {
            "mock": {
                "poll_interval_seconds": 0.5,
                "principals": {"acct-1": {"pools": {"requests": {"limit": 1000}}}},
            }
        }
    }
    daemon = daemon_factory(config=config, policy=WAIT_POLICY)
    register(daemon)
    pool_id = "mock:requests:acct-1"
    wait_for(lambda: pool(daemon, pool_id).get("remaining") == 1000, what="first poll")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) > 1:
            return
        with daemon.client() as http:
            spent = {"principal": "acct-1", "resource": "requests", "amount": 900}
            assert http.post("/v1/admin/mock/external-usage", json=spent).status_code == 200
            wait_for(lambda: events(http, type="approval_revoked"), timeout=10, what="revocation")

    with (
        Client(daemon.url, sleep=sleep) as client,
        client.guard(identity="id-a", agent="a1", cost=400, report_cost=400) as g,
    ):
        pass
    assert slept[0] == 2.0
    with daemon.client() as http:
        revoked = events(http, type="approval_revoked")
        reported = events(http, type="usage_reported")
    assert len(revoked) == 1
    # The 100 left do not cover 400: the guard was deferred, never spent the first approval.
    assert not g.allowed
    assert g.decision is not None and g.decision.intent_id != revoked[0]["payload"]["intent_id"]
    assert reported == []
