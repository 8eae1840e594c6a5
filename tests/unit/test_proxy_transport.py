"""The proxy's HTTP/1.1 transport against a scripted server on a real socket."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2
import pytest

from ratelord.proxy.transport import H1Transport

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """Answers each connection with ``script``; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.heads: list[bytes] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def head(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        return head


Serve = Callable[[Script], Awaitable[tuple[Server, str]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> tuple[Server, str]:
        server = Server(script)
        listening = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        servers.append(listening)
        port = listening.sockets[0].getsockname()[1]
        return server, f"http://127.0.0.1:{port}"

    yield start
    for listening in servers:
        listening.close()


def transport(read_timeout: float = 5.0) -> H1Transport:
    return H1Transport(ssl.create_default_context(), connect_timeout=5.0, read_timeout=read_timeout)


async def call(
    t: H1Transport, url: str, method: str = "POST", body: bytes = b"{}"
) -> tuple[int, list[bytes]]:
    request = httpx2.Request(method, url, content=body, headers={"x-test": "1"})
    response = await t.handle_async_request(request)
    chunks = [chunk async for chunk in response.aiter_raw()]
    await response.aclose()
    return response.status_code, chunks


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def test_connections_are_kept_alive_and_requests_go_byte_for_byte(serve: Serve) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.head(reader)
            writer.write(OK)

    server, url = await serve(script)
    t = transport()
    for _ in range(3):
        assert await call(t, f"{url}/v1/x?q=1") == (200, [b"ok"])
    assert server.connections == 1
    assert server.heads[0].startswith(b"POST /v1/x?q=1 HTTP/1.1\r\n")
    assert b"x-test: 1\r\n" in server.heads[0] and b"Content-Length: 2\r\n" in server.heads[0]
    await t.aclose()


async def test_a_chunked_answer_streams_as_it_arrives(serve: Serve) -> None:
    release = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await release.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")

    server, url = await serve(script)
    t = transport()
    response = await t.handle_async_request(httpx2.Request("GET", url))
    chunks = response.aiter_raw()
    assert await chunks.__anext__() == b"first"  # before the rest was even sent
    release.set()
    assert [chunk async for chunk in chunks] == [b"second"]
    await response.aclose()
    await t.aclose()


async def test_a_body_that_runs_to_the_connections_end_is_read_whole(serve: Serve) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
        await writer.drain()

    server, url = await serve(script)
    t = transport()
    assert await call(t, url) == (200, [b"all of it"])
    assert await call(t, url) == (200, [b"all of it"])  # not reused: a new connection
    assert server.connections == 2
    await t.aclose()


async def test_a_connection_closed_while_idle_is_not_reused(serve: Serve) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(OK)
        await writer.drain()  # then close: the server's idle timeout

    server, url = await serve(script)
    t = transport()
    assert await call(t, url) == (200, [b"ok"])
    await asyncio.sleep(0.05)
    assert await call(t, url) == (200, [b"ok"])
    assert server.connections == 2
    await t.aclose()


async def test_a_connection_that_talks_while_idle_is_not_reused(serve: Serve) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(OK)
        await asyncio.sleep(0.02)
        writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
        await server.head(reader)
        writer.write(OK)

    server, url = await serve(script)
    t = transport()
    assert await call(t, url) == (200, [b"ok"])
    await asyncio.sleep(0.1)
    assert await call(t, url) == (200, [b"ok"])
    assert server.connections == 2
    await t.aclose()


async def test_informational_answers_are_skipped_and_head_has_no_body(serve: Serve) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await server.head(reader)
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + OK)

    server, url = await serve(script)
    t = transport()
    assert await call(t, url) == (200, [b"ok"])
    assert await call(t, url, method="HEAD", body=b"") == (200, [])
    await t.aclose()


async def test_silence_is_a_read_timeout_and_no_server_a_connect_error(serve: Serve) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        await asyncio.sleep(5)

    server, url = await serve(script)
    t = transport(read_timeout=0.2)
    with pytest.raises(httpx2.ReadTimeout):
        await call(t, url)
    with pytest.raises(httpx2.ConnectError):
        await call(t, "http://127.0.0.1:1/")
    await t.aclose()


async def test_garbage_is_a_protocol_error(serve: Serve) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.head(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    server, url = await serve(script)
    t = transport()
    with pytest.raises(httpx2.RemoteProtocolError):
        await call(t, url)
    await t.aclose()
