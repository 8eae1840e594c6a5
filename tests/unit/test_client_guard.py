"""client.guard(): the wait happens before the body, denials and reports behave."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import httpx2
import pytest

from ratelord.client import AsyncClient, Client, RatelordDenied, admit
from ratelord.schema import Decision, Modifications

URL = "http://ratelord.test"


class FakeDaemon:
    """Answers intents with ``decision`` and records every request and sleep, in order."""

    def __init__(self, decision: dict[str, object]) -> None:
        self.decision = {"intent_id": "int-7", "modifications": {}, "reason": None, **decision}
        self.log: list[tuple[str, object]] = []
        self.fail_usage = False

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.log.append((request.url.path, body))
        if request.url.path == "/v1/usage":
            if self.fail_usage:
                return httpx2.Response(400, json={"error": {"code": "bad", "message": "no"}})
            return httpx2.Response(200, json={"accepted": True, "events": 1, "pools": []})
        return httpx2.Response(200, json=self.decision)

    def sleep(self, seconds: float) -> None:
        self.log.append(("sleep", seconds))

    def client(self) -> Client:
        return Client(URL, transport=httpx2.MockTransport(self.handle), sleep=self.sleep)


SHAPE = {"decision": "approve_with_modifications", "modifications": {"wait_seconds": 2.5}}
DENY = {"decision": "deny_with_reason", "reason": "hard rule no-more (global-safety)"}


def test_shaped_guard_sleeps_before_the_body_then_reports_with_the_intent_id() -> None:
    daemon = FakeDaemon(SHAPE)
    with daemon.client().guard(identity="id-a", agent="a1", workload="build", cost=2) as g:
        daemon.log.append(("body", None))
        g.report(cost=3)
    assert [entry[0] for entry in daemon.log] == ["/v1/intent", "sleep", "body", "/v1/usage"]
    assert daemon.log[1] == ("sleep", 2.5)
    assert (g.allowed, g.waited) == (True, 2.5)
    intent, usage = daemon.log[0][1], daemon.log[3][1]
    assert intent["workload_id"] == "build" and intent["cost"] == 2  # type: ignore[index]
    assert usage["intent_id"] == "int-7" and usage["cost"] == 3  # type: ignore[index]
    assert usage["workload_id"] == "build"  # type: ignore[index]


def test_denied_guard_runs_the_body_but_reports_nothing() -> None:
    daemon = FakeDaemon(DENY)
    with daemon.client().guard(identity="id-a", report_cost=1) as g:
        ran = True
    assert ran and not g.allowed
    assert g.reason == "hard rule no-more (global-safety)"
    assert [entry[0] for entry in daemon.log] == ["/v1/intent"]


def test_raise_on_deny_skips_the_body() -> None:
    daemon = FakeDaemon(DENY)
    with (
        pytest.raises(RatelordDenied, match="hard rule no-more"),
        daemon.client().guard(identity="id-a", raise_on_deny=True),
    ):
        pytest.fail("the body must not run")


def test_a_caller_that_cannot_wait_is_denied_without_sleeping() -> None:
    daemon = FakeDaemon(SHAPE)
    with daemon.client().guard(identity="id-a", can_wait=False) as g:
        pass
    assert not g.allowed and "cannot wait" in (g.reason or "")
    assert ("sleep", 2.5) not in daemon.log


def test_max_wait_bounds_the_wait() -> None:
    daemon = FakeDaemon(SHAPE)
    with daemon.client().guard(identity="id-a", max_wait=1) as g:
        pass
    assert not g.allowed and "max_wait=1 s" in (g.reason or "")


def test_identity_switch_is_exposed_and_charged() -> None:
    switch = {
        "decision": "approve_with_modifications",
        "modifications": {"identity_switch": "id-b"},
    }
    daemon = FakeDaemon(switch)
    with daemon.client().guard(identity="id-a", report_cost=1) as g:
        assert g.identity == "id-b"
    assert daemon.log[-1][1]["identity_id"] == "id-b"  # type: ignore[index]


def test_a_failed_report_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    daemon = FakeDaemon({"decision": "approve"})
    daemon.fail_usage = True
    with (
        caplog.at_level(logging.WARNING, logger="ratelord.client"),
        daemon.client().guard(identity="id-a", report_cost=1),
    ):
        pass
    assert "could not report usage" in caplog.text


async def test_async_guard_waits_before_the_body() -> None:
    daemon = FakeDaemon(SHAPE)

    async def sleep(seconds: float) -> None:
        daemon.sleep(seconds)

    client = AsyncClient(URL, transport=httpx2.MockTransport(daemon.handle), sleep=sleep)
    async with client, client.guard(identity="id-a", report_cost=1) as g:
        daemon.log.append(("body", None))
    assert [entry[0] for entry in daemon.log] == ["/v1/intent", "sleep", "body", "/v1/usage"]
    assert g.waited == 2.5


# --------------------------------------------------------------------------- admit()


def decision(**modifications: object) -> Decision:
    return Decision(
        intent_id="i",
        decision="approve_with_modifications",
        modifications=Modifications(**modifications),  # type: ignore[arg-type]
    )


def test_defer_until_becomes_a_wait_from_now() -> None:
    now = time.time()
    until = datetime.fromtimestamp(now + 30, UTC).isoformat().replace("+00:00", "Z")
    admission = admit(decision(defer_until=until, wait_seconds=1), now=now)
    assert admission.allowed and admission.wait_seconds == pytest.approx(30, abs=0.01)


def test_defer_into_the_past_means_no_wait_and_garbage_means_no() -> None:
    assert admit(decision(defer_until="2000-01-01T00:00:00Z"), now=time.time()).wait_seconds == 0
    assert not admit(decision(defer_until="later"), now=time.time()).allowed


class DeferringDaemon(FakeDaemon):
    """Defers the first ``deferrals`` intents (to a moment in the past), then approves."""

    def __init__(self, deferrals: int) -> None:
        super().__init__({"decision": "approve"})
        self.deferrals = deferrals

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/v1/intent" and self.deferrals > 0:
            self.deferrals -= 1
            self.log.append((request.url.path, json.loads(request.content)))
            return httpx2.Response(
                200,
                json={
                    "intent_id": f"int-d{self.deferrals}",
                    "decision": "approve_with_modifications",
                    "modifications": {"defer_until": "2000-01-01T00:00:00Z"},
                    "reason": "reset first",
                },
            )
        return super().handle(request)


def test_guard_asks_again_after_a_deferral_so_the_new_window_is_charged() -> None:
    daemon = DeferringDaemon(deferrals=1)
    with daemon.client().guard(identity="id-a", agent="a1") as g:
        pass
    asks = [path for path, _ in daemon.log if path == "/v1/intent"]
    assert len(asks) == 2
    assert g.allowed and g.decision is not None and g.decision.decision == "approve"


def test_guard_gives_up_after_repeated_deferrals() -> None:
    daemon = DeferringDaemon(deferrals=10)
    with daemon.client().guard(identity="id-a", agent="a1") as g:
        pass
    assert not g.allowed and "deferred 4 times" in (g.reason or "")
    guard = daemon.client().guard(identity="id-a", agent="a1", raise_on_deny=True)
    with pytest.raises(RatelordDenied, match="deferred"), guard:
        pass
