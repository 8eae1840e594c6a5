"""Server-Sent Events framing: text lines in, whole messages out.

The daemon sends ``id: <seq>`` / ``event: <type>`` / ``data: <json>`` blocks separated by a
blank line, and ``: ping`` comment lines to keep idle connections alive.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SseMessage:
    id: str | None
    event: str
    data: str


@dataclass
class SseDecoder:
    """Feed it one line at a time (without the newline); a blank line completes a message."""

    _id: str | None = None
    _event: str = "message"
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> SseMessage | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self._id = value
        elif name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> SseMessage | None:
        if not self._data:
            self._event = "message"
            return None
        message = SseMessage(self._id, self._event, "\n".join(self._data))
        self._event, self._data = "message", []
        return message
