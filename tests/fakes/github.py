"""A local fake of GitHub's REST rate limits, for tests and the simulator.

It follows GitHub's documented shapes (see /work/shared/PROVIDERS.md):

- ``GET /rate_limit`` → ``{"resources": {name: {limit, used, remaining, reset}}, "rate": …}``
  (free, like the real one);
- ``GET /user`` → ``{"login": …}`` (costs 1 ``core``);
- any other path costs 1 from the bucket GitHub would charge (``/search/code`` →
  ``code_search``, ``/search/*`` → ``search``, ``/graphql`` → ``graphql``, else
  ``core``), answers ``{}`` with ``x-ratelimit-*`` headers, and 403 "API rate
  limit exceeded" once the bucket is empty.

Tokens map to users; every user has her own buckets (all of a user's tokens share
them, as on GitHub).  Windows are fixed and reset on the injected clock.  Tests
steer it through the handle: ``spend`` quota behind ratelord's back, queue
failures (``fail_next``, ``timeout_next``, ``truncate_next``), and read the
request log (``requests``), which records who a token authenticated as, never
the token itself.

    with FakeGitHub({"ghp_alice": "alice"}, prefix="/api/v3") as github:
        provider = GitHubProvider(base_url=github.url)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from ratelord.headers import bucket_for_path
from tests.fakes.server import LocalServer

__all__ = ["DEFAULT_BUCKETS", "Bucket", "FakeGitHub", "RecordedRequest"]

#: name -> (limit, window seconds); ``dependency_snapshots`` stands for buckets ratelord
#: does not know by name.
DEFAULT_BUCKETS: Mapping[str, tuple[int, int]] = {
    "core": (5000, 3600),
    "search": (30, 60),
    "graphql": (5000, 3600),
    "code_search": (10, 60),
    "dependency_snapshots": (100, 3600),
}

DOCS = "https://docs.github.com/rest"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


@dataclass
class Bucket:
    """One fixed-window budget of one user."""

    limit: int
    window_seconds: int
    used: int = 0
    reset: int = 0  # epoch seconds

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def roll(self, now: float) -> None:
        """Start a new window once the reset has passed."""
        if now >= self.reset:
            self.used = 0
            self.reset = int(now) + self.window_seconds

    def as_json(self) -> dict[str, int]:
        return {
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "reset": self.reset,
        }


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it; ``user`` is whom the token authenticated as."""

    method: str
    path: str  # without the GHES prefix and the query
    user: str | None
    headers: Mapping[str, str]  # lower-case names, without ``authorization``
    at: float


@dataclass
class _Injection:
    """What to do instead of (or before) the normal answer to one request."""

    status: int | None = None  # None: answer normally
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate: bool = False
    path: str | None = None  # only for this path; None: the next request, whatever it is


