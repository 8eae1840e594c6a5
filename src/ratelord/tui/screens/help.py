"""Keys and commands, over the dashboard."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """\
[b]Keys[/b]
  ↑ ↓          move in a table          Tab        next table
  Enter        open the pool (or the identity's tightest pool)
  Esc          back / close / clear the quick filter
  /            quick filter: rows containing text
  :            command mode
  ?            this help                q          quit

[b]Commands[/b]
  :filter agent ID            only this agent's decisions
  :filter identity ID         only this identity's decisions
  :filter workload ID         only this workload's decisions
  :filter decision deny       approve | modify | deny
  :clear                      drop every filter
  :test {"agent_id": "a1", "identity_id": "id-a", "resource": "requests", "cost": 1}
                              submit an intent through POST /v1/intent and show the decision
  :q                          quit

[b]Colours[/b]  [green]OK[/]  [yellow]WARN[/] P(exhaustion) ≥ 10 % or < 20 % left  \
[red]CRIT[/] P(exhaustion) ≥ 50 % or < 5 % left"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(HELP_TEXT, id="help-text")
