"""A deliberately small ASGI layer for the daemon's hot path.

Measured on a 2-core machine, FastAPI + pydantic tops out around a fifth of
what raw ASGI + msgspec does for ``POST /v1/intent``; the daemon sits on every
agent's hot path, so it speaks ASGI directly: a route table, a request object
with the body already read (bounded), msgspec in and out, and one error shape.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl

import msgspec

from ratelord.schema import ErrorBody, ErrorDetail

log = logging.getLogger("ratelord.http")
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_encode = msgspec.json.Encoder().encode
T = TypeVar("T")
_ids = itertools.count(1)
_ID_PREFIX = os.urandom(3).hex()
JSON = b"application/json"
#: One typed decoder per body type, made on first use.
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


class HTTPError(Exception):
    """An answer other than success, with the error shape of SPEC §8."""

    def __init__(
        self, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    request_id: str
    params: dict[str, str] = field(default_factory=dict)
    _query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            # ``?x=`` is an empty x, not no x: refused where the schema wants one
            self._query = dict(parse_qsl(self.query_string.decode("latin-1"), True))
        return self._query

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    @overload
    def decode(self, kind: type[T]) -> T: ...
    @overload
    def decode(self, kind: object) -> Any: ...

    def decode(self, kind: Any) -> Any:
        """The body as ``kind`` (``Any`` for plain JSON); a precise 400 for anything malformed."""
        decoder = _decoders.get(kind)
        if decoder is None:
            decoder = _decoders[kind] = msgspec.json.Decoder(kind)
        try:
            return decoder.decode(self.body)
        except msgspec.ValidationError as exc:
            if "got `float`" in str(exc):  # JSON says 3.0 is the integer 3: so does the schema
                try:
                    return msgspec.convert(_integral(msgspec.json.decode(self.body)), kind)
                except msgspec.ValidationError as again:
                    exc = again
            raise HTTPError(400, "invalid_request", str(exc)) from None
        except msgspec.DecodeError as exc:
            message = (
                f"the body is not valid JSON: {exc}"
                if self.body
                else "the request needs a JSON body"
            )
            raise HTTPError(400, "malformed_json", message) from None


def _integral(value: Any) -> Any:
    """``value`` with every float that has no fractional part made an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


@dataclass(slots=True)
class Response:
    body: bytes
    status: int = 200
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class StreamingResponse:
    chunks: AsyncIterator[bytes]
    content_type: bytes
    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(_encode(value), status)


def error_body(code: str, message: str, request_id: str | None) -> bytes:
    return _encode(ErrorBody(error=ErrorDetail(code=code, message=message, request_id=request_id)))


Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    request: type | None = None
    response: type | None = None
    status: int = 200
    query: tuple[str, ...] = ()
    required_query: tuple[str, ...] = ()
    #: JSON schemas of path and query parameters (plain strings when not named here)
    schemas: dict[str, dict[str, Any]] | None = None
    writes: bool = False
    #: the token scope a caller needs; None: ``read`` for GET/HEAD, ``admin`` for other methods
    scope: str | None = None
    #: called with the seconds each request took (a latency histogram)
    observe: Callable[[float], None] | None = None
    pattern: re.Pattern[str] | None = None


class Router:
    """Exact paths in a dict; parametrised paths (``{name}``, ``{name:path}``) by regex."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._exact: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Route]]] = []

    def add(self, method: str, path: str, handler: Handler, summary: str, **meta: Any) -> None:
        """Register ``method path``; a second registration of the same pair is a bug, refused."""
        if any(r.method == method and r.path == path for r in self.routes):
            raise ValueError(f"{method} {path} is registered twice")
        if "{" in path:
            regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", path)
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
            pattern = re.compile(f"^{regex}$")
            route = Route(method, path, handler, summary, pattern=pattern, **meta)
            for existing, methods in self._patterns:
                if existing.pattern == pattern.pattern:
                    methods[method] = route
                    break
            else:
                self._patterns.append((pattern, {method: route}))
        else:
            route = Route(method, path, handler, summary, **meta)
            self._exact.setdefault(path, {})[method] = route
        self.routes.append(route)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        methods = self._exact.get(path)
        params: dict[str, str] = {}
        if methods is None:
            for pattern, candidates in self._patterns:
                found = pattern.match(path)
                if found:
                    methods, params = candidates, found.groupdict()
                    break
        if methods is None:
            raise HTTPError(404, "not_found", f"no such endpoint: {path} (see /openapi.json)")
        route = methods.get(method) or (methods.get("GET") if method == "HEAD" else None)
        if route is None:
            allowed = ", ".join(sorted(methods))
            raise HTTPError(
                405,
                "method_not_allowed",
                f"{method} is not allowed on {path}; use {allowed}",
                [(b"allow", allowed.encode())],
            )
        return route, params


def new_request_id() -> str:
    return f"req_{_ID_PREFIX}{next(_ids):x}"


async def read_body(
    receive: Callable[[], Awaitable[dict[str, Any]]], limit: int, declared: int | None
) -> bytes:
    if declared is not None and declared > limit:
        raise HTTPError(
            413, "body_too_large", f"the body is {declared} bytes; the limit is {limit}"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, "body_too_large", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]
