"""``Client`` and ``AsyncClient``: thin I/O twins over :class:`BaseClient`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx
import msgspec

from ratelord.client._base import BaseClient
from ratelord.client._batcher import Batcher
from ratelord.client._breaker import DEFAULT_BREAKER, BreakerSettings
from ratelord.client._exceptions import RatelordTransportError
from ratelord.client._guard import AsyncGuard, Guard, GuardArgs, GuardOptions
from ratelord.client._lease_io import AsyncLeases, SyncLeases
from ratelord.client._leased_guard import AsyncLeasedGuard, LeasedGuard, held_for
from ratelord.schema import (
    Decision,
    DecisionList,
    Health,
    Identity,
    IdentityCreate,
    IdentityList,
    IntentRequest,
    UsageAccepted,
    UsageReport,
)

T = TypeVar("T")


class Client(BaseClient):
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

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        *,
        timeout: float = 5.0,
        fail_open: bool = False,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        breaker: BreakerSettings = DEFAULT_BREAKER,
    ) -> None:
        super().__init__(
            url, timeout=timeout, fail_open=fail_open, retries=retries, token=token, breaker=breaker
        )
        self.sleep = sleep
        self._http = httpx.Client(transport=transport, **self._client_options())
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

    def health(self) -> Health:
        return self._call("GET", "/v1/health", None, Health)

    def identities(self) -> list[Identity]:
        """The registered identities (``GET /v1/identities``)."""
        return self._call("GET", "/v1/identities", None, IdentityList).identities

    def register(self, identity: IdentityCreate | None = None, /, **fields: Any) -> Identity:
        """Register an identity (``POST /v1/identities``); 409 if it exists."""
        body = self._build(IdentityCreate, identity, fields)
        return self._call("POST", "/v1/identities", body, Identity)

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

    def _call(self, method: str, path: str, body: msgspec.Struct | None, model: type[T]) -> T:
        content = None if body is None else msgspec.json.encode(body)
        attempt, tried = 0, 1
        unavailable: httpx.Response | None = None  # a member's 503 in this round
        probe = self.breaker.before(self.url)
        while True:
            try:
                with self._converted_errors():
                    response = self._http.request(method, self.url + path, content=content)
            except RatelordTransportError:
                if self._fail_over(tried):
                    tried += 1
                    continue
                if unavailable is None:  # no member answered at all
                    self.breaker.failed(probe)
                    raise
                response = unavailable  # one did: wait as it said, then go round again
            else:
                if response.status_code == 503 and self._fail_over(tried):
                    tried, unavailable = tried + 1, response
                    continue
            if probe or self.breaker.failures:
                self.breaker.succeeded()
                probe = False
            tried, unavailable = 1, None
            delay = self._retry_delay(response, attempt)
            if delay is None:
                return self._read(response, model)
            self.sleep(delay)
            attempt += 1


class AsyncClient(BaseClient):
    """The asyncio twin of :class:`Client` (same options; ``sleep`` is a coroutine function)."""

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        *,
        timeout: float = 5.0,
        fail_open: bool = False,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        breaker: BreakerSettings = DEFAULT_BREAKER,
    ) -> None:
        super().__init__(
            url, timeout=timeout, fail_open=fail_open, retries=retries, token=token, breaker=breaker
        )
        self.sleep = sleep
        self._http = httpx.AsyncClient(transport=transport, **self._client_options())
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

    async def health(self) -> Health:
        return await self._call("GET", "/v1/health", None, Health)

    async def identities(self) -> list[Identity]:
        return (await self._call("GET", "/v1/identities", None, IdentityList)).identities

    async def register(self, identity: IdentityCreate | None = None, /, **fields: Any) -> Identity:
        body = self._build(IdentityCreate, identity, fields)
        return await self._call("POST", "/v1/identities", body, Identity)

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

    async def _call(self, method: str, path: str, body: msgspec.Struct | None, model: type[T]) -> T:
        content = None if body is None else msgspec.json.encode(body)
        attempt, tried = 0, 1
        unavailable: httpx.Response | None = None  # a member's 503 in this round
        probe = self.breaker.before(self.url)
        while True:
            try:
                with self._converted_errors():
                    response = await self._http.request(method, self.url + path, content=content)
            except RatelordTransportError:
                if self._fail_over(tried):
                    tried += 1
                    continue
                if unavailable is None:  # no member answered at all
                    self.breaker.failed(probe)
                    raise
                response = unavailable  # one did: wait as it said, then go round again
            else:
                if response.status_code == 503 and self._fail_over(tried):
                    tried, unavailable = tried + 1, response
                    continue
            if probe or self.breaker.failures:
                self.breaker.succeeded()
                probe = False
            tried, unavailable = 1, None
            delay = self._retry_delay(response, attempt)
            if delay is None:
                return self._read(response, model)
            await self.sleep(delay)
            attempt += 1
