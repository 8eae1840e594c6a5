"""httpx transports that put ratelord in front of an agent's existing API client::

    transport = RatelordTransport(client=ratelord, agent_id="crawler-01", identity_id="pat:alice")
    api = httpx.Client(base_url="https://api.github.com", transport=transport)

Each request is asked for first (cost and resource from ``route(request)``),
waited for as told, refused with :class:`RatelordDenied` when denied, sent
through ``wrapped`` (by default httpx's own transport), and its response's
rate-limit headers are reported to ``POST /v1/usage`` with the intent id.
"""

from __future__ import annotations

import httpx

from ratelord.client._client import AsyncClient, Client
from ratelord.client._gate import AsyncGate, Gate, Route
from ratelord.schema import SENTINEL_GLOBAL, SENTINEL_UNKNOWN, Urgency


class RatelordTransport(httpx.BaseTransport):
    def __init__(
        self,
        wrapped: httpx.BaseTransport | None = None,
        *,
        client: Client,
        agent_id: str,
        identity_id: str,
        workload_id: str = SENTINEL_UNKNOWN,
        scope_id: str = SENTINEL_GLOBAL,
        urgency: Urgency = "normal",
        route: Route[httpx.Request] | None = None,
        max_wait: float | None = None,
        lease: bool | None = None,
    ) -> None:
        self._wrapped = wrapped or httpx.HTTPTransport()
        self._gate: Gate[httpx.Request] = Gate(
            client,
            agent_id=agent_id,
            identity_id=identity_id,
            workload_id=workload_id,
            scope_id=scope_id,
            urgency=urgency,
            route=route,
            max_wait=max_wait,
            lease=lease,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        decision = self._gate.before(request)
        response = self._wrapped.handle_request(request)
        self._gate.after(
            decision, response.headers.multi_items(), request.url.path, response.status_code
        )
        return response

    def close(self) -> None:
        self._wrapped.close()


class AsyncRatelordTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of :class:`RatelordTransport`, for ``httpx.AsyncClient``."""

    def __init__(
        self,
        wrapped: httpx.AsyncBaseTransport | None = None,
        *,
        client: AsyncClient,
        agent_id: str,
        identity_id: str,
        workload_id: str = SENTINEL_UNKNOWN,
        scope_id: str = SENTINEL_GLOBAL,
        urgency: Urgency = "normal",
        route: Route[httpx.Request] | None = None,
        max_wait: float | None = None,
        lease: bool | None = None,
    ) -> None:
        self._wrapped = wrapped or httpx.AsyncHTTPTransport()
        self._gate: AsyncGate[httpx.Request] = AsyncGate(
            client,
            agent_id=agent_id,
            identity_id=identity_id,
            workload_id=workload_id,
            scope_id=scope_id,
            urgency=urgency,
            route=route,
            max_wait=max_wait,
            lease=lease,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        decision = await self._gate.before(request)
        response = await self._wrapped.handle_async_request(request)
        await self._gate.after(
            decision, response.headers.multi_items(), request.url.path, response.status_code
        )
        return response

    async def aclose(self) -> None:
        await self._wrapped.aclose()
