"""The dashboard in-process, against a fake daemon behind ``httpx2.MockTransport``.

The real daemon is exercised by tests/e2e/test_tui.py; here the daemon's answers are fully
controlled, so outages, stream breaks and replays can be staged exactly.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest
from textual.pilot import Pilot

from ratelord.tui.app import RatelordApp
from ratelord.tui.feed import Feed
from ratelord.tui.main import daemon_client
from ratelord.tui.screens.dashboard import DashboardScreen
from ratelord.tui.screens.help import HelpScreen
from ratelord.tui.screens.pool_detail import PoolDetailScreen
from ratelord.tui.widgets.activity_stream import ActivityStream
from ratelord.tui.widgets.budgets_table import BudgetsTable
from ratelord.tui.widgets.consumers_table import ConsumersTable
from ratelord.tui.widgets.header import StatusHeader
from ratelord.tui.widgets.identities_table import IdentitiesTable
from ratelord.tui.widgets.leases_table import LeasesTable
from ratelord.tui.widgets.pools_table import PoolsTable
from ratelord.tui.widgets.prompt import Prompt

POOL_ID = "mock:requests:acct-1"


def pool_json(remaining: float, status: str) -> dict[str, Any]:
    return {
        "pool_id": POOL_ID,
        "provider_id": "mock",
        "resource": "requests",
        "principal": "acct-1",
        "unit": "requests",
        "limit": 100.0,
        "remaining": remaining,
        "used": 100.0 - remaining,
        "reset_at": None,
        "window": "rolling",
        "window_seconds": 3600.0,
        "members": ["id-a"],
        "status": status,
        "stale_seconds": 0.5,
        "forecast": {
            "tte_p50_seconds": 900.0,
            "tte_p90_seconds": 600.0,
            "tte_p99_seconds": 300.0,
            "p_exhaustion": 0.3 if status != "OK" else 0.01,
            "margin_seconds": None,
            "burn_rate": 0.02,
            "burn_stddev": 0.01,
            "seconds_to_reset": 1800.0,
            "as_of": "2026-01-01T12:00:00Z",
        },
    }


class FakeDaemon:
    """Just enough of ratelord-d's HTTP API, with switches to stage outages."""

    def __init__(self) -> None:
        self.up = True
        self.started_at = "2026-01-01T12:00:00Z"
        self.pool = pool_json(100.0, "OK")
        self.events: list[dict[str, Any]] = []
        self.intents: list[dict[str, Any]] = []
        self.stream_after: list[int] = []
        self._listeners: list[asyncio.Queue[dict[str, Any] | None]] = []
        self.leases: list[dict[str, Any]] = []
        self.budgets: list[dict[str, Any]] = []

    def decide(self, agent: str, decision: str = "approve", **payload: Any) -> int:
        seq = len(self.events) + 1
        event = {
            "seq": seq,
            "event_id": f"ev{seq}",
            "event_type": "intent_decided",
            "ts_event": time.time(),
            "dimensions": {
                "agent_id": agent,
                "identity_id": "id-a",
                "workload_id": "build",
                "scope_id": "sentinel:global",
            },
            "payload": {
                "intent_id": f"i{seq}",
                "decision": decision,
                "tightest_pool": POOL_ID,
                **payload,
            },
        }
        self.events.append(event)
        for queue in self._listeners:
            queue.put_nowait(event)
        return seq

    def break_streams(self) -> None:
        for queue in self._listeners:
            queue.put_nowait(None)

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        if not self.up:
            raise httpx2.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/v1/health":
            return httpx2.Response(
                200,
                json={
                    "status": "ok",
                    "version": "9.9.9",
                    "uptime_seconds": 75.0,
                    "started_at": self.started_at,
                    "high_water_seq": len(self.events),
                },
            )
        if path == "/v1/pools":
            return httpx2.Response(200, json={"pools": [self.pool]})
        if path == f"/v1/pools/{POOL_ID}":
            return httpx2.Response(
                200,
                json={
                    **self.pool,
                    "history": [{"ts": "2026-01-01T12:00:00Z", "remaining": 100.0}],
                    "top_consumers": {
                        "agents": [{"id": "a1", "used": 7.0}, {"id": "a2", "used": 3.0}],
                        "identities": [{"id": "id-a", "used": 10.0}],
                    },
                },
            )
        if path == "/v1/identities":
            return httpx2.Response(
                200,
                json={
                    "identities": [
                        {
                            "identity_id": "id-a",
                            "kind": "token",
                            "provider_id": "mock",
                            "principal": "acct-1",
                            "scope_id": "org:acme",
                            "labels": {},
                            "status": "active",
                            "pools": [POOL_ID],
                            "registered_at": "2026-01-01T12:00:00Z",
                        }
                    ]
                },
            )
        if path == "/v1/leases":
            return httpx2.Response(200, json={"leases": self.leases})
        if path == "/v1/budgets":
            return httpx2.Response(200, json={"budgets": self.budgets})
        if path == "/v1/stats":
            return httpx2.Response(
                200,
                json={
                    "intents_total": len(self.events),
                    "intents_per_minute": [0, 2, len(self.events)],
                    "denial_rate": 0.25,
                    "store": {"commit_lag_ms": 1.5, "queue_depth": 0},
                },
            )
        if path == "/v1/intent":
            self.intents.append(json.loads(request.content))
            seq = self.decide(
                self.intents[-1]["agent_id"],
                "approve_with_modifications",
                modifications={"wait_seconds": 3},
            )
            return httpx2.Response(
                200,
                json={
                    "intent_id": f"i{seq}",
                    "decision": "approve_with_modifications",
                    "modifications": {"wait_seconds": 3.0},
                },
            )
        if path == "/v1/events" and request.url.params.get("stream") == "true":
            after = int(request.url.params["after_seq"])
            self.stream_after.append(after)
            return httpx2.Response(200, content=self._stream(after))
        if path == "/v1/events":
            page = self.events[-200:]
            return httpx2.Response(
                200, json={"events": page, "next_after_seq": page[-1]["seq"] if page else 0}
            )
        return httpx2.Response(404, json={"error": {"code": "not_found", "message": path}})

    async def _stream(self, after: int) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        for event in self.events[after:]:
            queue.put_nowait(event)
        self._listeners.append(queue)
        try:
            while (event := await queue.get()) is not None:
                yield f"id: {event['seq']}\ndata: {json.dumps(event)}\n\n".encode()
            raise httpx2.ReadError("connection reset by peer")
        finally:
            self._listeners.remove(queue)


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until ``condition()`` holds (fails after ``timeout`` seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition still false after {timeout}s")
        await pilot.pause(0.02)


@pytest.fixture
def fake() -> FakeDaemon:
    return FakeDaemon()


def make_app(fake: FakeDaemon) -> RatelordApp:
    api = daemon_client("http://daemon.test", transport=httpx2.MockTransport(fake.handle))
    return RatelordApp(api, poll_interval=0.2)


def rows_of(app: RatelordApp) -> list[str]:
    return [entry.text for entry in app.screen.query_one(ActivityStream).shown()]


async def test_dashboard_shows_pools_identities_vitals_and_connection(fake: FakeDaemon) -> None:
    fake.decide("a1")
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        header = app.screen.query_one(StatusHeader)
        await until(pilot, lambda: header.connected and app.screen.query_one(PoolsTable).keys)
        badge, pool_id, remaining, *_, scope = app.screen.query_one(PoolsTable).row_text(POOL_ID)
        assert (badge.strip(), pool_id, remaining, scope) == ("OK", POOL_ID, "100/100", "acct-1")
        await until(pilot, lambda: bool(app.screen.query_one(IdentitiesTable).keys))
        identity = app.screen.query_one(IdentitiesTable).row_text("id-a")
        assert identity[:2] == ["id-a", "active"]
        assert identity[2] == "100/100"
        assert identity[4:] == ["org:acme", "acct-1", "token"]
        assert "9.9.9" in str(header.content) and "Connected" in str(header.content)
        assert "25% denied" in str(app.screen.query_one("#vitals-line").content)
        await until(pilot, lambda: len(rows_of(app)) == 1)  # decided before we connected


async def test_dashboard_lists_leases_with_holder_size_spent_and_expiry(
    fake: FakeDaemon,
) -> None:
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 90))
    fake.leases = [
        {
            "lease_id": "lse_1",
            "status": "active",
            "holder": "crawler-7",
            "identity_id": "id-a",
            "pool_id": POOL_ID,
            "urgency": "normal",
            "requested": 500,
            "granted": 400,
            "spent": 120,
            "available": 280,
            "expires_at": expires,
        }
    ]
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(LeasesTable)
        await until(pilot, lambda: bool(table.keys))
        holder, pool_id, size, spent, expiry = table.row_text("lse_1")
        assert (holder, pool_id, size, spent) == ("crawler-7", POOL_ID, "400", "120")
        assert expiry.endswith("s") or "m" in expiry


