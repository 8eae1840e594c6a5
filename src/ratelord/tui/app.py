"""The ``ratelord tui`` application: screens, global keys and styles.  Nothing else lives here."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from ratelord.client import AsyncClient
from ratelord.tui.screens.dashboard import DashboardScreen
from ratelord.tui.screens.help import HelpScreen


class RatelordApp(App[None]):
    TITLE = "ratelord"
    CSS_PATH = "ratelord.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (Textual's API)
    SCREENS: ClassVar = {"help": HelpScreen}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "push_screen('help')", "Help", key_display="?"),
    ]

    def __init__(self, api: AsyncClient, *, poll_interval: float = 1.0) -> None:
        super().__init__()
        self.api = api
        self.poll_interval = poll_interval

    def on_mount(self) -> None:
        self.push_screen(DashboardScreen())
