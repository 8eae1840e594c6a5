"""Transports that put ratelord in front of an agent's existing API client::

    transport = RatelordTransport(client=ratelord, agent_id="crawler-01", identity_id="pat:alice")
    api = httpx2.Client(base_url="https://api.github.com", transport=transport)

They work with ``httpx2`` (the maintained line the ``openai`` and ``anthropic``
SDKs use) and with legacy ``httpx`` alike: ``wrapped`` defaults to the
connection transport of whichever library the request comes from.

Each request is asked for first (cost and resource from ``route(request)``),
waited for as told, refused when denied, sent through ``wrapped``, and its
response's rate-limit headers are reported to ``POST /v1/usage`` with the
intent id.  ``llm=True`` prices LLM calls from their body and reports their
real usage (see :mod:`ratelord.client._llm`).  A refusal raises
:class:`RatelordDenied`, or with ``refusal="response"`` (the default with
``llm=True``: the ``openai`` and ``anthropic`` SDKs would wrap the exception
as a connection error and retry it) comes back as a 429 the API client
understands (``Retry-After`` when retrying later can help,
``x-should-retry: false`` when it cannot), so it is not retried blindly.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, Literal, Unpack

import httpx2

from ratelord.client._admission import admit
from ratelord.client._client import AsyncClient, Client
from ratelord.client._exceptions import RatelordDenied
from ratelord.client._gate import AsyncGate, Gate, GateArgs, Ticket
from ratelord.client._llm import LLMCall, request_body, tapped_stream
from ratelord.engine.clock import parse_iso

Refusal = Literal["raise", "response"]


class _Options:
    """What the sync and async transports share: the LLM reading and the refusal shape."""

    def __init__(self, llm: bool, refusal: Refusal | None) -> None:
        if refusal is None:  # LLM SDKs retry a transport's exception as a connection error
            refusal = "response" if llm else "raise"
        if refusal not in ("raise", "response"):
            raise ValueError(f"refusal must be 'raise' or 'response', not {refusal!r}")
        self._llm = llm
        self._refusal = refusal

    def _call(self, request: Any) -> LLMCall | None:
        if not self._llm:
            return None
        return LLMCall.of(request.method, request.url.path, request_body(request))

    def _refused(self, request: Any, denied: RatelordDenied) -> Any:
        if self._refusal == "raise":
            raise denied
        return refusal_response(request, denied)


def refusal_response(request: Any, denied: RatelordDenied) -> Any:
    """A 429 of the request's own library, in an error shape OpenAI and Anthropic clients read."""
    library = sys.modules[type(request).__module__.split(".", 1)[0]]
    message = f"ratelord: {denied.reason}"
    body = {
        "type": "error",
        "error": {"type": "rate_limit_error", "code": "ratelord_denied", "message": message},
    }
    headers = {"content-type": "application/json", "x-ratelord-denied": "1"}
    retry_after = _retry_after(denied)
    if retry_after is None:
        headers["x-should-retry"] = "false"
    else:
        headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    return library.Response(
        429, headers=headers, content=json.dumps(body).encode(), request=request
    )


def _retry_after(denied: RatelordDenied) -> float | None:
    """When asking again makes sense: a deferral's time or a wait too long to take here."""
    decision = denied.decision
    if not decision.allowed:
        return None
    if decision.modifications.defer_until:
        try:
            return max(0.0, parse_iso(decision.modifications.defer_until) - time.time())
        except ValueError:
            return None
    return admit(decision, now=time.time()).wait_seconds or None


class RatelordTransport(_Options, httpx2.BaseTransport):
    def __init__(
        self,
        wrapped: Any = None,
        *,
        client: Client,
        llm: bool = False,
        refusal: Refusal | None = None,
        **gate: Unpack[GateArgs[Any]],
    ) -> None:
        super().__init__(llm, refusal)
        self._wrapped = wrapped
        self._gate: Gate[Any] = Gate(client, **gate)

    def handle_request(self, request: Any) -> Any:
        call = self._call(request)
        try:
            ticket = self._gate.before(request, call.intent_fields() if call else None)
        except RatelordDenied as denied:
            return self._refused(request, denied)
        if self._wrapped is None:
            self._wrapped = _library(request).HTTPTransport()
        response = self._wrapped.handle_request(request)
        self._observe(ticket, call, request, response)
        return response

    def _observe(self, ticket: Ticket, call: LLMCall | None, request: Any, response: Any) -> None:
        headers, path, status = (
            response.headers.multi_items(),
            request.url.path,
            response.status_code,
        )
        tap = call.tap(*_encoding(response)) if call else None
        if call is None or tap is None:
            extra = call.report(status, None) if call else None
            self._gate.after(ticket, headers, path, status, extra)
            return

        def done() -> None:
            self._gate.after(ticket, headers, path, status, call.report(status, tap.usage()))

        if response.is_closed:  # an answer already in memory (mock transports): read it now
            tap.feed(response.content)
            done()
            return
        response.stream = tapped_stream(response, tap, done, aio=False)

    def close(self) -> None:
        if self._wrapped is not None:
            self._wrapped.close()


class AsyncRatelordTransport(_Options, httpx2.AsyncBaseTransport):
    """The asyncio twin of :class:`RatelordTransport`, for ``httpx2.AsyncClient`` (or httpx's)."""

    def __init__(
        self,
        wrapped: Any = None,
        *,
        client: AsyncClient,
        llm: bool = False,
        refusal: Refusal | None = None,
        **gate: Unpack[GateArgs[Any]],
    ) -> None:
        super().__init__(llm, refusal)
        self._wrapped = wrapped
        self._gate: AsyncGate[Any] = AsyncGate(client, **gate)

    async def handle_async_request(self, request: Any) -> Any:
        call = self._call(request)
        try:
            ticket = await self._gate.before(request, call.intent_fields() if call else None)
        except RatelordDenied as denied:
            return self._refused(request, denied)
        if self._wrapped is None:
            self._wrapped = _library(request).AsyncHTTPTransport()
        response = await self._wrapped.handle_async_request(request)
        headers, path, status = (
            response.headers.multi_items(),
            request.url.path,
            response.status_code,
        )
        tap = call.tap(*_encoding(response)) if call else None
        if call is None or tap is None:
            extra = call.report(status, None) if call else None
            await self._gate.after(ticket, headers, path, status, extra)
            return response

        async def done() -> None:
            await self._gate.after(ticket, headers, path, status, call.report(status, tap.usage()))

        if response.is_closed:
            tap.feed(response.content)
            await done()
            return response
        response.stream = tapped_stream(response, tap, done, aio=True)
        return response

    async def aclose(self) -> None:
        if self._wrapped is not None:
            await self._wrapped.aclose()


def _library(request: Any) -> Any:
    """``httpx2`` or ``httpx``: the library the request (and so its client) comes from."""
    return sys.modules[type(request).__module__.split(".", 1)[0]]


def _seen(request: Any, response: Any) -> tuple[list[tuple[str, str]], str, int]:
    return response.headers.multi_items(), request.url.path, response.status_code


def _encoding(response: Any) -> tuple[str, str]:
    return response.headers.get("content-type", ""), response.headers.get("content-encoding", "")
