"""The main screen: header, pools, identities, activity stream and vitals, plus the prompt."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ratelord.client import RatelordError
from ratelord.schema import Decision, Pool
from ratelord.tui import commands
from ratelord.tui.activity import ActivityEntry, ActivityFilter, decision_outcome
from ratelord.tui.feed import Feed, Snapshot
from ratelord.tui.posture import max_risk, tightest_pool, worst
from ratelord.tui.screens.pool_detail import PoolDetailScreen
from ratelord.tui.widgets.activity_stream import ActivityStream
from ratelord.tui.widgets.budgets_table import BudgetsTable
from ratelord.tui.widgets.header import StatusHeader
from ratelord.tui.widgets.identities_table import IdentitiesTable
from ratelord.tui.widgets.leases_table import LeasesTable
from ratelord.tui.widgets.pools_table import PoolsTable
from ratelord.tui.widgets.prompt import Prompt
from ratelord.tui.widgets.vitals import Vitals

if TYPE_CHECKING:
    from ratelord.tui.app import RatelordApp


UNREACHABLE = "daemon unreachable: "


class DashboardScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("colon", "prompt(':')", "Command", key_display=":"),
        Binding("slash", "prompt('/')", "Filter", key_display="/"),
        Binding("escape", "clear_quick_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: Snapshot | None = None
        self.filter = ActivityFilter()
        self.notice = ""

    @property
    def rl_app(self) -> RatelordApp:
        return cast("RatelordApp", self.app)

    def compose(self) -> ComposeResult:
        api = self.rl_app.api
        yield Feed(api, poll_interval=self.rl_app.poll_interval, id="feed")
        yield StatusHeader(api.url, id="status")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield PoolsTable(id="pools")
                yield IdentitiesTable(id="identities")
                yield LeasesTable(id="leases")
                yield BudgetsTable(id="budgets")
            with Vertical(id="right"):
                yield ActivityStream(id="activity")
                yield Vitals(id="vitals")
        yield Static("", id="notice")
        yield Prompt(id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#pools").border_title = "Pools"
        self.query_one("#identities").border_title = "Identities"
        self.query_one("#leases").border_title = "Leases"
        self.query_one("#budgets").border_title = "Money budgets"
        self.query_one("#activity").border_title = "Activity"
        self.query_one("#vitals").border_title = "Vitals"
        self.query_one(Prompt).display = False
        self.query_one(PoolsTable).focus()

    # ------------------------------------------------------------------ feed messages

    def on_feed_connection_changed(self, message: Feed.ConnectionChanged) -> None:
        self.query_one(StatusHeader).show_connection(message.connected)
        if not message.connected:
            self.say(f"{UNREACHABLE}{message.detail}", error=True)
        elif self.notice.startswith(UNREACHABLE):
            self.say("")

    def on_feed_log_replaced(self, _message: Feed.LogReplaced) -> None:
        self.query_one(ActivityStream).reset()
        self.say("the daemon restarted with a different event log")

    def on_feed_events_arrived(self, message: Feed.EventsArrived) -> None:
        entries = [ActivityEntry.from_event(event) for event in message.events]
        self.query_one(ActivityStream).add([e for e in entries if e is not None])

    def on_feed_refreshed(self, message: Feed.Refreshed) -> None:
        self.snapshot = message.snapshot
        self._show_snapshot()

    def _show_snapshot(self) -> None:
        snap = self.snapshot
        if snap is None:
            return
        pools_by_id = {pool.pool_id: pool for pool in snap.pools}
        shown_pools = [p for p in snap.pools if self.filter.text_matches(p.pool_id, p.principal)]
        shown_identities = [
            i
            for i in snap.identities
            if self.filter.text_matches(i.identity_id, i.principal or "", i.scope_id)
        ]
        self.query_one(StatusHeader).show_health(
            snap.health, worst(p.status for p in snap.pools), max_risk(snap.pools)
        )
        self.query_one(PoolsTable).show(shown_pools, snap.fetched_at)
        self.query_one(IdentitiesTable).show(shown_identities, pools_by_id, snap.fetched_at)
        self.query_one(LeasesTable).show(snap.leases, snap.fetched_at)
        self.query_one(BudgetsTable).show(snap.budgets)
        self.query_one(Vitals).show(snap.stats)

    # ------------------------------------------------------------------ drill-down

    @on(DataTable.RowSelected, "#pools")
    def open_pool(self, event: DataTable.RowSelected) -> None:
        self.app.push_screen(PoolDetailScreen(str(event.row_key.value)))

    @on(DataTable.RowSelected, "#identities")
    def open_identity_pool(self, event: DataTable.RowSelected) -> None:
        if self.snapshot is None:
            return
        pools_by_id: dict[str, Pool] = {p.pool_id: p for p in self.snapshot.pools}
        for identity in self.snapshot.identities:
            if identity.identity_id == event.row_key.value:
                pool = tightest_pool(identity, pools_by_id)
                if pool is not None:
                    self.app.push_screen(PoolDetailScreen(pool.pool_id))
                return

    # ------------------------------------------------------------------ prompt and commands

    def action_prompt(self, mode: str) -> None:
        prompt = self.query_one(Prompt)
        prompt.open(":" if mode == ":" else "/", self.filter.text if mode == "/" else "")

    def action_clear_quick_filter(self) -> None:
        if self.filter.text:
            self._apply_filter(replace(self.filter, text=""))

    def on_prompt_entered(self, message: Prompt.Entered) -> None:
        if message.mode == "/":
            self._apply_filter(replace(self.filter, text=message.text))
        else:
            self.run_command(message.text)

    def run_command(self, text: str) -> None:
        """Execute one ``:`` command line; errors are shown, never raised."""
        try:
            command = commands.parse(text)
        except commands.CommandError as exc:
            self.say(str(exc), error=True)
            return
        match command:
            case commands.Quit():
                self.app.exit()
            case commands.Clear():
                self._apply_filter(ActivityFilter())
                self.say("filters cleared")
            case commands.FilterDimension(dimension, value):
                self._apply_filter(self.filter.with_dimension(dimension, value))
            case commands.FilterDecision(decision):
                self._apply_filter(replace(self.filter, decision=decision))
            case commands.SubmitIntent(intent):
                self.say("test intent sent…")
                self.submit_test_intent(intent)

    @work(exclusive=True, group="test-intent")
    async def submit_test_intent(self, intent: dict[str, object]) -> None:
        try:
            decision = await self.rl_app.api.post("/v1/intent", intent, into=Decision)
        except RatelordError as exc:
            self.say(f"test intent failed: {exc}", error=True)
            return
        self.say(f"test intent {decision.intent_id} -> {decision_outcome(decision)}")

    def _apply_filter(self, flt: ActivityFilter) -> None:
        self.filter = flt
        self.query_one(ActivityStream).set_filter(flt)
        self._show_snapshot()
        described = flt.describe()
        self.say(f"filter: {described}" if described else "")

    def say(self, text: str, *, error: bool = False) -> None:
        """Show a one-line result of the last command above the footer."""
        self.notice = text
        notice = self.query_one("#notice", Static)
        notice.update(text)
        notice.set_class(error, "-error")
        notice.display = bool(text)
