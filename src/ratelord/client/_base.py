"""What ``Client`` and ``AsyncClient`` share: everything but the I/O.

Building and validating requests, reading answers and errors, the retry
decision and the fail-safe/fail-open decision live here, so the two clients
only differ in ``await``.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx2
import msgspec

from ratelord.client._breaker import DEFAULT_BREAKER, Breaker, BreakerSettings
from ratelord.client._exceptions import (
    RatelordError,
    RatelordProtocolError,
    RatelordRequestError,
    RatelordTransportError,
    RatelordUnavailable,
)
from ratelord.client._retry import Backoff
from ratelord.schema import MAX_BATCH, Decision, ErrorBody, IntentBatch, IntentRequest, UsageReport

logger = logging.getLogger("ratelord.client")


def report_failed(error: RatelordError) -> None:
    """A usage report is best effort: the agent's call went through, the failure is logged."""
    logger.warning("could not report usage to ratelord-d: %s", error)


DEFAULT_URL = "http://127.0.0.1:8090"
#: Synthetic decisions (the daemon was not asked) carry intent ids with this prefix.
LOCAL_INTENT_PREFIX = "local:"

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)


def resolve_url(url: str | None) -> str:
    """The daemon URL: the argument, else ``RATELORD_URL``, else the default."""
    return resolve_urls(url)[0]


def resolve_urls(url: str | Sequence[str] | None) -> list[str]:
    """The cluster's members: a list, or one comma-separated string (``RATELORD_URL`` too)."""
    given = url or os.environ.get("RATELORD_URL") or DEFAULT_URL
    parts = given.split(",") if isinstance(given, str) else list(given)
    urls = [part.strip().rstrip("/") for part in parts if part.strip()]
    return urls or [DEFAULT_URL]


class Members:
    """A cluster's members and the one requests go to now (it stays until it fails)."""

    def __init__(self, url: str | Sequence[str] | None) -> None:
        self.urls = resolve_urls(url)
        self.current = self.urls[0]

    def next(self) -> str:
        """Move on to the next member (after an unreachable or unavailable one)."""
        self.current = self.urls[(self.urls.index(self.current) + 1) % len(self.urls)]
        logger.info("ratelord-d: trying the next cluster member %s", self.current)
        return self.current


def path_id(identifier: str) -> str:
    """An id as a path segment: ``:`` and ``/`` stay raw (pool ids), the rest is escaped."""
    return quote(identifier, safe=":/@")


