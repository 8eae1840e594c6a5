"""The live activity stream: one coloured line per decision, newest at the bottom."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from ratelord.tui.activity import ActivityBuffer, ActivityEntry, ActivityFilter


class ActivityStream(RichLog):
    """Keeps every recent row so a filter change can redraw; follows the tail unless the user
    scrolled up (RichLog's auto-scroll)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=1000, wrap=True, markup=False, auto_scroll=True)
        self.buffer = ActivityBuffer()
        self.filter = ActivityFilter()

    def add(self, entries: list[ActivityEntry]) -> None:
        for entry in entries:
            if self.buffer.add(entry) and self.filter.matches(entry):
                self.write(Text(entry.text, style=entry.style))

    def set_filter(self, flt: ActivityFilter) -> None:
        self.filter = flt
        self.clear()
        for entry in self.visible():
            self.write(Text(entry.text, style=entry.style))
        described = flt.describe()
        self.border_subtitle = f"filter: {described}" if described else ""

    def visible(self) -> list[ActivityEntry]:
        """The rows the current filter shows, oldest first."""
        return self.buffer.select(self.filter)
