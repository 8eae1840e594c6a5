"""``Client`` and ``AsyncClient``: thin I/O twins over :class:`BaseClient`.

Besides asking and reporting, both read the daemon's views (``pools``,
``pool``, ``stats``, ``events``…, typed by :mod:`ratelord.schema`), any
endpoint as plain JSON (``get``/``post``, for the CLI's ``--json``) and its
streams (``sse``; ``ndjson`` on the sync client, ``event_stream`` on the async
one, for the TUI).  The CLI and the TUI are built on them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx2
import msgspec

from ratelord.client._admission import expired, waited_approval
from ratelord.client._base import Attempts, BaseClient, path_id, query
from ratelord.client._batcher import Batcher
from ratelord.client._exceptions import RatelordError, RatelordTransportError
from ratelord.client._guard import AsyncGuard, Guard, GuardArgs, GuardOptions
from ratelord.client._lease_io import AsyncLeases, SyncLeases
from ratelord.client._leased_guard import AsyncLeasedGuard, LeasedGuard, held_for
from ratelord.client._sse import SseDecoder, SseMessage, parse_sse
from ratelord.schema import (
    ApprovalCheck,
    Decision,
    DecisionList,
    EventPage,
    Health,
    Identity,
    IdentityCreate,
    IdentityList,
    IntentRequest,
    Lease,
    LeaseList,
    MoneyBudget,
    MoneyBudgetList,
    Pool,
    PoolDetail,
    PoolList,
    Stats,
    UsageAccepted,
    UsageReport,
)

T = TypeVar("T")


class Client(BaseClient[httpx2.BaseTransport, Callable[[float], None]]):
    """Ask ratelord-d before spending; report what was spent.

    ``url`` defaults to ``RATELORD_URL``, else ``http://127.0.0.1:8090``; a list
    (or a comma-separated string) names a cluster's members: a request that
    finds one unreachable or unavailable (503) goes on to the next, and the
    fail-safe answer applies only when no member answers.
    When the daemon cannot be asked, :meth:`ask` answers a synthetic
    ``deny_with_reason`` (or, with ``fail_open=True``, an approval and a
    logged warning).  503 and 429 answers are retried up to ``retries``
    times, waiting as ``Retry-After`` says.  ``sleep`` is how the client,
    its guards and transports wait (inject a fake one in tests).  After
    ``breaker.threshold`` calls in a row that reach no member (down, or no
    answer within ``timeout``), the client stops asking for ``breaker.cooldown``
    seconds: calls get the fail mode at once, then one probes the daemon again.
    """

    _default_sleep = staticmethod(time.sleep)

    def _connect(self, transport: httpx2.BaseTransport | None) -> None:
        self._http = httpx2.Client(transport=transport, **self._client_options())
        self._leases = SyncLeases(self)

    def ask(self, intent: IntentRequest | None = None, /, **fields: Any) -> Decision:
        """Submit an intent (an :class:`IntentRequest` and/or its fields); the decision."""
        request = self._intent(intent, fields)
        try:
            return self._call("POST", "/v1/intent", request, Decision)
        except RatelordTransportError as exc:
            return self._unreachable(exc)

    def ask_many(self, intents: list[IntentRequest]) -> list[Decision]:
        """Decide several intents in one request and one commit (``POST /v1/intents``)."""
        try:
            batch = self._call("POST", "/v1/intents", self._batch(intents), DecisionList)
        except RatelordTransportError as exc:
            return [self._unreachable(exc) for _ in intents]
        return batch.decisions

    def report_usage(self, report: UsageReport | None = None, /, **fields: Any) -> UsageAccepted:
        """Tell the daemon what was actually spent (and/or the provider's rate-limit headers)."""
        return self._call("POST", "/v1/usage", self._usage(report, fields), UsageAccepted)

    def approval_holds(self, decision: Decision, identity_id: str) -> bool:
        """After the wait ``decision`` asked for: may it still be spent?  False: ask again.

        Only an approval told to wait is checked, with one small request
        (``POST /v1/intents/{id}/check``; the daemon revokes it there, or earlier
        on the event stream, when its pool no longer covers it).  One past its
        ``valid_until`` is given back without asking.
        """
        if not waited_approval(decision):
            return True
        try:
            if expired(decision, time.time()):
                self.report_usage(self._given_back(decision, identity_id))
                return False
            return self._call("POST", self._check_path(decision), None, ApprovalCheck).holds
        except RatelordError as error:
            return self._check_failed(decision, error)

    def health(self) -> Health:
        return self._call("GET", "/v1/health", None, Health)

    def identities(self) -> list[Identity]:
        """The registered identities (``GET /v1/identities``)."""
        return self._call("GET", "/v1/identities", None, IdentityList).identities

    def register(self, identity: IdentityCreate | None = None, /, **fields: Any) -> Identity:
        """Register an identity (``POST /v1/identities``); 409 if it exists."""
        body = self._build(IdentityCreate, identity, fields)
        return self._call("POST", "/v1/identities", body, Identity)

    # ------------------------------------------------------------------ reads

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, into: Any = Any) -> Any:
        """``GET path`` decoded ``into`` a model (plain JSON data by default)."""
        return self._call("GET", path, None, into, params)

    def post(self, path: str, body: Any = None, *, into: Any = Any) -> Any:
        """``POST path`` with a JSON body (a struct or plain data), decoded ``into``."""
        return self._call("POST", path, body, into)

    def pools(self) -> list[Pool]:
        return self._call("GET", "/v1/pools", None, PoolList).pools

    def pool(self, pool_id: str) -> PoolDetail:
        return self._call("GET", f"/v1/pools/{path_id(pool_id)}", None, PoolDetail)

    def leases(self) -> list[Lease]:
        return self._call("GET", "/v1/leases", None, LeaseList).leases

    def budgets(self) -> list[MoneyBudget]:
        return self._call("GET", "/v1/budgets", None, MoneyBudgetList).budgets

    def stats(self) -> Stats:
        return self._call("GET", "/v1/stats", None, Stats)

    def events(self, **params: Any) -> EventPage:
        """A page of the log (``type``, ``limit``, ``after_seq`` and the dimension filters)."""
        return self._call("GET", "/v1/events", None, EventPage, params)

    # ------------------------------------------------------------------ streams

    @contextmanager
    def _stream(
        self,
        method: str,
        path: str,
        *,
        read_timeout: float,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx2.Response]:
        options = self._stream_options(params, body, headers, read_timeout)
        with (
            self._converted_errors(read_timeout),
            self._http.stream(method, self.url + path, **options) as response,
        ):
            if response.is_error:
                response.read()
                self._raise_for_status(response)
            yield response

    def sse(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        last_event_id: str | None = None,
        read_timeout: float,
    ) -> Iterator[SseMessage]:
        """GET an event stream and yield its messages until the server closes it."""
        headers = self._sse_headers(last_event_id)
        with self._stream(
            "GET", path, params=params, headers=headers, read_timeout=read_timeout
        ) as response:
            yield from parse_sse(response.iter_lines())

    def ndjson(self, path: str, body: Any = None, *, read_timeout: float) -> Iterator[Any]:
        """POST and yield each JSON line of a streamed answer (``/v1/admin/rebuild``)."""
        with self._stream("POST", path, body=body, read_timeout=read_timeout) as response:
            for line in response.iter_lines():
                if line.strip():
                    yield self._decode(line, Any)

    def guard(self, **options: Unpack[GuardArgs]) -> Guard:
        """``with client.guard(identity=..., workload=...) as g:`` — see :class:`Guard`."""
        held = held_for(self._leases.keeper, options)
        if held is not None:
            return LeasedGuard(self, options, held)
        return Guard(self, GuardOptions(**options))

    def close(self) -> None:
        """Release this client's leases (unspent units go back) and close the connection."""
        self._leases.close()
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        body: Any,
        model: type[T],
        params: Mapping[str, Any] | None = None,
    ) -> T:
        content = None if body is None else msgspec.json.encode(body)
        params = query(params)
        attempts = Attempts(self)
        while True:
            outcome: httpx2.Response | RatelordTransportError
            try:
                with self._converted_errors():
                    outcome = self._http.request(
                        method, self.url + path, content=content, params=params
                    )
            except RatelordTransportError as error:
                outcome = error
            then = attempts.next(outcome)
            if isinstance(then, httpx2.Response):
                return self._read(then, model)
            if then is not None:
                self.sleep(then)


