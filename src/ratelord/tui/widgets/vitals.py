"""Vitals: intents per minute (sparkline), denial rate and store lag."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from ratelord.schema import Stats
from ratelord.tui import formatting as fmt


def vitals_line(stats: Stats) -> str:
    per_minute = stats.intents_per_minute[-1] if stats.intents_per_minute else 0
    return (
        f"{per_minute} intents/min · {fmt.percent(stats.denial_rate)} denied (5 min) · "
        f"store lag {stats.store.commit_lag_ms:.1f} ms · queue {stats.store.queue_depth}"
    )


class Vitals(Vertical):
    def compose(self) -> ComposeResult:
        yield Sparkline([], id="intents-sparkline")
        yield Static("no stats yet", id="vitals-line")

    def show(self, stats: Stats | None) -> None:
        line = self.query_one("#vitals-line", Static)
        if stats is None:
            line.update("vitals unavailable (daemon has no /v1/stats)")
            return
        sparkline = self.query_one(Sparkline)
        per_minute = [float(n) for n in stats.intents_per_minute]
        if sparkline.data != per_minute:
            sparkline.data = per_minute
        line.update(vitals_line(stats))
