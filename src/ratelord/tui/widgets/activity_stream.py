"""The live activity stream: one coloured line per decision, newest at the bottom."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from ratelord.tui.activity import ActivityBuffer, ActivityEntry, ActivityFilter


class ActivityStream(RichLog):
    """Keeps every recent row so a filter change can redraw.

    Follows the tail while the view is at the bottom; once the user scrolls up to read, new rows
    are appended without moving the view until they scroll back down.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id, max_lines=1000, min_width=20, wrap=True, markup=False, auto_scroll=False
        )
        self.buffer = ActivityBuffer()
        self.filter = ActivityFilter()
        self.following = True

    def add(self, entries: list[ActivityEntry]) -> None:
        for entry in entries:
            if self.buffer.add(entry) and self.filter.matches(entry):
                self._write(entry)

    def set_filter(self, flt: ActivityFilter) -> None:
        self.filter = flt
        self.clear()
        self.following = True
        for entry in self.shown():
            self._write(entry)
        described = flt.describe()
        self.border_subtitle = f"filter: {described}" if described else ""

    def reset(self) -> None:
        """Forget every row (the daemon's event log was replaced)."""
        self.buffer = ActivityBuffer()
        self.clear()

    def shown(self) -> list[ActivityEntry]:
        """The rows the current filter shows, oldest first."""
        return self.buffer.select(self.filter)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Appending rows grows max_scroll_y without moving scroll_y, so only a scroll (by the
        # user, or our own scroll to the end) changes whether we follow the tail.
        self.following = new_value >= self.max_scroll_y

    def _write(self, entry: ActivityEntry) -> None:
        self.write(Text(entry.text, style=entry.style), scroll_end=self.following)
