"""The dashboard (Textual Pilot) against the real ``ratelord-d`` with the mock provider.

Covers issue 5: pool and identity rows, decisions in the stream within a second (T-01),
posture colours (T-02), identities with quota and reset (T-03), drill-down and back, every
command, and resuming the stream across a daemon restart without losing or repeating rows.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot

from ratelord.client import AsyncClient
from ratelord.tui.app import RatelordApp
from ratelord.tui.main import daemon_client
from ratelord.tui.screens.dashboard import DashboardScreen
from ratelord.tui.screens.pool_detail import PoolDetailScreen
from ratelord.tui.widgets.activity_stream import ActivityStream
from ratelord.tui.widgets.consumers_table import ConsumersTable
from ratelord.tui.widgets.header import StatusHeader
from ratelord.tui.widgets.identities_table import IdentitiesTable
from ratelord.tui.widgets.pools_table import PoolsTable
from ratelord.tui.widgets.prompt import Prompt
from tests.support.daemon import RunningDaemon

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POOL_1 = "mock:requests:acct-1"
POOL_2 = "mock:requests:acct-2"

#: acct-1 is a small budget one big intent can push into WARN/CRIT; acct-2 stays roomy.
TUI_CONFIG: dict[str, Any] = {
    "providers": {
        "mock": {
            "poll_interval_seconds": 1,
            "principals": {
                "acct-1": {
                    "pools": {
                        "requests": {
                            "limit": 100,
                            "window_seconds": 3600,
                            "remaining": 100,
                            "burn_per_second": 0,
                        }
                    }
                },
                "acct-2": {"pools": {"requests": {"limit": 5000, "window_seconds": 3600}}},
            },
        }
    }
}


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 15.0) -> float:
    """Let the app run until ``condition()`` holds; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        if loop.time() - start > timeout:
            raise AssertionError(f"condition still false after {timeout}s")
        await pilot.pause(0.02)
    return loop.time() - start


@pytest.fixture
def tui_daemon(daemon_factory: Callable[..., RunningDaemon]) -> RunningDaemon:
    return daemon_factory(config=TUI_CONFIG)


@pytest.fixture
async def http(tui_daemon: RunningDaemon) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=tui_daemon.url, timeout=10.0) as client:
        yield client


async def register(http: httpx.AsyncClient, identity_id: str, principal: str) -> None:
    body = {"identity_id": identity_id, "provider_id": "mock", "principal": principal}
    response = await http.post("/v1/identities", json=body)
    assert response.status_code == 201, response.text


async def ask(
    http: httpx.AsyncClient, agent: str, identity: str = "id-a", cost: float = 1
) -> dict[str, Any]:
    intent = {
        "agent_id": agent,
        "identity_id": identity,
        "workload_id": "build",
        "resource": "requests",
        "cost": cost,
    }
    response = await http.post("/v1/intent", json=intent)
    assert response.status_code == 200, response.text
    return dict(response.json())


def dashboard(app: RatelordApp) -> DashboardScreen:
    screen = app.screen
    assert isinstance(screen, DashboardScreen)
    return screen


def rows(app: RatelordApp) -> list[str]:
    return [entry.text for entry in dashboard(app).query_one(ActivityStream).shown()]


def seqs(app: RatelordApp) -> list[int]:
    return [entry.seq for entry in dashboard(app).query_one(ActivityStream).shown()]


def pool_status(app: RatelordApp, pool_id: str) -> str:
    return dashboard(app).query_one(PoolsTable).row_text(pool_id)[0].strip()


def remaining(pools: PoolsTable, pool_id: str) -> float:
    """The remaining budget a pool row shows (its ``remaining/limit`` cell)."""
    return float(pools.row_text(pool_id)[2].split("/")[0])


def tui(daemon: RunningDaemon) -> tuple[AsyncClient, RatelordApp]:
    api = daemon_client(daemon.url)
    return api, RatelordApp(api, poll_interval=0.5)


