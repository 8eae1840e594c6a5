"""Read an LLM answer's real token usage as it streams past the client, holding nothing up.

Used by the proxy and the SDK's transports.  A copy of each chunk goes to the
readers: Server-Sent Events to :class:`StreamUsage` line by line, a JSON
answer into a bounded buffer read at the end.  gzip and deflate answers are
inflated for the copy only; the client gets the bytes exactly as sent.
"""

from __future__ import annotations

import zlib

from ratelord.llm._usage import StreamUsage, Usage, usage_from_body

__all__ = ["MAX_BUFFERED", "UsageTap", "tap_for"]

#: A JSON answer larger than this is not read for usage (nor held in memory).
MAX_BUFFERED = 8 * 1024 * 1024


class UsageTap:
    def __init__(self, content_type: str, content_encoding: str) -> None:
        self._stream = StreamUsage() if content_type.startswith("text/event-stream") else None
        self._inflate = (
            zlib.decompressobj(32 + zlib.MAX_WBITS)
            if content_encoding in ("gzip", "deflate")
            else None
        )
        self._body = bytearray()
        self._broken = False

    def feed(self, chunk: bytes) -> None:
        if self._broken:
            return
        if self._inflate is not None:
            try:
                chunk = self._inflate.decompress(chunk)
            except zlib.error:
                self._broken = True
                return
        if self._stream is not None:
            self._stream.feed(chunk)
        elif len(self._body) + len(chunk) <= MAX_BUFFERED:
            self._body += chunk
        else:
            self._broken = True
            self._body.clear()

    def usage(self) -> Usage | None:
        """What the answer says it spent, or None when it did not say (or could not be read)."""
        if self._broken:
            return None
        if self._stream is not None:
            self._stream.close()
            return self._stream.usage
        return usage_from_body(bytes(self._body)) if self._body else None


def tap_for(content_type: str, content_encoding: str) -> UsageTap | None:
    """A tap for an answer of this type, or None when its encoding cannot be read."""
    encoding = content_encoding.strip().lower()
    if encoding not in ("", "identity", "gzip", "deflate"):
        return None
    return UsageTap(content_type.strip().lower(), encoding)
