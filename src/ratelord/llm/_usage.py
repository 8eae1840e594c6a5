"""What an LLM call really spent, read from its response.

Three shapes are understood, from a JSON body or from a Server-Sent Events
stream:

* OpenAI chat/completions: ``usage: {prompt_tokens, completion_tokens,
  prompt_tokens_details: {cached_tokens}}``; streamed, the last chunk before
  ``[DONE]`` carries it when the request set ``stream_options.include_usage``.
* OpenAI responses: ``usage: {input_tokens, output_tokens,
  input_tokens_details: {cached_tokens}}``; streamed, in the
  ``response.completed`` event's ``response``.
* Anthropic messages: ``usage: {input_tokens, output_tokens,
  cache_read_input_tokens, cache_creation_input_tokens}``, where
  ``input_tokens`` excludes the cache; streamed, ``message_start`` carries the
  input and ``message_delta`` the running output count.

:class:`Usage` always counts *all* input tokens in ``input_tokens`` (cached
ones included) and the cached part again in ``cached_input_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["StreamUsage", "Usage", "usage_from_body"]

#: A stream line longer than this is not a usage chunk; it is dropped, not buffered.
_MAX_LINE = 1 << 20


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


def usage_from_body(body: bytes | Mapping[str, Any]) -> Usage | None:
    """The usage of a non-streamed response body, or ``None`` if it carries none."""
    if isinstance(body, Mapping):
        data: Any = body
    else:
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return None
    if not isinstance(data, dict):
        return None
    if data.get("type") == "response" or isinstance(data.get("response"), dict):
        data = data.get("response", data)  # a responses-API envelope
    return _read(data.get("usage"), data.get("model"))


class StreamUsage:
    """Reads usage from an SSE stream as its bytes go by.

    Feed every chunk the client receives, in order; the stream itself is not
    changed or held back.  Only ``data:`` lines mentioning ``usage`` are
    decoded, so following a long stream costs little.  :attr:`usage` is the
    best count seen so far (``None`` until one arrives).
    """

    def __init__(self) -> None:
        self._pending = b""
        self._model: str | None = None
        self._input = 0
        self._cached = 0
        self._output = 0
        self._seen = False

    @property
    def usage(self) -> Usage | None:
        if not self._seen:
            return None
        return Usage(
            model=self._model,
            input_tokens=self._input,
            output_tokens=self._output,
            cached_input_tokens=self._cached,
        )

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > _MAX_LINE:
            self._pending = b""
        for line in lines:
            self._line(line.rstrip(b"\r"))

    def close(self) -> None:
        """The stream ended: read a last line that had no newline."""
        if self._pending:
            self._line(self._pending.rstrip(b"\r"))
            self._pending = b""

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:") or b"usage" not in line:
            return
        try:
            event = msgspec.json.decode(line[5:].strip())
        except msgspec.DecodeError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            self._take(_read(event["message"].get("usage"), event["message"].get("model")))
        elif kind == "message_delta":  # running totals: the largest count is the last
            self._take(_read(event.get("usage"), None))
        elif isinstance(event.get("response"), dict):  # response.completed and friends
            self._take(usage_from_body(event))
        else:
            self._take(_read(event.get("usage"), event.get("model")))

    def _take(self, usage: Usage | None) -> None:
        if usage is None:
            return
        self._seen = True
        self._model = usage.model or self._model
        self._input = max(self._input, usage.input_tokens)
        self._cached = max(self._cached, usage.cached_input_tokens)
        self._output = max(self._output, usage.output_tokens)


def _read(raw: Any, model: Any) -> Usage | None:
    usage = _dict(raw)
    if not usage:
        return None
    model = model if isinstance(model, str) and model else None
    if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI chat/completions
        return Usage(
            model=model,
            input_tokens=_int(usage, "prompt_tokens") or 0,
            output_tokens=_int(usage, "completion_tokens") or 0,
            cached_input_tokens=_int(_dict(usage.get("prompt_tokens_details")), "cached_tokens")
            or 0,
        )
    if "input_tokens_details" in usage or "total_tokens" in usage:  # OpenAI responses
        return Usage(
            model=model,
            input_tokens=_int(usage, "input_tokens") or 0,
            output_tokens=_int(usage, "output_tokens") or 0,
            cached_input_tokens=_int(_dict(usage.get("input_tokens_details")), "cached_tokens")
            or 0,
        )
    if "input_tokens" in usage or "output_tokens" in usage:  # Anthropic
        read = _int(usage, "cache_read_input_tokens") or 0
        written = _int(usage, "cache_creation_input_tokens") or 0
        return Usage(
            model=model,
            input_tokens=(_int(usage, "input_tokens") or 0) + read + written,
            output_tokens=_int(usage, "output_tokens") or 0,
            cached_input_tokens=read,
        )
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)