@pytest.mark.acceptance("T-01", "T-03")
async def test_pools_identities_and_a_decision_within_a_second(
    tui_daemon: RunningDaemon, http: httpx.AsyncClient
) -> None:
    await register(http, "id-a", "acct-1")
    api, app = tui(tui_daemon)
    async with api, app.run_test(size=(160, 48)) as pilot:
        header = dashboard(app).query_one(StatusHeader)
        pools = dashboard(app).query_one(PoolsTable)
        identities = dashboard(app).query_one(IdentitiesTable)
        await until(pilot, lambda: header.connected and POOL_1 in pools.keys)
        await until(pilot, lambda: pools.row_text(POOL_1)[2] == "100/100")
        assert pools.row_text(POOL_1)[-1] == "acct-1"
        version = (await http.get("/v1/health")).json()["version"]
        assert f"ratelord-d {version}" in str(header.content)

        # T-03: identity with kind, principal, scope, remaining quota and reset time.
        await until(pilot, lambda: "id-a" in identities.keys)
        status, remaining, reset, scope, principal, kind = identities.row_text("id-a")[1:]
        assert (kind, principal, scope, status) == ("token", "acct-1", "global", "active")
        assert remaining == "100/100"
        assert reset.endswith(("m", "s")) and reset != "—"

        # T-01: the decision shows up in the stream less than a second after it was made.
        decision = await ask(http, "fast-agent", cost=3)
        assert decision["decision"] == "approve"
        waited = await until(pilot, lambda: any("[fast-agent]" in r for r in rows(app)))
        assert waited < 1.0, f"decision took {waited:.2f}s to reach the stream"
        assert rows(app)[-1].endswith("[fast-agent] build -> APPROVED")
        # ... and the pool row follows the spend.
        await until(pilot, lambda: pools.row_text(POOL_1)[2] == "97/100")


@pytest.mark.acceptance("T-02")
async def test_a_warn_pool_turns_its_badge_and_the_header(
    tui_daemon: RunningDaemon, http: httpx.AsyncClient
) -> None:
    await register(http, "id-b", "acct-2")
    api, app = tui(tui_daemon)
    async with api, app.run_test(size=(160, 48)) as pilot:
        header = dashboard(app).query_one(StatusHeader)
        pools = dashboard(app).query_one(PoolsTable)
        await until(pilot, lambda: POOL_2 in pools.keys and header.connected)
        assert header.has_class("-ok") and pool_status(app, POOL_2) == "OK"
        ok_colour = header.styles.background

        # 85 of acct-1's 100 are spent behind ratelord's back; its first poll sees 15 left.
        spent = {"principal": "acct-1", "resource": "requests", "amount": 85}
        assert (await http.post("/v1/admin/mock/external-usage", json=spent)).status_code == 200
        await register(http, "id-a", "acct-1")
        await until(pilot, lambda: POOL_1 in pools.keys and pool_status(app, POOL_1) == "WARN")
        await until(pilot, lambda: header.has_class("-warn"))
        assert not header.has_class("-ok")
        assert "WARN" in str(header.content)
        warn_colour = header.styles.background
        assert warn_colour != ok_colour

        # 12 more leaves 3 of 100 (< 5 %): CRIT.
        await ask(http, "a1", cost=12)
        await until(pilot, lambda: pool_status(app, POOL_1) == "CRIT")
        await until(pilot, lambda: header.has_class("-crit"))
        assert header.styles.background not in (ok_colour, warn_colour)


async def test_drill_down_into_a_pool_and_back(
    tui_daemon: RunningDaemon, http: httpx.AsyncClient
) -> None:
    await register(http, "id-a", "acct-1")
    await register(http, "id-b", "acct-2")
    api, app = tui(tui_daemon)
    async with api, app.run_test(size=(160, 48)) as pilot:
        pools = dashboard(app).query_one(PoolsTable)
        await until(pilot, lambda: sorted(pools.keys) == [POOL_1, POOL_2])
        for agent, cost in [("a1", 5), ("a2", 2), ("a1", 1)]:
            await ask(http, agent, cost=cost)
        await until(pilot, lambda: remaining(pools, POOL_1) <= 92)

        pools.focus()
        await pilot.press("down")
        assert pools.selected_key == pools.keys[1]
        await pilot.press("up")
        assert pools.selected_key == pools.keys[0]
        await pilot.press(*["down"] * pools.keys.index(POOL_1), "enter")
        detail = app.screen
        assert isinstance(detail, PoolDetailScreen) and detail.pool_id == POOL_1
        await until(pilot, lambda: detail.detail is not None)
        assert detail.detail is not None and detail.detail.remaining is not None
        # 8 were spent; the daemon may still hold reservations for intents told to wait.
        assert detail.detail.remaining <= 92
        agents = detail.query_one("#top-agents", ConsumersTable)
        await until(pilot, lambda: agents.keys == ["a1", "a2"])
        assert agents.row_text("a1")[1:] == ["6", "75%"]
        assert detail.query_one("#top-identities", ConsumersTable).keys == ["id-a"]
        await until(
            pilot, lambda: "/100 requests" in str(detail.query_one("#pool-summary").content)
        )
        assert detail.detail.history, "the chart has observed history to draw"

        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        assert pools.selected_key == POOL_1, "the cursor stays where it was"
        pools.move_cursor(row=pools.keys.index(POOL_2))
        await pilot.press("enter")
        assert isinstance(app.screen, PoolDetailScreen) and app.screen.pool_id == POOL_2
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def run_command(pilot: Pilot[None], app: RatelordApp, text: str) -> None:
    await pilot.press("colon")
    dashboard(app).query_one(Prompt).value = text
    await pilot.press("enter")


