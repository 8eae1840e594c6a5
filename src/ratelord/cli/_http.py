"""HTTP access to ratelord-d: base URL, bearer token, timeouts and error mapping.

Every command reaches the daemon through :class:`DaemonApi`; every failure leaves
this module as a :mod:`ratelord.cli._errors` exception, never as an httpx one.
Tests inject an ``httpx.MockTransport`` through :class:`Session` (``CliRunner.invoke(
app, args, obj=Session(transport=...))``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec
import typer

from ratelord.cli._errors import ApiError, CliError, DaemonUnreachable
from ratelord.client._base import DEFAULT_URL, Members
from ratelord.client._sse import SseMessage, parse_sse

DEFAULT_TIMEOUT = 10.0

T = TypeVar("T")


def cli_version() -> str:
    try:
        return version("ratelord")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def path_id(identifier: str) -> str:
    """An id as a path segment: ``:`` and ``/`` stay raw (pool ids), the rest is escaped."""
    return quote(identifier, safe=":/@")


def decode(data: Any, into: type[T]) -> T:
    """Check an answer against the wire schema (``ratelord.schema``)."""
    try:
        return msgspec.convert(data, into)
    except msgspec.ValidationError as exc:
        raise CliError(f"unexpected answer from ratelord-d: {exc}") from exc


class DaemonApi:
    """A small synchronous client of the daemon's HTTP API."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        #: the cluster's members (``url`` may list several, comma-separated)
        self.members = Members(url)
        headers = {"user-agent": f"ratelord-cli/{cli_version()}"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._timeout = timeout
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> DaemonApi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(self._send("GET", path, params=params))

    def post(self, path: str, body: Any = None) -> Any:
        return self._json(self._send("POST", path, body=body))

    def ndjson(self, path: str, body: Any = None, *, read_timeout: float) -> Iterator[Any]:
        """POST and yield each JSON line of a streamed answer (``/v1/admin/rebuild``)."""
        with self._stream("POST", path, body=body, read_timeout=read_timeout) as response:
            for line in response.iter_lines():
                if line.strip():
                    yield self._loads(line)

    def sse(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        last_event_id: str | None,
        read_timeout: float,
    ) -> Iterator[SseMessage]:
        """GET an event stream and yield its messages until the server closes it."""
        headers = {"accept": "text/event-stream"}
        if last_event_id is not None:
            headers["last-event-id"] = last_event_id
        with self._stream(
            "GET", path, params=params, headers=headers, read_timeout=read_timeout
        ) as response:
            yield from parse_sse(response.iter_lines())

    # ------------------------------------------------------------------ plumbing

    def _send(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> httpx.Response:
        for left in range(len(self.members.urls) - 1, -1, -1):
            try:
                with self._mapped_errors():
                    response = self._client.request(
                        method, self.url + path, params=_clean(params), json=body
                    )
            except DaemonUnreachable:
                if not left:
                    raise
                self.members.next()
                continue
            if response.status_code == 503 and left:  # a member without a leader: try another
                self.members.next()
                continue
            break
        if response.is_error:
            raise _api_error(response)
        return response

    @property
    def url(self) -> str:
        """The member requests go to now."""
        return self.members.current

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
    ) -> Iterator[httpx.Response]:
        timeout = httpx.Timeout(self._timeout, read=read_timeout)
        with (
            self._mapped_errors(),
            self._client.stream(
                method,
                self.url + path,
                params=_clean(params),
                json=body,
                headers=headers,
                timeout=timeout,
            ) as response,
        ):
            if response.is_error:
                response.read()
                raise _api_error(response)
            yield response

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TransportError as exc:
            raise DaemonUnreachable(self.url, _reason(exc, self._timeout)) from exc

    def _json(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        return self._loads(response.content)

    @staticmethod
    def _loads(raw: str | bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise CliError(f"unexpected answer from ratelord-d: not JSON ({exc})") from exc


@dataclass
class Session:
    """Connection settings shared by all commands of one invocation (``ctx.obj``).

    ``transport`` and ``sleep`` (the pause between reconnects) are seams for tests.
    """

    url: str = DEFAULT_URL
    token: str | None = None
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = field(default=time.sleep)


def api(ctx: typer.Context, *, timeout: float = DEFAULT_TIMEOUT) -> DaemonApi:
    """The daemon client of this invocation, closed when the command ends."""
    session = ctx.find_object(Session) or Session()
    client = DaemonApi(session.url, session.token, transport=session.transport, timeout=timeout)
    return ctx.with_resource(client)


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None}


def _api_error(response: httpx.Response) -> ApiError:
    try:
        detail = response.json()["error"]
        code, message = str(detail["code"]), str(detail["message"])
    except (ValueError, KeyError, TypeError):
        code = f"http_{response.status_code}"
        message = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    return ApiError(response.status_code, code, message)


def _reason(exc: httpx.TransportError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g}s"
    text = str(exc)
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in text.lower() else text or "connect failed"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "the URL must start with http:// or https://"
    return f"connection lost: {text}" if text else "connection lost"
