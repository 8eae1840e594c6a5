"""Drill-down into one pool: its numbers, usage history with the forecast cone, top consumers."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static

from ratelord.client import RatelordError
from ratelord.schema import PoolDetail
from ratelord.tui import formatting as fmt
from ratelord.tui.widgets.consumers_table import ConsumersTable
from ratelord.tui.widgets.pools_table import badge
from ratelord.tui.widgets.usage_chart import ConeChart, HistoryChart

if TYPE_CHECKING:
    from ratelord.tui.app import RatelordApp


def summary(pool: PoolDetail, now: float) -> Text:
    forecast = pool.forecast
    parts: list[str | Text] = [
        badge(pool),
        f" {pool.pool_id}   remaining {fmt.quantity(pool.remaining)}/{fmt.quantity(pool.limit)}"
        f" {pool.unit}   reset in {fmt.duration(fmt.seconds_until(pool.reset_at, now))}"
        f"   members {', '.join(pool.members) or '—'}\n",
    ]
    if forecast is None:
        parts.append("no forecast yet")
    else:
        parts.append(
            f"burn {fmt.rate(forecast.burn_rate)} (σ {fmt.rate(forecast.burn_stddev)})   "
            f"TTE P50 {fmt.duration(forecast.tte_p50_seconds)} · "
            f"P90 {fmt.duration(forecast.tte_p90_seconds)} · "
            f"P99 {fmt.duration(forecast.tte_p99_seconds)}   "
            f"P(exhaustion before reset) {fmt.percent(forecast.p_exhaustion)}"
            + ("   cold start" if forecast.cold_start else "")
        )
    return Text.assemble(*parts)


class PoolDetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, pool_id: str) -> None:
        super().__init__()
        self.pool_id = pool_id
        self.detail: PoolDetail | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"loading {self.pool_id}…", id="pool-summary")
        with Horizontal(id="charts"):
            yield HistoryChart(id="history-chart")
            yield ConeChart(id="cone-chart")
        with Horizontal(id="consumers"):
            yield ConsumersTable(id="top-agents")
            yield ConsumersTable(id="top-identities")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#top-agents").border_title = "Top agents"
        self.query_one("#top-identities").border_title = "Top identities"
        self.follow_pool()

    @work(exclusive=True, group="pool-detail")
    async def follow_pool(self) -> None:
        app = cast("RatelordApp", self.app)
        while True:
            try:
                detail = await app.api.pool(self.pool_id)
            except RatelordError as exc:
                detail, problem = None, f"{self.pool_id}: {exc}"
            try:
                if detail is None:
                    self.query_one("#pool-summary", Static).update(problem)
                else:
                    self.show(detail, time.time())
            except NoMatches:  # the screen was popped while the request was in flight
                return
            await asyncio.sleep(app.poll_interval)

    def show(self, detail: PoolDetail, now: float) -> None:
        self.detail = detail
        self.query_one("#pool-summary", Static).update(summary(detail, now))
        self.query_one(HistoryChart).show(detail, detail.history, now)
        self.query_one(ConeChart).show(detail, now)
        self.query_one("#top-agents", ConsumersTable).show(detail.top_consumers.agents)
        self.query_one("#top-identities", ConsumersTable).show(detail.top_consumers.identities)
