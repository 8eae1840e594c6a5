"""The proxy as a raw ASGI app: one request → who → what it costs → ask → forward → stream.

``/NAME/rest`` goes to upstream ``NAME`` as ``url + /rest``.  For each request:
read the (bounded) body, find the identity by the credential's fingerprint,
price it (:mod:`ratelord.proxy.charges`), ask ratelord-d and wait or refuse
(:mod:`ratelord.proxy.asking`), forward it, stream the answer back chunk by
chunk as it arrives, and afterwards — off the client's path — report the
answer's rate-limit headers and its real token usage to ratelord-d.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2

from ratelord import llm
from ratelord.asgi.http import HTTPError as BodyError
from ratelord.asgi.http import read_body
from ratelord.client import AsyncClient, RatelordError, RatelordRequestError, rate_limit_headers
from ratelord.client._base import is_local
from ratelord.llm import UsageTap, tap_for
from ratelord.proxy import leasing, refusals
from ratelord.proxy.asking import Admitted, ask, release
from ratelord.proxy.charges import Charge, charge_for
from ratelord.proxy.credentials import IdentityBook, credential_of
from ratelord.proxy.leasing import Leased
from ratelord.proxy.refusals import Refusal
from ratelord.proxy.settings import Kind, ProxySettings
from ratelord.proxy.upstream import Upstream, response_headers
from ratelord.schema import Identity, Urgency, UsageReport

log = logging.getLogger("ratelord.proxy")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_URGENCIES: frozenset[str] = frozenset({"background", "low", "normal", "high"})
#: Seconds between rate-limit header reports of calls spent from leases (per identity,
#: upstream and model); a 429 is reported at once.
LEASED_HEADERS_EVERY = 1.0


class ProxyApp:
    def __init__(
        self,
        settings: ProxySettings,
        client: AsyncClient,
        *,
        token: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.client = client
        self.token = token.encode() if token else None
        self.sleep = sleep
        self.upstreams = {name: Upstream(name, up) for name, up in settings.upstreams.items()}
        self.book = IdentityBook(self._identities)
        self._reports: set[asyncio.Task[None]] = set()
        #: When the headers of a leased call were last reported, by (identity, upstream, model).
        self._headers_at: dict[tuple[str, str, str | None], float] = {}
        #: Slots for requests in flight, by (upstream, identity): ``max_concurrent`` each.
        self._in_flight: dict[tuple[str, str | None], asyncio.Semaphore] = {}

    async def _identities(self) -> list[Identity]:
        return await self.client.identities()

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.book.refresh()
                except RatelordError as error:  # not fatal: looked up again on first use
                    log.warning("could not read ratelord-d's identities yet: %s", error)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        if self._reports:
            await asyncio.wait(self._reports, timeout=5.0)
        for upstream in self.upstreams.values():
            await upstream.aclose()
        await self.client.aclose()

    # ------------------------------------------------------------------ one request

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        name, slash, rest = raw_path[1:].partition(b"/")
        upstream = self.upstreams.get(name.decode("latin-1"))
        if upstream is None:
            await _answer(send, "generic", refusals.not_found(scope["path"], list(self.upstreams)))
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if self.token is not None and not self._authorised(headers):
            await _answer(send, upstream.kind, refusals.proxy_auth_required())
            return
        try:
            body = await read_body(receive, self.settings.max_body_bytes, _length(headers))
        except BodyError:
            await _answer(send, upstream.kind, refusals.too_large(self.settings.max_body_bytes))
            return
        except ConnectionAbortedError:
            return
        path = slash + rest
        method: str = scope["method"]
        try:
            request = upstream.request(method, path, scope["query_string"], headers, body)
        except httpx2.InvalidURL as error:
            await _answer(send, upstream.kind, Refusal(400, "ratelord_bad_request", str(error)))
            return
        outcome = await self._admit(upstream, method, path.decode("latin-1"), headers, body)
        if isinstance(outcome, Refusal):
            await _answer(send, upstream.kind, outcome)
            return
        async with self._slot(upstream, outcome.identity_id):
            await self._forward(upstream, request, outcome, send, path.decode("latin-1"))

    def _slot(self, upstream: Upstream, identity_id: str | None) -> asyncio.Semaphore:
        key = (upstream.name, identity_id)
        slots = self._in_flight.get(key)
        if slots is None:
            slots = self._in_flight[key] = asyncio.Semaphore(upstream.settings.max_concurrent)
        return slots

    def _authorised(self, headers: list[tuple[bytes, bytes]]) -> bool:
        assert self.token is not None
        for name, value in headers:
            if name == b"proxy-authorization":
                scheme, _, given = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token):
                    return True
            elif name == b"x-ratelord-token" and hmac.compare_digest(value.strip(), self.token):
                return True
        return False

    async def _admit(
        self,
        upstream: Upstream,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> _Ticket | Refusal:
        charge = charge_for(upstream.settings, method, path, body)
        if charge is None:
            return _Ticket(None, None, None, {})
        credential = credential_of(headers)
        if credential is None:
            return refusals.no_credential()
        try:
            identity = await self.book.lookup(credential)
        except RatelordError as error:
            if self.settings.fail_open:
                log.warning("fail-open: forwarding without ratelord-d (%s)", error)
                return _Ticket(None, None, charge, {})
            return refusals.unavailable(str(error))
        del credential  # only its fingerprint was ever looked at
        if identity is None:
            return refusals.unknown_credential(upstream.settings.provider)
        fields = self._fields(identity.identity_id, upstream, charge, headers)
        leased = await leasing.spend(self.client._leases, fields, charge.costs)
        if leased is not None:
            return _Ticket(None, identity.identity_id, charge, fields, leased)
        try:
            outcome = await ask(
                self.client, fields, max_wait=self.settings.max_wait_seconds, sleep=self.sleep
            )
        except RatelordRequestError as error:
            return Refusal(400, "ratelord_bad_request", str(error))
        except RatelordError as error:  # answered, but not with a decision
            return refusals.unavailable(str(error))
        if isinstance(outcome, Refusal):
            return outcome
        return _Ticket(outcome, identity.identity_id, charge, fields)

    def _fields(
        self,
        identity_id: str,
        upstream: Upstream,
        charge: Charge,
        headers: list[tuple[bytes, bytes]],
    ) -> dict[str, Any]:
        own = {
            n[len(b"x-ratelord-") :]: v.decode("latin-1")
            for n, v in headers
            if n.startswith(b"x-ratelord-")
        }
        urgency: Urgency = own.get(b"urgency", "normal")  # type: ignore[assignment]
        fields: dict[str, Any] = {
            "agent_id": own.get(b"agent", self.settings.agent_id),
            "identity_id": identity_id,
            "urgency": urgency if urgency in _URGENCIES else "normal",
            "labels": {"via": "proxy", "upstream": upstream.name},
        }
        if b"workload" in own:
            fields["workload_id"] = own[b"workload"]
        fields["costs"] = charge.costs
        if charge.estimate is not None and charge.estimate.model is not None:
            fields["labels"]["model"] = charge.estimate.model[:200]
        return fields

    async def _forward(
        self, upstream: Upstream, request: httpx2.Request, ticket: _Ticket, send: Send, path: str
    ) -> None:
        try:
            response = await upstream.send(request)
        except httpx2.HTTPError as error:
            if ticket.leased is not None:
                ticket.leased.give_back()
            elif ticket.admitted is not None and ticket.identity_id is not None:
                self._background(release(self.client, ticket.admitted.decision, ticket.identity_id))
            reason = str(error) or type(error).__name__
            await _answer(send, upstream.kind, refusals.bad_gateway(upstream.name, reason))
            return
        tap = (
            tap_for(
                response.headers.get("content-type", ""),
                response.headers.get("content-encoding", ""),
            )
            if ticket.charge is not None and ticket.charge.estimate is not None
            else None
        )
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response_headers(response.headers.raw),
                }
            )
            async for chunk in response.aiter_raw():
                if tap is not None:
                    tap.feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (httpx2.HTTPError, OSError) as error:
            log.warning("stream from %s ended early: %s", upstream.name, error)
        finally:
            await response.aclose()
        if ticket.identity_id is None:
            return
        costs = _real_costs(ticket.charge, response.status_code, tap)
        if ticket.leased is not None:
            # The lease's batched reports carry what was spent; the headers go now and then.
            if costs is not None:
                ticket.leased.settle(costs)
            if self._headers_due(ticket, upstream.name, response.status_code):
                self._background(self._report(ticket, path, response, None))
        elif ticket.admitted is not None:
            self._background(self._report(ticket, path, response, costs))

    def _headers_due(self, ticket: _Ticket, upstream: str, status: int) -> bool:
        assert ticket.identity_id is not None
        estimate = ticket.charge.estimate if ticket.charge is not None else None
        key = (ticket.identity_id, upstream, estimate.model if estimate is not None else None)
        now = time.monotonic()
        if status != 429 and now - self._headers_at.get(key, -LEASED_HEADERS_EVERY) < (
            LEASED_HEADERS_EVERY
        ):
            return False
        self._headers_at[key] = now
        return True

    async def _report(
        self,
        ticket: _Ticket,
        path: str,
        response: httpx2.Response,
        costs: dict[str, float] | None,
    ) -> None:
        """The answer's rate-limit headers and, for an asked call, what it really cost."""
        assert ticket.identity_id is not None
        decision = ticket.admitted.decision if ticket.admitted is not None else None
        report: dict[str, Any] = {
            "agent_id": ticket.fields["agent_id"],
            "identity_id": ticket.identity_id,
            "workload_id": ticket.fields.get("workload_id", "sentinel:unknown"),
            "intent_id": None if decision is None or is_local(decision) else decision.intent_id,
            "headers": rate_limit_headers(response.headers.multi_items()),
            "path": path[:2000],
            "status_code": response.status_code,
        }
        estimate = ticket.charge.estimate if ticket.charge is not None else None
        if estimate is not None:
            report["model"] = estimate.model
        if costs is not None:
            report["costs"] = costs
        try:
            await self.client.report_usage(UsageReport(**report))
        except RatelordError as error:
            log.warning("could not report usage to ratelord-d: %s", error)

    def _background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)


class _Ticket:
    """What was decided for one request, carried to its report."""

    __slots__ = ("admitted", "charge", "fields", "identity_id", "leased")

    def __init__(
        self,
        admitted: Admitted | None,
        identity_id: str | None,
        charge: Charge | None,
        fields: dict[str, Any],
        leased: Leased | None = None,
    ) -> None:
        self.admitted = admitted
        self.identity_id = identity_id
        self.charge = charge
        self.fields = fields
        #: Spent from the proxy's leases instead of asked for (then ``admitted`` is None).
        self.leased = leased


def _real_costs(
    charge: Charge | None, status: int, tap: UsageTap | None
) -> dict[str, float] | None:
    """What an LLM call really cost, per resource, when its answer says; None otherwise."""
    estimate = charge.estimate if charge is not None else None
    if estimate is None:
        return None
    usage = tap.usage() if tap is not None else None
    if usage is not None:
        return llm.usage_costs(estimate, usage)
    if status >= 400 and status != 429:
        # A call the provider refused is not charged: give the tokens back.
        return dict.fromkeys(llm.usage_costs(estimate, llm.Usage()), 0.0)
    return None


def _length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Send, kind: Kind, refusal: Refusal) -> None:
    headers, body = refusal.render(kind)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
