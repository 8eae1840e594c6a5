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
  ↑ ↓ Tab    move within / between tables
  Enter      open the pool (or the identity's tightest pool)
  Esc        back · close · clear the quick filter
  /          quick filter: only rows containing the text
  :          command mode        ?  this help        q  quit

[b]Commands[/b]
  :filter agent ID          only this agent's decisions
  :filter identity ID       (or workload ID) likewise
  :filter decision deny     approve | modify | deny
  :clear                    drop every filter
  :test {json intent}       submit via POST /v1/intent, show the decision
      e.g. :test {"agent_id": "me", "identity_id": "id-a", "cost": 1}
  :q                        quit

[b]Posture[/b]
  [bold black on green] OK [/]    otherwise
  [bold black on yellow] WARN [/]  P(exhaustion before reset) ≥ 10 % or < 20 % left
  [bold white on red] CRIT [/]  P(exhaustion before reset) ≥ 50 % or < 5 % left"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(HELP_TEXT, id="help-text")