async def test_every_command(tui_daemon: RunningDaemon, http: httpx.AsyncClient) -> None:
    await register(http, "id-a", "acct-1")
    await ask(http, "a1")
    await ask(http, "a2")
    denied = await ask(http, "a1", identity="nobody")  # unknown identity: denied with a reason
    assert denied["decision"] == "deny_with_reason"
    api, app = tui(tui_daemon)
    async with api, app.run_test(size=(160, 48)) as pilot:
        screen = dashboard(app)
        await until(pilot, lambda: len(rows(app)) == 3)

        await pilot.press("colon", *"filter", "space", *"agent", "space", *"a1", "enter")
        assert [r.split()[1] for r in rows(app)] == ["[a1]", "[a1]"]
        await run_command(pilot, app, "filter decision deny")
        assert len(rows(app)) == 1 and "-> DENIED (unknown identity 'nobody'" in rows(app)[0]
        assert screen.notice == "filter: agent=a1 decision=deny_with_reason"

        await run_command(pilot, app, "clear")
        assert len(rows(app)) == 3 and screen.notice == "filters cleared"

        await pilot.press("slash", *"[A2]", "enter")
        assert [r.split()[1] for r in rows(app)] == ["[a2]"]
        await pilot.press("escape")
        assert len(rows(app)) == 3

        intent = (
            '{"agent_id": "tui-test", "identity_id": "id-a", "resource": "requests", "cost": 1}'
        )
        await run_command(pilot, app, f"test {intent}")
        await until(pilot, lambda: screen.notice.startswith("test intent int_"))
        assert re.fullmatch(
            r"test intent int_\w+ -> (APPROVED|MODIFIED.*|DEFERRED.*)", screen.notice
        )
        await until(pilot, lambda: any("[tui-test]" in r for r in rows(app)))

        await run_command(pilot, app, 'test {"agent_id": "x"}')
        await until(pilot, lambda: "test intent failed: ratelord-d answered 400" in screen.notice)
        assert screen.query_one("#notice").has_class("-error")

        await run_command(pilot, app, "q")
        await until(pilot, lambda: not app.is_running)


async def test_reconnects_across_a_restart_without_losing_or_repeating_rows(
    tui_daemon: RunningDaemon, http: httpx.AsyncClient
) -> None:
    await register(http, "id-b", "acct-2")
    await ask(http, "before-1", identity="id-b")
    api, app = tui(tui_daemon)
    async with api, app.run_test(size=(160, 48)) as pilot:
        header = dashboard(app).query_one(StatusHeader)
        await until(pilot, lambda: header.connected and len(rows(app)) == 1)
        await ask(http, "before-2", identity="id-b")
        await until(pilot, lambda: len(rows(app)) == 2)

        await asyncio.to_thread(tui_daemon.stop)
        await until(pilot, lambda: not header.connected)
        assert "Reconnecting" in str(header.content)
        await asyncio.to_thread(tui_daemon.start)
        await until(pilot, lambda: header.connected)
        assert "Connected" in str(header.content)

        for n in (1, 2):
            await ask(http, f"after-{n}", identity="id-b")
        await until(pilot, lambda: len(rows(app)) >= 4)
        # Let any replay the resumed stream might wrongly send arrive before comparing.
        settle = time.monotonic() + 1.5
        await until(pilot, lambda: time.monotonic() > settle)

        logged = (await http.get("/v1/events", params={"type": "intent_decided"})).json()
        assert seqs(app) == [int(event["seq"]) for event in logged["events"]]
        agents = [r.split()[1] for r in rows(app)]
        assert agents == ["[before-1]", "[before-2]", "[after-1]", "[after-2]"]