async def test_dashboard_shows_money_budgets_only_when_there_are_some(
    fake: FakeDaemon,
) -> None:
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(BudgetsTable)
        await until(pilot, lambda: bool(app.screen.query_one(LeasesTable).display))
        assert not table.display  # no budget configured: no empty panel
        fake.budgets = [
            {
                "budget_id": "writer-daily",
                "period": "day",
                "limit": 1.0,
                "spent": 0.42,
                "unsettled": 0.0,
                "remaining": 0.58,
                "forecast_end": 1.3,
                "period_end": "2026-01-02T00:00:00Z",
                "seconds_to_end": 7200.0,
                "calls": 12,
                "currency": "USD",
            }
        ]
        await until(pilot, lambda: bool(table.keys))
        assert table.display
        name, spent, forecast, ends = table.row_text("writer-daily")
        assert (name, spent, forecast) == ("writer-daily (day)", "0.42 / 1.00 USD", "1.30")
        assert ends.startswith("2h")


async def test_live_decisions_and_posture_colours(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        header = app.screen.query_one(StatusHeader)
        await until(pilot, lambda: header.connected)
        assert header.has_class("-ok")
        fake.decide("a2", "deny_with_reason", reason="hard/never-exhaust")
        await until(pilot, lambda: bool(rows_of(app)))
        assert rows_of(app)[0].endswith("[a2] build -> DENIED (hard/never-exhaust)")
        fake.pool = pool_json(15.0, "WARN")
        await until(pilot, lambda: header.has_class("-warn"))
        assert not header.has_class("-ok")
        assert app.screen.query_one(PoolsTable).row_text(POOL_ID)[0].strip() == "WARN"
        fake.pool = pool_json(2.0, "CRIT")
        await until(pilot, lambda: header.has_class("-crit"))


async def test_commands_filter_clear_test_and_quit(fake: FakeDaemon) -> None:
    for agent, decision in [
        ("a1", "approve"),
        ("a2", "deny_with_reason"),
        ("a1", "deny_with_reason"),
    ]:
        fake.decide(agent, decision, reason="no")
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await until(pilot, lambda: len(rows_of(app)) == 3)

        await pilot.press("colon", *"filter", "space", *"agent", "space", *"a1", "enter")
        assert [r.split()[1] for r in rows_of(app)] == ["[a1]", "[a1]"]
        await pilot.press("colon")
        screen.query_one(Prompt).value = "filter decision deny"
        await pilot.press("enter")
        assert len(rows_of(app)) == 1 and "[a1]" in rows_of(app)[0] and "DENIED" in rows_of(app)[0]
        assert screen.notice == "filter: agent=a1 decision=deny_with_reason"

        await pilot.press("colon", *"clear", "enter")
        assert len(rows_of(app)) == 3

        await pilot.press("slash", *"A2", "enter")
        assert len(rows_of(app)) == 1
        await pilot.press("escape")
        assert len(rows_of(app)) == 3

        await pilot.press("colon", *"filt", "escape")  # cancelled: nothing applied
        assert not screen.query_one(Prompt).display
        assert app.focused is screen.query_one(PoolsTable)
        assert len(rows_of(app)) == 3

        await pilot.press("colon")
        screen.query_one(
            Prompt
        ).value = ':test {"agent_id": "tester", "identity_id": "id-a", "cost": 1}'
        await pilot.press("enter")
        await until(pilot, lambda: "MODIFIED (wait 3s)" in screen.notice)
        assert fake.intents == [{"agent_id": "tester", "identity_id": "id-a", "cost": 1}]
        await until(pilot, lambda: any("[tester]" in r for r in rows_of(app)))

        await pilot.press("colon", *"nonsense", "enter")
        assert screen.query_one("#notice").has_class("-error")
        assert "unknown command" in screen.notice

        await pilot.press("colon", "q", "enter")
        await until(pilot, lambda: not app.is_running)


async def test_enter_drills_into_a_pool_and_escape_comes_back(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: bool(app.screen.query_one(PoolsTable).keys))
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, PoolDetailScreen) and detail.pool_id == POOL_ID
        await until(pilot, lambda: detail.detail is not None)
        assert detail.query_one("#top-agents", ConsumersTable).keys == ["a1", "a2"]
        assert "P99 5m00s" in str(detail.query_one("#pool-summary").content)
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        identities = app.screen.query_one(IdentitiesTable)
        await until(pilot, lambda: identities.keys == ["id-a"])
        identities.focus()
        await pilot.press("enter")  # an identity opens its tightest pool
        assert isinstance(app.screen, PoolDetailScreen) and app.screen.pool_id == POOL_ID
        await pilot.press("escape")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_stream_resumes_from_the_last_seq_after_a_break_and_an_outage(
    fake: FakeDaemon,
) -> None:
    fake.decide("a1")
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        header = app.screen.query_one(StatusHeader)
        feed = app.screen.query_one(Feed)
        await until(pilot, lambda: header.connected and len(rows_of(app)) == 1)

        fake.break_streams()  # the stream drops but decisions keep happening
        fake.decide("a2")
        fake.decide("a3")
        await until(pilot, lambda: len(rows_of(app)) == 3)

        fake.up = False
        fake.break_streams()
        await until(pilot, lambda: not header.connected)
        assert "Reconnecting" in str(header.content)
        assert header.has_class("-offline")
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        assert screen.notice.startswith("daemon unreachable: ")
        assert "http://daemon.test" in screen.notice
        fake.up = True
        await until(pilot, lambda: header.connected)
        assert screen.notice == ""
        fake.decide("a4")
        await until(pilot, lambda: len(rows_of(app)) == 4)

        assert [r.split()[1] for r in rows_of(app)] == ["[a1]", "[a2]", "[a3]", "[a4]"]
        # Backfill up to seq 1, resume after 1 when the stream broke, after 3 after the outage.
        assert fake.stream_after == [1, 1, 3]
        assert feed.last_seq == 4


