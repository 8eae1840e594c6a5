"""A client that knows the cluster: on to the next member; fail-safe only when none answers."""

from __future__ import annotations

import httpx2
import pytest

from ratelord.client import AsyncClient, Client, RatelordTransportError
from ratelord.client._base import resolve_urls
from tests.unit.test_client import APPROVE, error

MEMBERS = ["http://a.test", "http://b.test", "http://c.test"]


def cluster(down: set[str], unavailable: set[str]) -> tuple[httpx2.MockTransport, list[str]]:
    asked: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        host = f"http://{request.url.host}"
        asked.append(host)
        if host in down:
            raise httpx2.ConnectError("connection refused", request=request)
        if host in unavailable:
            return error(503, "unavailable", "no leader yet", **{"retry-after": "0"})
        return httpx2.Response(200, json=APPROVE)

    return httpx2.MockTransport(handler), asked


def test_urls_come_as_a_list_or_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_urls("http://a/, http://b") == ["http://a", "http://b"]
    assert resolve_urls(["http://a", "http://b/"]) == ["http://a", "http://b"]
    monkeypatch.setenv("RATELORD_URL", "http://x,http://y")
    assert resolve_urls(None) == ["http://x", "http://y"]


def test_a_dead_member_is_skipped_and_the_next_one_answers() -> None:
    transport, asked = cluster(down={"http://a.test"}, unavailable={"http://b.test"})
    client = Client(MEMBERS, transport=transport, sleep=lambda _: None)
    decision = client.ask(agent_id="a", identity_id="gh", workload_id="w")
    assert decision.decision == "approve"
    assert asked == MEMBERS
    assert client.url == "http://c.test"  # and it stays there
    client.ask(agent_id="a", identity_id="gh", workload_id="w")
    assert asked[-1] == "http://c.test"


def test_fail_safe_only_when_no_member_answers() -> None:
    transport, asked = cluster(down=set(MEMBERS), unavailable=set())
    client = Client(MEMBERS, transport=transport, sleep=lambda _: None)
    decision = client.ask(agent_id="a", identity_id="gh", workload_id="w")
    assert decision.decision == "deny_with_reason"
    assert sorted(asked) == MEMBERS


async def test_the_async_client_fails_over_too() -> None:
    transport, asked = cluster(down={"http://a.test"}, unavailable=set())

    async def sleep(_: float) -> None:
        return None

    async with AsyncClient(MEMBERS, transport=transport, sleep=sleep) as client:
        decision = await client.ask(agent_id="a", identity_id="gh", workload_id="w")
    assert decision.decision == "approve"
    assert asked == MEMBERS[:2]


def test_raw_json_calls_fail_over_too() -> None:
    """What the CLI does: plain JSON, no retries, every member tried in turn."""
    transport, asked = cluster(down={"http://a.test"}, unavailable={"http://b.test"})
    with Client(",".join(MEMBERS), transport=transport, retries=0) as api:
        assert api.post("/v1/intent", {})["decision"] == "approve"
    assert asked == MEMBERS
    transport, asked = cluster(down=set(MEMBERS), unavailable=set())
    with (
        Client(",".join(MEMBERS), transport=transport, retries=0) as api,
        pytest.raises(RatelordTransportError),
    ):
        api.get("/v1/health")
    assert asked == MEMBERS


def test_a_round_of_503s_and_dead_members_waits_and_goes_round_again() -> None:
    """During a failover: followers say 503 (no leader yet), the old leader refuses."""
    transport, asked = cluster(down={"http://b.test", "http://c.test"}, unavailable={MEMBERS[0]})
    slept: list[float] = []
    client = Client(MEMBERS, transport=transport, retries=2, sleep=slept.append)
    decision = client.ask(agent_id="a", identity_id="gh", workload_id="w")
    assert decision.decision == "deny_with_reason"  # fail-safe only after every retry
    assert len(slept) == 2 and sorted(asked) == sorted(MEMBERS * 3)