def query(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters without the ones left out (``None``)."""
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None}


def unreachable_reason(exc: Exception, timeout: float) -> str:
    """Why a request got no answer, in a few words a person can act on."""
    if isinstance(exc, httpx2.TimeoutException):
        return f"no answer within {timeout:g} s"
    text = str(exc)
    if isinstance(exc, httpx2.ConnectError):
        return "connection refused" if "refused" in text.lower() else text or "connect failed"
    if isinstance(exc, httpx2.UnsupportedProtocol):
        return "the URL must start with http:// or https://"
    if isinstance(exc, httpx2.InvalidURL):
        return text or "invalid URL"
    return f"connection lost: {text}" if text else "connection lost"


class Attempts:
    """One call's way through the cluster's members and the daemon's retries, without I/O.

    ``Client._call`` and ``AsyncClient._call`` send a request, hand what came
    back (an answer, or the :class:`RatelordTransportError` of no answer) to
    :meth:`next`, and do what it says: read the answer it returns, or send again
    to :attr:`BaseClient.url` (which a failed member has moved on from) after the
    seconds it returns (``None``: at once, to the next member).
    """

    __slots__ = ("_attempt", "_client", "_probe", "_tried", "_unavailable")

    def __init__(self, client: BaseClient[Any, Any]) -> None:
        self._client = client
        self._attempt = 0  # retries the daemon asked for (503/429 with Retry-After)
        self._tried = 1  # members asked in this round
        self._unavailable: httpx2.Response | None = None  # a member's 503 in this round
        self._probe = client.breaker.before(client.url)

    def next(
        self, outcome: httpx2.Response | RatelordTransportError
    ) -> httpx2.Response | float | None:
        """The answer to read, or the seconds to wait before sending again."""
        client = self._client
        if isinstance(outcome, RatelordTransportError):
            if client._fail_over(self._tried):  # ask the next member now
                self._tried += 1
                return None
            if self._unavailable is None:  # no member answered at all
                client.breaker.failed(self._probe)
                raise outcome
            outcome = self._unavailable  # one did: wait as it said, then go round again
        elif outcome.status_code == 503 and client._fail_over(self._tried):
            self._tried, self._unavailable = self._tried + 1, outcome
            return None
        if self._probe or client.breaker.failures:
            client.breaker.succeeded()
            self._probe = False
        self._tried, self._unavailable = 1, None
        delay = client._retry_delay(outcome, self._attempt)
        if delay is None:
            return outcome
        self._attempt += 1
        return delay


def is_local(decision: Decision) -> bool:
    """True for a decision the SDK made itself because ratelord-d could not be asked."""
    return decision.intent_id.startswith(LOCAL_INTENT_PREFIX)


#: The daemon connection's transport: ``httpx2.BaseTransport`` or ``AsyncBaseTransport``.
TransportT = TypeVar("TransportT", httpx2.BaseTransport, httpx2.AsyncBaseTransport)
#: How a client waits: a function (``time.sleep``) or a coroutine function (``asyncio.sleep``).
SleepT = TypeVar("SleepT", Callable[[float], None], Callable[[float], Awaitable[None]])


class BaseClient(Generic[TransportT, SleepT]):
    """The options and the non-I/O half of both clients; each makes its own connection
    (:meth:`_connect`) and waits its own way (``_default_sleep``)."""

    _default_sleep: Any

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        *,
        timeout: float = 5.0,
        fail_open: bool = False,
        retries: int = 3,
        transport: TransportT | None = None,
        token: str | None = None,
        sleep: SleepT | None = None,
        breaker: BreakerSettings = DEFAULT_BREAKER,
        user_agent: str = "ratelord-python",
    ) -> None:
        #: every member of the cluster; requests go to ``url`` and move on when it fails
        self.members = Members(url)
        #: stops asking after repeated failures to reach any member (see ``_breaker``)
        self.breaker = Breaker(breaker)
        self.timeout = timeout
        self.fail_open = fail_open
        self.backoff = Backoff(retries=retries)
        self._headers = {"content-type": "application/json", "user-agent": user_agent}
        if token:
            self._headers["authorization"] = f"Bearer {token}"
        #: how the client, its guards and transports wait (a fake one in tests)
        self.sleep: SleepT = self._default_sleep if sleep is None else sleep
        self._connect(transport)

    def _connect(self, transport: TransportT | None) -> None:
        """Open the connection to the daemon (``self._http``) and what rides on it."""
        raise NotImplementedError

    def __repr__(self) -> str:  # never shows the token
        return f"{type(self).__name__}({self.url!r}, fail_open={self.fail_open})"

    # ------------------------------------------------------------------ requests

    @staticmethod
    def _build(model: type[S], value: S | None, fields: Mapping[str, Any]) -> S:
        """``value`` with ``fields`` applied, or a model validated from ``fields`` alone."""
        try:
            if value is None:
                return msgspec.convert(dict(fields), model)
            if fields:
                return msgspec.convert(msgspec.to_builtins(value) | dict(fields), model)
            return value
        except msgspec.ValidationError as exc:
            raise RatelordRequestError(str(exc), code="invalid_request") from exc

    def _intent(self, intent: IntentRequest | None, fields: Mapping[str, Any]) -> IntentRequest:
        return self._build(IntentRequest, intent, fields)

    @staticmethod
    def _batch(intents: list[IntentRequest]) -> IntentBatch:
        if not 1 <= len(intents) <= MAX_BATCH:
            raise RatelordRequestError(
                f"a batch holds 1 to {MAX_BATCH} intents, not {len(intents)}",
                code="invalid_request",
            )
        return IntentBatch(intents=intents)

    def _usage(self, report: UsageReport | None, fields: Mapping[str, Any]) -> UsageReport:
        return self._build(UsageReport, report, fields)

    @staticmethod
    def _check_path(decision: Decision) -> str:
        return f"/v1/intents/{quote(decision.intent_id, safe='')}/check"

    @staticmethod
    def _given_back(decision: Decision, identity_id: str) -> UsageReport:
        """An expired approval spent nothing: its reservation goes back."""
        return UsageReport(identity_id=identity_id, intent_id=decision.intent_id, cost=0.0)

    def _check_failed(self, decision: Decision, error: Exception) -> bool:
        """Unknown means risky: an approval that cannot be checked is not spent (unless
        ``fail_open``)."""
        logger.warning("could not check approval %s with ratelord-d: %s", decision.intent_id, error)
        return self.fail_open

    def _client_options(self) -> dict[str, Any]:
        # trust_env=False: a loopback daemon must not be sent through HTTP(S)_PROXY.
        return {
            "base_url": self.url,
            "timeout": self.timeout,
            "headers": self._headers,
            "trust_env": False,
        }

    @contextmanager
    def _converted_errors(self, timeout: float | None = None) -> Iterator[None]:
        """httpx2's errors as :class:`RatelordTransportError` (chained, never leaked)."""
        try:
            yield
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            reason = unreachable_reason(exc, self.timeout if timeout is None else timeout)
            raise RatelordTransportError(
                f"ratelord-d unreachable at {self.url}: {reason}", url=self.url, reason=reason
            ) from exc

    @property
    def url(self) -> str:
        """The member requests go to now."""
        return self.members.current

    def _fail_over(self, tried: int) -> bool:
        """Move on to the next member; False once all ``tried`` members were asked."""
        if tried >= len(self.members.urls):
            return False
        self.members.next()
        return True

    # ------------------------------------------------------------------ answers

    def _retry_delay(self, response: httpx2.Response, attempt: int) -> float | None:
        return self.backoff.delay(
            response.status_code, attempt, response.headers.get("retry-after"), now=time.time()
        )

    def _read(self, response: httpx2.Response, model: type[T]) -> T:
        """The answer as ``model``, or the error it carries as a ratelord exception.

        ``model`` may be ``Any``: the JSON as plain data (``None`` for an empty body).
        """
        self._raise_for_status(response)
        if model is Any and not response.content:
            return None  # type: ignore[return-value]
        return self._decode(response.content, model)

    def _decode(self, content: bytes | str, model: type[T]) -> T:
        try:
            return msgspec.json.decode(content, type=model)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise RatelordProtocolError(
                f"unexpected answer from ratelord-d at {self.url}: {exc}", url=self.url
            ) from exc

    def _raise_for_status(self, response: httpx2.Response) -> None:
        """An error answer as :class:`RatelordRequestError` (4xx) or `RatelordUnavailable`."""
        status = response.status_code
        if status < 300:
            return
        code, message, request_id = self._error_of(response)
        if status < 500 and status != 429:
            raise RatelordRequestError(
                message, code=code, status_code=status, request_id=request_id
            )
        raise RatelordUnavailable(
            f"ratelord-d unavailable at {self.url}: {status} {code}: {message}",
            status_code=status,
            code=code,
            detail=message,
            url=self.url,
        )

    @staticmethod
    def _error_of(response: httpx2.Response) -> tuple[str, str, str | None]:
        try:
            error = msgspec.json.decode(response.content, type=ErrorBody).error
        except (msgspec.DecodeError, msgspec.ValidationError):
            status = response.status_code
            return f"http_{status}", f"HTTP {status} {response.reason_phrase}".rstrip(), None
        return error.code, error.message, error.request_id

    def _stream_options(
        self,
        params: Mapping[str, Any] | None,
        body: Any,
        headers: Mapping[str, str] | None,
        read_timeout: float,
    ) -> dict[str, Any]:
        """The arguments of a streamed request: reads may idle up to ``read_timeout``."""
        return {
            "params": query(params),
            "content": None if body is None else msgspec.json.encode(body),
            "headers": headers,
            "timeout": httpx2.Timeout(self.timeout, read=read_timeout),
        }

    @staticmethod
    def _sse_headers(last_event_id: str | None) -> dict[str, str]:
        headers = {"accept": "text/event-stream"}
        if last_event_id is not None:
            headers["last-event-id"] = last_event_id
        return headers

    def _unreachable(self, error: RatelordTransportError) -> Decision:
        """The decision ``ask`` returns when ratelord-d could not be asked."""
        intent_id = f"{LOCAL_INTENT_PREFIX}{uuid.uuid4().hex}"
        if self.fail_open:
            logger.warning("fail-open: approving without ratelord-d (%s)", error)
            return Decision(intent_id=intent_id, decision="approve", reason=f"fail-open: {error}")
        return Decision(intent_id=intent_id, decision="deny_with_reason", reason=str(error))