async def test_narrow_terminal_stacks_the_panels(fake: FakeDaemon) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: bool(app.screen.query_one(PoolsTable).keys))
        assert app.screen.has_class("-narrow")
        pools = app.screen.query_one(PoolsTable).region
        activity = app.screen.query_one(ActivityStream).region
        assert activity.y > pools.y and activity.height >= 4


async def test_activity_follows_the_tail_unless_the_user_scrolled_up(fake: FakeDaemon) -> None:
    for n in range(80):
        fake.decide(f"agent-{n}")
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        stream = app.screen.query_one(ActivityStream)
        await until(pilot, lambda: len(stream.shown()) == 80)
        await until(pilot, lambda: stream.max_scroll_y > 0 and stream.is_vertical_scroll_end)

        stream.scroll_to(y=5, animate=False, immediate=True)
        fake.decide("while-reading")
        await until(pilot, lambda: len(stream.shown()) == 81)
        await pilot.pause()
        assert stream.scroll_y == 5

        stream.scroll_end(animate=False, immediate=True)
        fake.decide("back-at-the-bottom")
        await until(pilot, lambda: len(stream.shown()) == 82)
        await until(pilot, lambda: stream.is_vertical_scroll_end)


async def test_a_daemon_back_on_another_database_starts_the_stream_over(fake: FakeDaemon) -> None:
    for agent in ("old-1", "old-2", "old-3"):
        fake.decide(agent)
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        feed = app.screen.query_one(Feed)
        await until(pilot, lambda: len(rows_of(app)) == 3)

        fake.up = False
        fake.break_streams()
        await until(pilot, lambda: not feed.connected)
        fake.events, fake.started_at, fake.up = [], "2026-01-01T13:00:00Z", True
        fake.decide("new-1")
        await until(pilot, lambda: [r.split()[1] for r in rows_of(app)] == ["[new-1]"])
        fake.decide("new-2")
        await until(pilot, lambda: len(rows_of(app)) == 2)
        assert [r.split()[1] for r in rows_of(app)] == ["[new-1]", "[new-2]"]
        assert feed.last_seq == 2
