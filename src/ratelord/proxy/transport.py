"""A lean HTTP/1.1 keep-alive transport for ``httpx2``: asyncio protocols and httptools.

The proxy forwards every call it governs, so its client's cost is added to each
one.  httpx2's default transport (httpcore2 on anyio with the pure-Python h11
parser) spends about ten times the CPU of this one per request (measured
≈ 1.5 ms against ≈ 0.14 ms on the project's machine), which alone kept the
proxy from its latency and throughput targets.  This transport keeps the
``httpx2.AsyncClient`` API and does only what a reverse proxy needs:

* one request at a time per connection, idle connections kept per origin
  (at most :data:`MAX_IDLE`); a connection the server closed while idle is
  never reused, and a request that finds a reused connection dead before any
  byte of the answer is sent once more on a fresh one (the server never saw it);
* TLS through the given verifying ``ssl.SSLContext``;
* the answer's body streamed as it arrives (chunked encoding decoded, content
  encoding untouched), the server paused while the reader lags
  (:data:`HIGH_WATER` bytes buffered);
* connect and read timeouts.

It is used for the proxy's upstreams only; ``ratelord.client`` keeps its own.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import cast

import httptools
import httpx2

#: Idle keep-alive connections kept per origin.
MAX_IDLE = 256
#: Buffered answer bytes above which the server is paused until the reader catches up.
HIGH_WATER = 1 << 20

_Origin = tuple[bytes, bytes, int]
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})


class H1Transport(httpx2.AsyncBaseTransport):
    def __init__(
        self, ssl_context: ssl.SSLContext, *, connect_timeout: float, read_timeout: float
    ) -> None:
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: dict[_Origin, deque[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))
        head = _head(request)
        body = await request.aread()
        connection = self._reuse(origin)
        reused = connection is not None
        while True:
            if connection is None:
                connection = await self._connect(origin, request)
            try:
                return await connection.exchange(request, head, body)
            except _Stale:
                if not reused:
                    raise httpx2.RemoteProtocolError(
                        "the server closed the connection without answering", request=request
                    ) from None
                connection, reused = None, False  # once more, on a fresh connection

    def _reuse(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable:
                return connection
            connection.close()
        return None

    def _release(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.origin, deque())
        if self._closed or not connection.usable or len(idle) >= MAX_IDLE:
            connection.close()
        else:
            idle.append(connection)

    async def _connect(self, origin: _Origin, request: httpx2.Request) -> _Connection:
        scheme, host, port = origin
        name = host.decode("ascii")
        loop = asyncio.get_running_loop()
        tls = scheme == b"https"
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self, origin, self._read_timeout),
                    name,
                    port,
                    ssl=self._ssl if tls else None,
                    server_hostname=name if tls else None,
                ),
                self._connect_timeout,
            )
        except TimeoutError:
            raise httpx2.ConnectTimeout(
                f"connecting to {name}:{port} timed out", request=request
            ) from None
        except (OSError, ssl.SSLError) as error:
            raise httpx2.ConnectError(str(error) or type(error).__name__, request=request) from None
        return connection

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()


class _Stale(Exception):
    """A reused connection died before the answer's first byte."""


class _Connection(asyncio.Protocol):
    """One upstream connection: httptools parses what arrives, the caller reads it."""

    def __init__(self, pool: H1Transport, origin: _Origin, read_timeout: float) -> None:
        self.pool = pool
        self.origin = origin
        self.read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        # The answer being read.
        self.received = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.complete = False
        self.head_only = False
        #: The answer says where its body ends (length or chunks), not the connection's end.
        self.framed = False
        self.keep_alive = False
        #: A request is under way (bytes from the server are expected).
        self.busy = False

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # an idle connection that talks (a 408 before closing): drop it
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.error = httpx2.RemoteProtocolError(f"invalid answer from upstream: {error}")
            self.close()
        self._wake()

    def eof_received(self) -> bool:
        self._ended()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()

    def _ended(self) -> None:
        if self.headers_done and not self.framed:
            self.complete = True  # a body that runs to the connection's end has ended
        self.lost = True
        self._wake()

    # ------------------------------------------------------------ httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # informational (103 Early Hints...): not the answer
            self.headers = []
            return
        self.status = status
        self.headers_done = True
        self.framed = any(n.lower() in _FRAMING for n, _ in self.headers) or status in (204, 304)
        if self.head_only:
            self.complete = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()

    # ------------------------------------------------------------ the caller's side

    @property
    def usable(self) -> bool:
        return not self.lost and self.error is None and self.transport is not None

    async def exchange(self, request: httpx2.Request, head: bytes, body: bytes) -> httpx2.Response:
        """Send the request; the answer once its headers are in, its body streaming."""
        assert self.transport is not None
        self.received = self.headers_done = self.complete = self.keep_alive = False
        self.busy = True
        self.status, self.headers, self.buffered = 0, [], 0
        self.head_only = request.method == "HEAD"
        if len(body) < 65536:
            self.transport.write(head + body)  # one segment for the usual small call
        else:
            self.transport.write(head)
            self.transport.write(body)
        try:
            while not self.headers_done:
                if self.error is not None:
                    raise self.error
                if self.lost:
                    if not self.received:
                        raise _Stale
                    raise httpx2.RemoteProtocolError(
                        "the upstream closed the connection before its answer's headers",
                        request=request,
                    )
                await self._wait(request)
        except BaseException:  # cancelled or failed: the connection's state is unknown
            self.close()
            raise
        return httpx2.Response(
            self.status,
            headers=self.headers,
            stream=_Body(self, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def chunks_of(self, request: httpx2.Request) -> AsyncIterator[bytes]:
        while True:
            while self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                yield chunk
            if self.paused and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
            if self.complete:
                return
            if self.error is not None:
                raise self.error
            if self.lost:
                raise httpx2.RemoteProtocolError(
                    "the upstream closed the connection in the middle of its answer",
                    request=request,
                )
            await self._wait(request)

    def done(self) -> None:
        """The caller is finished with the answer: keep the connection if it can serve again."""
        self.busy = False
        if self.keep_alive and not self.head_only and not self.chunks:
            self.pool._release(self)
        else:
            self.close()

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    async def _wait(self, request: httpx2.Request) -> None:
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        timer = loop.call_later(self.read_timeout, self._time_out)
        try:
            await self.waiter
        except TimeoutError:
            self.close()
            raise httpx2.ReadTimeout(
                f"the upstream sent nothing for {self.read_timeout:g} s", request=request
            ) from None
        finally:
            timer.cancel()
            self.waiter = None

    def _time_out(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(TimeoutError())

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class _Body(httpx2.AsyncByteStream):
    def __init__(self, connection: _Connection, request: httpx2.Request) -> None:
        self._connection = connection
        self._request = request
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._connection.chunks_of(self._request):
            yield chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._connection.done()


def _head(request: httpx2.Request) -> bytes:
    target = request.url.raw_path or b"/"
    lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)