class FakeGitHub(LocalServer):
    """A GitHub rate-limit API on a free loopback port, served from a background thread."""

    def __init__(
        self,
        tokens: Mapping[str, str] | None = None,
        *,
        prefix: str = "",
        clock: Callable[[], float] = time.time,
        buckets: Mapping[str, tuple[int, int]] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__()
        self.prefix = prefix.rstrip("/")
        self.clock = clock
        self._tokens = dict(tokens or {})
        self._bucket_specs = dict(buckets)
        self._buckets: dict[str, dict[str, Bucket]] = {}
        self._injections: deque[_Injection] = deque()
        self._requests: list[RecordedRequest] = []
        #: 403 "API rate limit exceeded" answers sent (an empty bucket, not an injected failure)
        self.rate_limited = 0
        self._lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    @property
    def url(self) -> str:
        """The base URL to give the provider (with the GHES prefix, if any)."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    # ------------------------------------------------------------------ state

    def add_token(self, token: str, user: str) -> None:
        with self._lock:
            self._tokens[token] = user

    def spend(self, user: str, resource: str, n: int = 1) -> Bucket:
        """Use ``n`` of ``user``'s ``resource`` without ratelord knowing; returns the bucket."""
        with self._lock:
            bucket = self._bucket(user, resource)
            bucket.used += n
            return replace(bucket)

    def bucket(self, user: str, resource: str) -> Bucket:
        """A copy of ``user``'s ``resource`` bucket as it stands now."""
        with self._lock:
            return replace(self._bucket(user, resource))

    def _bucket(self, user: str, resource: str) -> Bucket:
        buckets = self._user_buckets(user)
        if resource not in buckets:
            limit, window = self._bucket_specs.get(resource, (5000, 3600))
            buckets[resource] = Bucket(limit, window)
        bucket = buckets[resource]
        bucket.roll(self.clock())
        return bucket

    def _user_buckets(self, user: str) -> dict[str, Bucket]:
        if user not in self._buckets:
            now = self.clock()
            self._buckets[user] = {
                name: Bucket(limit, window, reset=int(now) + window)
                for name, (limit, window) in self._bucket_specs.items()
            }
        return self._buckets[user]

    # ------------------------------------------------------------------ failures

    def fail_next(
        self,
        status: int | str,
        *,
        retry_after: float | None = None,
        body: str | bytes | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        path: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests (to ``path``, if given) with an error.

        ``status`` is an HTTP status (``500`` or ``"500"``) or one of ``"403-secondary"``,
        ``"429-secondary"``, ``"403-primary"``, ``"429-primary"``.  A bare 429 is a primary
        limit; a bare 403 is a permission error.  ``body`` replaces GitHub's usual JSON.
        """
        code, flavour = _parse_status(status)
        message, extra = _failure_shape(code, flavour)
        if retry_after is not None:
            extra["retry-after"] = f"{retry_after:g}"
        extra.update(headers or {})
        if body is None:
            raw = _json({"message": message, "documentation_url": DOCS, "status": str(code)})
        elif isinstance(body, Mapping):
            raw = _json(body)
        else:
            raw = body.encode() if isinstance(body, str) else body
        for _ in range(times):
            self._inject(_Injection(status=code, body=raw, headers=dict(extra), path=path))

    def timeout_next(self, seconds: float, *, path: str | None = None, times: int = 1) -> None:
        """Hold the next answers back for ``seconds`` (longer than the client's timeout)."""
        for _ in range(times):
            self._inject(_Injection(delay=seconds, path=path))

    def truncate_next(self, *, path: str | None = None, times: int = 1) -> None:
        """Send only half of the next bodies, then close the connection."""
        for _ in range(times):
            self._inject(_Injection(truncate=True, path=path))

    def _inject(self, injection: _Injection) -> None:
        with self._lock:
            self._injections.append(injection)

    @property
    def pending_failures(self) -> int:
        with self._lock:
            return len(self._injections)

    def _take_injection(self, path: str) -> _Injection | None:
        with self._lock:
            for injection in self._injections:
                if injection.path in (None, path):
                    self._injections.remove(injection)
                    return injection
        return None

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------------ serving

    def _respond(self, method: str, target: str, headers: Mapping[str, str]) -> _Answer:
        """Decide the answer to one request (the handler only writes it out)."""
        full_path = urlsplit(target).path
        if not full_path.startswith(self.prefix + "/"):
            return _Answer.json(404, {"message": "Not Found", "documentation_url": DOCS})
        path = full_path[len(self.prefix) :]
        user = self._user_of(headers.get("authorization", ""))
        safe_headers = {k: v for k, v in headers.items() if k != "authorization"}
        with self._lock:
            self._requests.append(RecordedRequest(method, path, user, safe_headers, self.clock()))
        injection = self._take_injection(path) or _Injection()
        if injection.delay and self._stopping.wait(injection.delay):
            return _Answer(503, b"", {})
        if injection.status is not None:
            return self._with_limit_headers(
                _Answer(injection.status, injection.body, injection.headers), user
            )
        answer = self._route(method, path, user)
        return replace(answer, truncate=injection.truncate)

    def _route(self, method: str, path: str, user: str | None) -> _Answer:
        if user is None:
            return _Answer.json(401, {"message": "Bad credentials", "documentation_url": DOCS})
        if method == "GET" and path == "/rate_limit":
            with self._lock:
                resources = {
                    name: self._bucket(user, name).as_json() for name in self._user_buckets(user)
                }
            return _Answer.json(200, {"resources": resources, "rate": resources["core"]})
        resource = bucket_for_path(path)
        with self._lock:
            bucket = self._bucket(user, resource)
            if bucket.remaining == 0:
                exhausted = True
            else:
                exhausted = False
                bucket.used += 1
            headers = _limit_headers(resource, bucket)
        if exhausted:
            with self._lock:
                self.rate_limited += 1
            message = f"API rate limit exceeded for user {user}."
            return _Answer.json(403, {"message": message, "documentation_url": DOCS}, headers)
        body = {"login": user, "id": abs(hash(user)) % 10**8, "type": "User"}
        return _Answer.json(200, body if path == "/user" else {}, headers)

    def _with_limit_headers(self, answer: _Answer, user: str | None) -> _Answer:
        """Fill in a primary-limit failure's reset from the user's ``core`` bucket."""
        if answer.headers.get("x-ratelimit-remaining") != "0" or user is None:
            return answer
        with self._lock:
            bucket = self._bucket(user, "core")
            headers = {**_limit_headers("core", bucket), **answer.headers}
            headers["x-ratelimit-reset"] = str(bucket.reset)
        return replace(answer, headers=headers)

    def _user_of(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        with self._lock:
            return self._tokens.get(token.strip())


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]
    truncate: bool = False

    @classmethod
    def json(
        cls, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> _Answer:
        return cls(status, _json(body), {"content-type": "application/json", **(headers or {})})


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _limit_headers(resource: str, bucket: Bucket) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(bucket.limit),
        "x-ratelimit-remaining": str(bucket.remaining),
        "x-ratelimit-used": str(bucket.used),
        "x-ratelimit-reset": str(bucket.reset),
        "x-ratelimit-resource": resource,
    }


def _parse_status(status: int | str) -> tuple[int, str]:
    code, _, flavour = str(status).partition("-")
    if not code.isdigit() or flavour not in ("", "primary", "secondary"):
        raise ValueError(f"unknown failure {status!r}: use e.g. 500, 403-secondary or 429-primary")
    if code == "429" and not flavour:
        flavour = "primary"
    return int(code), flavour


def _failure_shape(code: int, flavour: str) -> tuple[str, dict[str, str]]:
    """GitHub's usual message and headers for a failure."""
    if flavour == "primary":
        return "API rate limit exceeded for user ID 1.", {"x-ratelimit-remaining": "0"}
    if flavour == "secondary":
        return SECONDARY_MESSAGE, {}
    if code == 401:
        return "Bad credentials", {}
    if code == 403:
        return "Resource not accessible by personal access token", {}
    if code == 404:
        return "Not Found", {}
    try:
        return HTTPStatus(code).phrase, {}
    except ValueError:
        return "Error", {}


def _handler_for(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like api.github.com

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            self._serve()

        def _serve(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = fake._respond(self.command, self.path, headers)
            try:
                self._write(answer)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (timeout injection)

        def _write(self, answer: _Answer) -> None:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            if answer.truncate:
                self.wfile.write(answer.body[: len(answer.body) // 2])
                self.close_connection = True
            else:
                self.wfile.write(answer.body)
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read the request log instead."""

    return Handler
