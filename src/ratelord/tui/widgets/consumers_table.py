"""Top consumers of a pool in its current window (by agent or by identity)."""

from __future__ import annotations

from ratelord.schema import Consumer
from ratelord.tui import formatting as fmt
from ratelord.tui.widgets.synced_table import SyncedTable

TOP_N = 5


class ConsumersTable(SyncedTable):
    COLUMNS = (("id", "id"), ("used", "used"), ("share", "share"))

    def show(self, consumers: list[Consumer]) -> None:
        top = sorted(consumers, key=lambda c: (-c.used, c.id))[:TOP_N]
        total = sum(c.used for c in consumers) or 1.0
        self.sync([(c.id, [c.id, fmt.quantity(c.used), fmt.percent(c.used / total)]) for c in top])
