"""The one Server-Sent Events parser (the WHATWG event-stream format), for every client.

Text lines in (without their line breaks), whole messages out: ``SseDecoder``
takes one line at a time (for async streams), :func:`parse_sse` a whole
iterable.  Comments (``: ping``) and ``retry:`` are skipped; a message is
dispatched on a blank line and only when it carried ``data``; the last event id
carries over to later messages, as the standard says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SseMessage:
    """One dispatched message; ``id`` is the last event id seen so far on the stream."""

    event: str
    data: str
    id: str | None


@dataclass
class SseDecoder:
    """Feed it one line at a time; a blank line completes a message."""

    _id: str | None = None
    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> SseMessage | None:
        if not line:
            message = None
            if self._data:
                message = SseMessage(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data = "", []
            return message
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Yield the messages of an event stream given as lines."""
    decoder = SseDecoder()
    for line in lines:
        message = decoder.feed(line)
        if message is not None:
            yield message
