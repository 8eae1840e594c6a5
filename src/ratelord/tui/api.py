"""The TUI's view of the daemon: a few ``GET``\\s, ``POST /v1/intent`` and the SSE event tail.

Responses are decoded into :mod:`ratelord.schema` structs (plus the read-only shapes below that
only the dashboard uses); events stay plain dicts.  httpx and msgspec errors never leave this
module: they become :class:`DaemonUnavailable` (worth retrying) or :class:`RequestRejected`
(the daemon said no; retrying the same request will not help).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import msgspec

from ratelord.client._base import Members
from ratelord.client._sse import SseDecoder
from ratelord.schema import (
    Decision,
    Health,
    Identity,
    Lease,
    LeaseList,
    MoneyBudget,
    MoneyBudgetList,
    Pool,
)

__all__ = [
    "Consumer",
    "DaemonApi",
    "DaemonError",
    "DaemonUnavailable",
    "HistoryPoint",
    "PoolDetail",
    "RequestRejected",
    "Stats",
    "StoreStats",
    "TopConsumers",
]

T = TypeVar("T")

#: Reads on the SSE stream may idle up to the daemon's 15 s ping interval; allow for two misses.
STREAM_TIMEOUT = httpx.Timeout(5.0, read=35.0)


class DaemonError(Exception):
    """Base of everything :class:`DaemonApi` raises."""


class DaemonUnavailable(DaemonError):
    """The daemon could not be reached, timed out, or answered 5xx/503: try again later."""


class RequestRejected(DaemonError):
    """The daemon answered 4xx; ``code`` is its error code (``bad_request``, ``not_found``…)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class StoreStats(msgspec.Struct, kw_only=True):
    commit_lag_ms: float = 0.0
    queue_depth: int = 0
    high_water_seq: int = 0


class Stats(msgspec.Struct, kw_only=True):
    """``GET /v1/stats``: decision counters and store vitals."""

    intents_total: int = 0
    decisions: dict[str, int] = {}
    intents_per_minute: list[int] = []
    denial_rate: float = 0.0
    store: StoreStats = msgspec.field(default_factory=StoreStats)


class HistoryPoint(msgspec.Struct, kw_only=True):
    ts: str
    remaining: float


class Consumer(msgspec.Struct, kw_only=True):
    id: str
    used: float


class TopConsumers(msgspec.Struct, kw_only=True):
    agents: list[Consumer] = []
    identities: list[Consumer] = []


class PoolDetail(Pool, kw_only=True):
    """``GET /v1/pools/{id}``: the pool plus its recent history and top consumers."""

    history: list[HistoryPoint] = msgspec.field(default_factory=list)
    top_consumers: TopConsumers = msgspec.field(default_factory=TopConsumers)


class _Pools(msgspec.Struct):
    pools: list[Pool]


class _Identities(msgspec.Struct):
    identities: list[Identity]


class _Events(msgspec.Struct):
    events: list[dict[str, Any]]
    next_after_seq: int | None = None


class DaemonApi:
    """An async client of one daemon.  Use as ``async with DaemonApi(url) as api``.

    ``token`` is sent as ``Authorization: Bearer`` (daemons bound off loopback require one); it
    appears in no message or exception.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        #: the cluster's members (``url`` may list several, comma-separated)
        self.members = Members(url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def health(self) -> Health:
        return await self._get("/v1/health", Health)

    async def pools(self) -> list[Pool]:
        return (await self._get("/v1/pools", _Pools)).pools

    async def pool(self, pool_id: str) -> PoolDetail:
        # Pool ids contain ':' and '/'; the daemon takes them raw in the path.
        return await self._get(f"/v1/pools/{pool_id}", PoolDetail)

    async def identities(self) -> list[Identity]:
        return (await self._get("/v1/identities", _Identities)).identities

    async def leases(self) -> list[Lease]:
        return (await self._get("/v1/leases", LeaseList)).leases

    async def budgets(self) -> list[MoneyBudget]:
        return (await self._get("/v1/budgets", MoneyBudgetList)).budgets

    async def stats(self) -> Stats:
        return await self._get("/v1/stats", Stats)

    async def recent_events(self, *, event_type: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` events of one type, oldest first."""
        params = {"type": event_type, "limit": str(limit)}
        events = (await self._get("/v1/events", _Events, params=params)).events
        return sorted(events, key=lambda e: int(e["seq"]))

    async def submit_intent(self, intent: dict[str, Any]) -> Decision:
        return self._decode(await self._send("POST", "/v1/intent", json=intent), Decision)

    @asynccontextmanager
    async def event_stream(self, *, after_seq: int) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Open the live tail of every event with ``seq > after_seq``.

        ``async with api.event_stream(after_seq=n) as events: async for event in events: ...``
        — entering means the daemon accepted the stream.  A dropped connection raises
        :class:`DaemonUnavailable`; the caller resumes with the last ``seq`` it saw.
        """
        params = {"stream": "true", "after_seq": str(after_seq)}
        try:
            async with self._http.stream(
                "GET", self.url + "/v1/events", params=params, timeout=STREAM_TIMEOUT
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    self._raise_for_status(response)
                yield self._sse_events(response)
        except httpx.HTTPError as exc:
            raise DaemonUnavailable(f"event stream from {self.url} broke: {exc!r}") from exc
        except ValueError as exc:
            raise DaemonUnavailable(f"event stream from {self.url} sent bad JSON") from exc

    @staticmethod
    async def _sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        decoder = SseDecoder()
        async for line in response.aiter_lines():
            message = decoder.feed(line.rstrip("\r"))
            if message is not None:
                yield json.loads(message.data)

    async def _get(self, path: str, kind: type[T], params: dict[str, str] | None = None) -> T:
        return self._decode(await self._send("GET", path, params=params), kind)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Ask the current member; one that is down or has no leader (503) passes to the next."""
        for left in range(len(self.members.urls) - 1, -1, -1):
            try:
                response = await self._http.request(method, self.url + path, **kwargs)
            except httpx.HTTPError as exc:
                if not left:
                    raise DaemonUnavailable(f"{method} {self.url}{path}: {exc!r}") from exc
                self.members.next()
                continue
            if response.status_code == 503 and left:
                self.members.next()
                continue
            break
        self._raise_for_status(response)
        return response

    @property
    def url(self) -> str:
        """The member requests go to now."""
        return self.members.current

    @staticmethod
    def _raise_for_status(response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        if status >= 500 or status == 429:
            raise DaemonUnavailable(f"daemon answered {status} to {response.request.url.path}")
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", response.text[:200]
        raise RequestRejected(status, code, message)

    def _decode(self, response: httpx.Response, kind: type[T]) -> T:
        try:
            return msgspec.json.decode(response.content, type=kind)
        except msgspec.DecodeError as exc:
            path = response.request.url.path
            raise DaemonUnavailable(f"unexpected answer to {path}: {exc}") from exc
