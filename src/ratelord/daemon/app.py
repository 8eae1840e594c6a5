"""The daemon's ASGI application: lifespan, auth, errors, and the route table."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ratelord.asgi.http import (
    HTTPError,
    Request,
    Response,
    Route,
    Router,
    StreamingResponse,
    error_body,
    new_request_id,
    read_body,
    request_id_var,
)
from ratelord.daemon import routes, webapi
from ratelord.daemon.auth import Authenticator
from ratelord.daemon.guard import refuse_credentials
from ratelord.daemon.metrics import Metrics
from ratelord.daemon.runtime import Runtime
from ratelord.engine.core import Conflict, EngineError, Gone, UnknownEntity
from ratelord.service import Unavailable
from ratelord.store.writer import StoreClosed

if TYPE_CHECKING:
    from ratelord.daemon.cluster import Forwarder

log = logging.getLogger("ratelord.http")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: Endpoints anyone on the socket may call even when a bearer token is configured
#: (the web UI's static files too: the page asks for the token before calling the API).
PUBLIC = frozenset({"/v1/health", "/", "/ui"})
PUBLIC_PREFIX = "/ui/"


def engine_status(exc: EngineError) -> int:
    """The HTTP status of a command the engine refused."""
    if isinstance(exc, UnknownEntity):
        return 404
    if isinstance(exc, Gone):
        return 410
    if isinstance(exc, Conflict):
        return 409
    return 400


class DaemonApp:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.metrics = Metrics(runtime)
        self.router = Router()
        webapi.install(self.router, runtime)  # first: routes.install documents the table
        routes.install(self.router, runtime, self.metrics)
        auth = runtime.settings.auth
        self._auth = Authenticator.from_refs(
            auth.token_ref, [(t.name, t.token_ref, t.scopes) for t in auth.tokens]
        )
        self._forwarder: Forwarder | None = None
        if runtime.member is not None:
            # Here, not at the top: psycopg costs a single daemon a third of its start-up imports.
            from ratelord.daemon.cluster import Forwarder

            self._forwarder = Forwarder(runtime.member)
        self._max_body = runtime.settings.server.max_body_bytes
        self._boot: asyncio.Task[None] | None = None
        self._debug = log.isEnabledFor(logging.DEBUG)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # ------------------------------------------------------------------ lifespan

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # The store was opened before the server started; replay runs in the
                # background so /v1/health can say "initializing" meanwhile.
                self._boot = asyncio.get_running_loop().create_task(self.runtime.boot())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._boot is not None:
                    await self._boot
                await self.runtime.shutdown()
                if self._forwarder is not None:
                    await self._forwarder.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------------ requests

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        request_id = None
        declared: int | None = None
        for key, value in headers:
            if key == b"x-request-id":
                request_id = value.decode("latin-1")[:100]
            elif key == b"content-length":
                declared = int(value) if value.isdigit() else None
        request_id = request_id or new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        route: Route | None = None
        try:
            route, params = self.router.match(method, path)
            if self._auth is not None and path not in PUBLIC and not path.startswith(PUBLIC_PREFIX):
                self._auth.check(headers, method, path, route.scope)
            body = b""
            if method in ("POST", "PUT", "PATCH"):
                body = await read_body(receive, self._max_body, declared)
                if route.writes:
                    refuse_credentials(body)
            forwarder = self._forwarder
            response: Response | StreamingResponse
            if forwarder is not None and forwarder.applies_to(method) and forwarder.active:
                # A cluster follower: the leader decides every write.
                response = await forwarder.forward(
                    method, path, scope["query_string"], headers, body
                )
            else:
                request = Request(
                    method, path, scope["query_string"], headers, body, request_id, params
                )
                response = await route.handler(request)
        except HTTPError as exc:
            response = Response(
                error_body(exc.code, exc.message, request_id), exc.status, headers=exc.headers
            )
        except Unavailable as exc:
            response = Response(
                error_body("unavailable", exc.reason, request_id),
                503,
                headers=[(b"retry-after", str(exc.retry_after).encode())],
            )
        except EngineError as exc:
            response = Response(error_body(exc.code, exc.message, request_id), engine_status(exc))
        except StoreClosed as exc:
            response = Response(
                error_body("store_unavailable", str(exc), request_id),
                503,
                headers=[(b"retry-after", b"30")],
            )
        except ConnectionAbortedError:
            return
        except Exception:
            log.exception("unhandled error on %s %s", method, path)
            response = Response(
                error_body("internal", "internal error; see the daemon log", request_id), 500
            )
        finally:
            request_id_var.reset(token)
        if isinstance(response, StreamingResponse):
            await self._stream(response, request_id, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type),
                    (b"content-length", str(len(response.body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    *response.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
        if response.status >= 400:
            log.info(
                "%s %s -> %d",
                method,
                path,
                response.status,
                extra={"request_id": request_id, "status": response.status},
            )
        elif self._debug:
            log.debug(
                "%s %s -> %d",
                method,
                path,
                response.status,
                extra={"request_id": request_id, "status": response.status},
            )
        if route is not None and route.observe is not None:
            route.observe(time.perf_counter() - started)

    async def _stream(
        self, response: StreamingResponse, request_id: str, receive: Receive, send: Send
    ) -> None:
        """Send chunks until the iterator ends or the client goes away."""
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type),
                    (b"cache-control", b"no-cache"),
                    (b"x-request-id", request_id.encode()),
                    *response.headers,
                ],
            }
        )

        async def pump() -> None:
            async for chunk in response.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(disconnected())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await response.chunks.aclose()  # type: ignore[attr-defined]