class AsyncClient(BaseClient[httpx2.AsyncBaseTransport, Callable[[float], Awaitable[None]]]):
    """The asyncio twin of :class:`Client` (same options; ``sleep`` is a coroutine function)."""

    _default_sleep = staticmethod(asyncio.sleep)

    def _connect(self, transport: httpx2.AsyncBaseTransport | None) -> None:
        self._http = httpx2.AsyncClient(transport=transport, **self._client_options())
        self._leases = AsyncLeases(self)
        self._batcher = Batcher(self)

    async def ask(self, intent: IntentRequest | None = None, /, **fields: Any) -> Decision:
        """Like :meth:`Client.ask`; asks made while one is in flight go in one batch."""
        request = self._intent(intent, fields)
        try:
            return await self._batcher.ask(request)
        except RatelordTransportError as exc:
            return self._unreachable(exc)

    async def ask_many(self, intents: list[IntentRequest]) -> list[Decision]:
        """Decide several intents in one request and one commit (``POST /v1/intents``)."""
        try:
            batch = await self._call("POST", "/v1/intents", self._batch(intents), DecisionList)
        except RatelordTransportError as exc:
            return [self._unreachable(exc) for _ in intents]
        return batch.decisions

    async def report_usage(
        self, report: UsageReport | None = None, /, **fields: Any
    ) -> UsageAccepted:
        return await self._call("POST", "/v1/usage", self._usage(report, fields), UsageAccepted)

    async def approval_holds(self, decision: Decision, identity_id: str) -> bool:
        """Like :meth:`Client.approval_holds`."""
        if not waited_approval(decision):
            return True
        try:
            if expired(decision, time.time()):
                await self.report_usage(self._given_back(decision, identity_id))
                return False
            check = await self._call("POST", self._check_path(decision), None, ApprovalCheck)
        except RatelordError as error:
            return self._check_failed(decision, error)
        return check.holds

    async def health(self) -> Health:
        return await self._call("GET", "/v1/health", None, Health)

    async def identities(self) -> list[Identity]:
        return (await self._call("GET", "/v1/identities", None, IdentityList)).identities

    async def register(self, identity: IdentityCreate | None = None, /, **fields: Any) -> Identity:
        body = self._build(IdentityCreate, identity, fields)
        return await self._call("POST", "/v1/identities", body, Identity)

    # ------------------------------------------------------------------ reads

    async def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, into: Any = Any
    ) -> Any:
        return await self._call("GET", path, None, into, params)

    async def post(self, path: str, body: Any = None, *, into: Any = Any) -> Any:
        return await self._call("POST", path, body, into)

    async def pools(self) -> list[Pool]:
        return (await self._call("GET", "/v1/pools", None, PoolList)).pools

    async def pool(self, pool_id: str) -> PoolDetail:
        return await self._call("GET", f"/v1/pools/{path_id(pool_id)}", None, PoolDetail)

    async def leases(self) -> list[Lease]:
        return (await self._call("GET", "/v1/leases", None, LeaseList)).leases

    async def budgets(self) -> list[MoneyBudget]:
        return (await self._call("GET", "/v1/budgets", None, MoneyBudgetList)).budgets

    async def stats(self) -> Stats:
        return await self._call("GET", "/v1/stats", None, Stats)

    async def events(self, **params: Any) -> EventPage:
        return await self._call("GET", "/v1/events", None, EventPage, params)

    # ------------------------------------------------------------------ streams

    @asynccontextmanager
    async def sse(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        last_event_id: str | None = None,
        read_timeout: float,
    ) -> AsyncIterator[AsyncIterator[SseMessage]]:
        """``async with aclient.sse(path) as messages: async for message in messages: ...``

        Entering means the daemon accepted the stream; a dropped connection raises
        :class:`RatelordTransportError` from the ``async with``.
        """
        options = self._stream_options(params, None, self._sse_headers(last_event_id), read_timeout)
        with self._converted_errors(read_timeout):
            async with self._http.stream("GET", self.url + path, **options) as response:
                if response.is_error:
                    await response.aread()
                    self._raise_for_status(response)
                yield _messages(response)

    @asynccontextmanager
    async def event_stream(
        self, *, after_seq: int, read_timeout: float = 35.0, **filters: Any
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """The live tail of every event with ``seq > after_seq``, each as plain data.

        ``read_timeout`` allows for two missed pings (the daemon sends one every 15 s).
        """
        params = {**filters, "stream": "true", "after_seq": after_seq}
        async with self.sse("/v1/events", params, read_timeout=read_timeout) as messages:
            yield self._events(messages)

    async def _events(self, messages: AsyncIterator[SseMessage]) -> AsyncIterator[dict[str, Any]]:
        async for message in messages:
            yield self._decode(message.data, dict[str, Any])

    def guard(self, **options: Unpack[GuardArgs]) -> AsyncGuard:
        """``async with aclient.guard(identity=..., workload=...) as g:``"""
        held = held_for(self._leases.keeper, options)
        if held is not None:
            return AsyncLeasedGuard(self, options, held)
        return AsyncGuard(self, GuardOptions(**options))

    async def aclose(self) -> None:
        await self._leases.close()
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        body: Any,
        model: type[T],
        params: Mapping[str, Any] | None = None,
    ) -> T:
        content = None if body is None else msgspec.json.encode(body)
        params = query(params)
        attempts = Attempts(self)
        while True:
            outcome: httpx2.Response | RatelordTransportError
            try:
                with self._converted_errors():
                    outcome = await self._http.request(
                        method, self.url + path, content=content, params=params
                    )
            except RatelordTransportError as error:
                outcome = error
            then = attempts.next(outcome)
            if isinstance(then, httpx2.Response):
                return self._read(then, model)
            if then is not None:
                await self.sleep(then)


async def _messages(response: httpx2.Response) -> AsyncIterator[SseMessage]:
    decoder = SseDecoder()
    async for line in response.aiter_lines():
        message = decoder.feed(line.rstrip("\r"))
        if message is not None:
            yield message
