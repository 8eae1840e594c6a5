"""LLM calls through the SDK's transports: charge the estimate, report the real usage.

With ``llm=True`` a transport reads each ``POST`` body it sends: a chat,
responses, completions, embeddings or Anthropic messages call is asked for
as one multi-cost intent (a request and its tokens, per model:
:func:`ratelord.llm.charges_for`).  Its answer — JSON or a Server-Sent Events
stream — is read from a copy of its bytes as the agent's SDK consumes them,
and when the answer is closed the transport reports the rate-limit headers
with the request's ``model`` and what the call really spent
(:func:`ratelord.llm.usage_costs`), which corrects the reservation; both
carry ``tokens`` (model, input, output) for the daemon's money budgets.  A
refused call (4xx/5xx) spent no tokens and is reported so.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from ratelord import llm

Report = dict[str, Any]


class LLMCall:
    """One LLM request's estimate, and the report of its answer."""

    __slots__ = ("estimate",)

    def __init__(self, estimate: llm.TokenEstimate) -> None:
        self.estimate = estimate

    @classmethod
    def of(cls, method: str, path: str, body: bytes | None) -> LLMCall | None:
        if method != "POST" or not body:
            return None
        estimate = llm.estimate_request(body, path=path)
        return None if estimate is None else cls(estimate)

    def intent_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"costs": llm.charges_for(self.estimate)}
        estimate = self.estimate
        if estimate.model:  # what money budgets price (the daemon's price table)
            fields["tokens"] = {
                "model": estimate.model,
                "input": estimate.input_tokens,
                "output": estimate.output_tokens,
            }
        return fields

    def report(self, status_code: int, usage: llm.Usage | None) -> Report:
        """``model`` and, when known, the real ``costs`` of the call."""
        fields: Report = {"model": self.estimate.model} if self.estimate.model else {}
        if status_code >= 400:  # refused or failed: the provider charged no tokens
            usage = llm.Usage()
        if usage is not None:
            fields["costs"] = llm.usage_costs(self.estimate, usage)
            if self.estimate.model:
                fields["tokens"] = {
                    "model": self.estimate.model,
                    "input": usage.input_tokens,
                    "output": usage.output_tokens,
                    "cached_input": min(usage.cached_input_tokens, usage.input_tokens),
                }
        return fields

    def tap(self, content_type: str, content_encoding: str) -> llm.UsageTap | None:
        return llm.tap_for(content_type, content_encoding)


def request_body(request: Any) -> bytes | None:
    """The body of an httpx/httpx2 request if it is in memory (never reads a stream)."""
    try:
        content = request.content
    except Exception:  # RequestNotRead: a streamed upload is not an LLM call we price
        return None
    return content if isinstance(content, bytes) else None


# ---------------------------------------------------------------------- stream wrappers


class _SyncTapped:
    """Yields the wrapped stream's chunks unchanged, feeding a copy to the tap."""

    def __init__(self, inner: Any, tap: llm.UsageTap, done: Callable[[], None]) -> None:
        self._inner, self._tap, self._done = inner, tap, done
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._tap.feed(chunk)
            yield chunk

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            if not self._closed:
                self._closed = True
                self._done()


class _AsyncTapped:
    def __init__(self, inner: Any, tap: llm.UsageTap, done: Callable[[], Awaitable[None]]) -> None:
        self._inner, self._tap, self._done = inner, tap, done
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._tap.feed(chunk)
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if not self._closed:
                self._closed = True
                await self._done()


_classes: dict[tuple[str, bool], type] = {}


def tapped_stream(response: Any, tap: llm.UsageTap, done: Callable[..., Any], *, aio: bool) -> Any:
    """A stream of the response's own library (httpx or httpx2) that taps ``response.stream``."""
    library = type(response).__module__.split(".", 1)[0]
    key = (library, aio)
    cls = _classes.get(key)
    if cls is None:
        module = sys.modules[library]
        base = module.AsyncByteStream if aio else module.SyncByteStream
        mixin = _AsyncTapped if aio else _SyncTapped
        cls = _classes[key] = type(f"Tapped{base.__name__}", (mixin, base), {})
    return cls(response.stream, tap, done)
