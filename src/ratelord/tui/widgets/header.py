"""The status line: connection state, daemon version and uptime, and the global risk gauge."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ratelord.schema import Health, Posture
from ratelord.tui import formatting as fmt
from ratelord.tui.posture import POSTURE_COLOR

GAUGE_CELLS = 10


def gauge(risk: float, posture: Posture) -> Text:
    """``risk ■■■■□□□□□□ 42% WARN``: the filled share is the worst pool's P(exhaustion)."""
    filled = round(max(0.0, min(1.0, risk)) * GAUGE_CELLS)
    color = POSTURE_COLOR[posture]
    return Text.assemble(
        "risk ",
        ("■" * filled, f"bold {color}"),
        ("□" * (GAUGE_CELLS - filled), color),
        f" {fmt.percent(risk)} ",
        (f" {posture} ", f"bold reverse {color}"),
    )


class StatusHeader(Static):
    """Coloured by the worst pool posture (classes ``-ok``, ``-warn``, ``-crit``) and dimmed
    with ``-offline`` while the daemon is unreachable."""

    def __init__(self, url: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.url = url
        self.connected = False
        self.posture: Posture = "OK"
        self._risk = 0.0
        self._health: Health | None = None

    def on_mount(self) -> None:
        self._redraw()

    def show_connection(self, connected: bool) -> None:
        self.connected = connected
        self._redraw()

    def show_health(self, health: Health, posture: Posture, risk: float) -> None:
        self._health, self.posture, self._risk = health, posture, risk
        self._redraw()

    def _redraw(self) -> None:
        for posture in ("OK", "WARN", "CRIT"):
            self.set_class(self.posture == posture, f"-{posture.lower()}")
        self.set_class(not self.connected, "-offline")
        state = ("● Connected", "bold") if self.connected else ("◌ Reconnecting…", "bold")
        parts: list[str | tuple[str, str] | Text] = [state, "   ", gauge(self._risk, self.posture)]
        if self._health is not None:
            health = self._health
            parts += [
                f"   ratelord-d {health.version}",
                f" · up {fmt.duration(health.uptime_seconds)}",
            ]
            if health.status != "ok":
                parts.append((f" · {health.status}", "bold"))
        parts.append(f" · {self.url}")
        self.update(Text.assemble(*parts))
