"""The SDK checks an approval that waited before spending it: expired or revoked, it asks again."""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx2

from ratelord.client import AsyncClient, Client, RatelordTransport
from ratelord.engine.clock import iso

URL = "http://ratelord.test"
FUTURE, PAST = iso(4_000_000_000.0), iso(1_000_000_000.0)


class Daemon:
    """Answers the first intent with a wait, later ones at once; ``holds`` answers checks."""

    def __init__(self, *, valid_until: str = FUTURE, holds: bool = True, status: int = 200):
        self.valid_until, self.holds, self.status = valid_until, holds, status
        self.log: list[tuple[str, Any]] = []
        self.asked = 0

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.log.append((path, json.loads(request.content) if request.content else None))
        if path.endswith("/check"):
            intent_id = path.split("/")[3]
            body = {"intent_id": intent_id, "holds": self.holds, "reason": None}
            return httpx2.Response(self.status, json=body)
        if path == "/v1/usage":
            return httpx2.Response(200, json={"accepted": True})
        self.asked += 1
        if self.asked == 1:
            return httpx2.Response(
                200,
                json={
                    "intent_id": "int-1",
                    "decision": "approve_with_modifications",
                    "modifications": {"wait_seconds": 3.0},
                    "valid_until": self.valid_until,
                },
            )
        return httpx2.Response(200, json={"intent_id": f"int-{self.asked}", "decision": "approve"})

    def provider(self, request: httpx.Request) -> httpx.Response:
        self.log.append(("provider", None))
        return httpx.Response(200, json={})

    def sleep(self, seconds: float) -> None:
        self.log.append(("sleep", seconds))

    def client(self) -> Client:
        return Client(URL, transport=httpx2.MockTransport(self.handle), sleep=self.sleep)

    def paths(self) -> list[str]:
        return [p for p, _ in self.log]


def test_a_revoked_approval_is_not_spent_the_guard_asks_again() -> None:
    daemon = Daemon(holds=False)
    with daemon.client().guard(identity="id-a", report_cost=1) as g:
        daemon.log.append(("body", None))
    assert daemon.paths() == [
        "/v1/intent",
        "sleep",
        "/v1/intents/int-1/check",
        "/v1/intent",
        "body",
        "/v1/usage",
    ]
    assert g.allowed and daemon.log[-1][1]["intent_id"] == "int-2"


def test_an_approval_that_still_holds_is_spent_after_one_check() -> None:
    daemon = Daemon(holds=True)
    with daemon.client().guard(identity="id-a", report_cost=1):
        daemon.log.append(("body", None))
    assert daemon.paths() == ["/v1/intent", "sleep", "/v1/intents/int-1/check", "body", "/v1/usage"]
    assert daemon.log[-1][1]["intent_id"] == "int-1"


def test_an_expired_approval_is_given_back_without_asking_whether_it_holds() -> None:
    daemon = Daemon(valid_until=PAST)
    with daemon.client().guard(identity="id-a", report_cost=1):
        pass
    assert daemon.paths() == ["/v1/intent", "sleep", "/v1/usage", "/v1/intent", "/v1/usage"]
    given_back = daemon.log[2][1]
    assert (given_back["intent_id"], given_back["cost"]) == ("int-1", 0.0)


def test_an_approval_that_cannot_be_checked_is_not_spent() -> None:
    daemon = Daemon(status=400)
    with daemon.client().guard(identity="id-a", report_cost=1) as g:
        pass
    assert daemon.paths()[:4] == ["/v1/intent", "sleep", "/v1/intents/int-1/check", "/v1/intent"]
    assert g.allowed and g.decision is not None and g.decision.intent_id == "int-2"


def test_the_transport_checks_before_forwarding() -> None:
    daemon = Daemon(holds=False)
    transport = RatelordTransport(
        httpx.MockTransport(daemon.provider),
        client=daemon.client(),
        agent_id="a",
        identity_id="id-a",
    )
    with httpx.Client(base_url="https://api.test", transport=transport) as api:
        api.get("/repos")
    assert daemon.paths()[:5] == [
        "/v1/intent",
        "sleep",
        "/v1/intents/int-1/check",
        "/v1/intent",
        "provider",
    ]


async def test_the_async_guard_checks_too() -> None:
    daemon = Daemon(holds=False)

    async def sleep(seconds: float) -> None:
        daemon.sleep(seconds)

    client = AsyncClient(URL, transport=httpx2.MockTransport(daemon.handle), sleep=sleep)
    async with client.guard(identity="id-a") as g:
        pass
    assert "/v1/intents/int-1/check" in daemon.paths()
    assert g.decision is not None and g.decision.intent_id == "int-2"
    await client.aclose()


def test_an_approval_that_did_not_wait_costs_no_check() -> None:
    daemon = Daemon()
    daemon.asked = 1  # the next answer approves at once
    with daemon.client().guard(identity="id-a"):
        pass
    assert daemon.paths() == ["/v1/intent"]
