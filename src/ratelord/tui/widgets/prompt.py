"""The one-line prompt at the bottom: ``:`` for commands, ``/`` for the quick filter."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input

PromptMode = Literal[":", "/"]


class Prompt(Input):
    """Hidden until opened; Enter posts :class:`Prompt.Entered`, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    class Entered(Message):
        def __init__(self, mode: PromptMode, text: str) -> None:
            super().__init__()
            self.mode = mode
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode: PromptMode = ":"

    def open(self, mode: PromptMode, text: str = "") -> None:
        self.mode = mode
        self.placeholder = (
            "filter agent ID · filter decision deny · clear · test {json} · q"
            if mode == ":"
            else "show only rows containing…"
        )
        self.border_title = "command" if mode == ":" else "quick filter"
        self.value = text
        self.display = True
        self.focus()

    def close(self) -> None:
        self.value = ""
        self.display = False

    async def action_submit(self) -> None:
        text = self.value
        self.close()
        self.post_message(self.Entered(self.mode, text))

    def action_cancel(self) -> None:
        self.close()
