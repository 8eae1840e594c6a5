"""The one-line prompt at the bottom: ``:`` for commands, ``/`` for the quick filter."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input

PromptMode = Literal[":", "/"]


class Prompt(Input):
    """Hidden until opened; Enter posts :class:`Prompt.Entered`, Esc cancels.  Either way the
    focus goes back to the widget that had it before the prompt opened."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    class Entered(Message):
        def __init__(self, mode: PromptMode, text: str) -> None:
            super().__init__()
            self.mode = mode
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode: PromptMode = ":"
        self._return_focus: Widget | None = None

    def open(self, mode: PromptMode, text: str = "") -> None:
        self.mode = mode
        self.placeholder = (
            "filter agent ID · filter decision deny · clear · test {json} · q"
            if mode == ":"
            else "show only rows containing…"
        )
        self.border_title = "command" if mode == ":" else "quick filter"
        self.value = text
        self._return_focus = self.screen.focused
        self.display = True
        self.focus()

    def close(self) -> None:
        self.value = ""
        self.display = False
        if self._return_focus is not None and self._return_focus.is_attached:
            self._return_focus.focus()

    async def action_submit(self) -> None:
        text = self.value
        self.close()
        self.post_message(self.Entered(self.mode, text))

    def action_cancel(self) -> None:
        self.close()
