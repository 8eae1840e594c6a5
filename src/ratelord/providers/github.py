"""The GitHub provider: ``GET /rate_limit`` for each identity's token.

Every bucket under ``resources`` becomes one :class:`PoolObservation`
(unknown bucket names are kept).  A user token's principal is discovered
once with ``GET /user``; app installations must declare theirs.  Failures
are classified into :data:`ErrorKind` values; no message ever carries the
token (it is scrubbed from every text that leaves this module).

``base_url`` may be GitHub Enterprise Server's ``http(s)://host/api/v3``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, NoReturn

import httpx2
import msgspec

from ratelord.headers import parse_retry_after
from ratelord.providers import secrets
from ratelord.providers.base import (
    ErrorKind,
    PollResult,
    PoolObservation,
    ProviderFailure,
    ProviderIdentity,
)

__all__ = ["DEFAULT_WINDOWS", "GitHubProvider", "rate_limit_observations"]

log = logging.getLogger(__name__)

#: Documented window lengths; other buckets have theirs inferred from the reset.
DEFAULT_WINDOWS: Mapping[str, float] = {
    "core": 3600.0,
    "graphql": 3600.0,
    "search": 60.0,
    "code_search": 60.0,
}
#: GitHub's windows are a minute or an hour (a day as a safe upper step).
_WINDOW_STEPS = (60.0, 3600.0, 86400.0)
_POINT_RESOURCES = frozenset({"graphql"})
_API_VERSION = "2022-11-28"
#: GitHub's documented wait when a limit is hit without ``retry-after`` or a reset.
_DEFAULT_RETRY_AFTER = 60.0
#: A longer hint than this is implausible; waiting days would hide a bug.
_MAX_RETRY_AFTER = 3600.0
_MAX_MESSAGE = 200
_APP_INSTALLATION = "app_installation"


def _user_agent() -> str:
    try:
        return f"ratelord/{version('ratelord')}"
    except PackageNotFoundError:
        return "ratelord"


class _Bucket(msgspec.Struct):
    limit: float
    remaining: float
    reset: float
    used: float | None = None


class _User(msgspec.Struct):
    login: Annotated[str, msgspec.Meta(min_length=1)]


class GitHubProvider:
    """Satisfies :class:`ratelord.providers.base.Provider` for ``api.github.com`` and GHES."""

    provider_id = "github"

    def __init__(
        self,
        *,
        base_url: str = "https://api.github.com",
        timeout_seconds: float = 10.0,
        environ: Mapping[str, str] | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._environ = environ
        self._transport = transport
        self._client: httpx2.AsyncClient | None = None
        #: (identity_id, token fingerprint) -> discovered principal
        self._principals: dict[tuple[str, str], str] = {}

    async def poll(self, identity: ProviderIdentity, now: float) -> PollResult:
        token = self._token(identity)
        principal = await self._principal(identity, token, now)
        body = await self._get("/rate_limit", token, now)
        return PollResult(
            observed_at=now,
            observations=rate_limit_observations(body, now),
            principal=principal,
            raw_status=200,
        )

    def default_window_seconds(self, resource: str) -> float | None:
        return DEFAULT_WINDOWS.get(resource)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # ------------------------------------------------------------------ identity

    def _token(self, identity: ProviderIdentity) -> str:
        if identity.secret_ref is None:
            raise ProviderFailure(
                "config",
                f"identity {identity.identity_id} has no secret_ref; "
                "register it with e.g. secret_ref 'env:GITHUB_TOKEN'",
            )
        try:
            return secrets.resolve(identity.secret_ref, self._environ)
        except secrets.SecretError as exc:
            raise ProviderFailure("config", f"identity {identity.identity_id}: {exc}") from None

    async def _principal(self, identity: ProviderIdentity, token: str, now: float) -> str | None:
        """The principal to report: ``None`` when declared, else discovered once per token."""
        if identity.principal is not None:
            return None
        if identity.kind == _APP_INSTALLATION:
            raise ProviderFailure(
                "config",
                f"identity {identity.identity_id} is an app installation: declare its principal "
                "at registration (e.g. 'github:installation/<id>'); it cannot be discovered",
            )
        key = (identity.identity_id, secrets.fingerprint(token))
        if key not in self._principals:
            try:
                body = await self._get("/user", token, now)
            except ProviderFailure as failure:
                if failure.kind not in ("forbidden", "not_found"):
                    raise
                raise ProviderFailure(
                    failure.kind,
                    f"{failure.message}; this token cannot name its user: declare "
                    f"identity {identity.identity_id}'s principal at registration",
                    status_code=failure.status_code,
                ) from None
            try:
                login = msgspec.convert(body, _User).login
            except msgspec.ValidationError as exc:
                raise ProviderFailure(
                    "parse", f"GitHub /user: answer has no login ({exc})", status_code=200
                ) from None
            self._principals[key] = f"github:user/{login}"
        return self._principals[key]

    # ------------------------------------------------------------------ HTTP

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(
                base_url=self._base_url,
                timeout=self._timeout,
                transport=self._transport,
                follow_redirects=False,
                headers={
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": _API_VERSION,
                    "User-Agent": _user_agent(),
                },
            )
        return self._client

    async def _get(self, path: str, token: str, now: float) -> Any:
        """GET ``path`` and decode its JSON, or raise a classified :class:`ProviderFailure`."""
        client = self._http()
        request = client.build_request("GET", path, headers={"Authorization": f"Bearer {token}"})
        try:
            response = await client.send(request, stream=True)
        except httpx2.TimeoutException as exc:
            _fail("timeout", f"GitHub {path}: no answer within {self._timeout:g} s", exc, token)
        except httpx2.RequestError as exc:
            _fail("network", f"GitHub {path}: request failed", exc, token)
        try:
            content = await response.aread()
        except httpx2.TimeoutException as exc:
            _fail(
                "timeout",
                f"GitHub {path}: body not received in time",
                exc,
                token,
                status_code=response.status_code,
            )
        except httpx2.RequestError as exc:
            # Headers arrived but the body stopped short of its declared length (or its
            # content-encoding was broken): an answer we cannot read.
            _fail(
                "parse",
                f"GitHub {path}: truncated or undecodable body",
                exc,
                token,
                status_code=response.status_code,
            )
        finally:
            await response.aclose()
        if response.status_code != 200:
            raise _classify(path, response.status_code, response.headers, content, now, token)
        try:
            return msgspec.json.decode(content)
        except msgspec.DecodeError as exc:
            _fail("parse", f"GitHub {path}: answer is not valid JSON", exc, token, status_code=200)


def rate_limit_observations(body: Any, now: float) -> list[PoolObservation]:
    """One observation per bucket of a decoded ``GET /rate_limit`` answer received at ``now``.

    Unknown bucket names are kept; a malformed bucket is skipped with a warning; an answer
    with no readable bucket is a ``parse`` failure.
    """
    resources = body.get("resources") if isinstance(body, dict) else None
    if not isinstance(resources, dict):
        raise ProviderFailure(
            "parse", "GitHub /rate_limit answer has no 'resources' map", status_code=200
        )
    observations = []
    for name, raw in resources.items():
        try:
            bucket = msgspec.convert(raw, _Bucket)
        except msgspec.ValidationError as exc:
            log.warning("ignoring malformed GitHub rate-limit bucket %r: %s", name, exc)
            continue
        observations.append(_observation(name, bucket, now))
    if not observations:
        raise ProviderFailure(
            "parse", "GitHub /rate_limit answer has no readable bucket", status_code=200
        )
    return observations


def _observation(name: str, bucket: _Bucket, now: float) -> PoolObservation:
    return PoolObservation(
        resource=name,
        limit=bucket.limit,
        remaining=max(0.0, bucket.remaining),  # never limit - used: used can exceed limit
        used=bucket.used,
        reset_at=bucket.reset,
        window="fixed",
        window_seconds=DEFAULT_WINDOWS.get(name) or _infer_window(bucket.reset - now),
        unit="points" if name in _POINT_RESOURCES else "requests",
    )


def _infer_window(seconds_to_reset: float) -> float | None:
    """The smallest usual window that covers the time left before the reset."""
    if seconds_to_reset <= 0:
        return None
    return next((step for step in _WINDOW_STEPS if seconds_to_reset <= step), seconds_to_reset)


def _redact(text: str, token: str) -> str:
    return text.replace(token, "[redacted]") if token else text


def _fail(
    kind: ErrorKind,
    message: str,
    exc: Exception,
    token: str,
    *,
    status_code: int | None = None,
) -> NoReturn:
    """Raise a failure whose message names the cause without the token or its traceback."""
    detail = _redact(f"{type(exc).__name__}: {exc}", token)[:_MAX_MESSAGE]
    raise ProviderFailure(kind, f"{message} ({detail})", status_code=status_code) from None


def _classify(
    path: str,
    status: int,
    headers: httpx2.Headers,
    content: bytes,
    now: float,
    token: str,
) -> ProviderFailure:
    """Turn a non-200 answer into a failure, following GitHub's documented rules."""
    github_message = _redact(_message_of(content), token)
    message = f"GitHub {path} answered {status}" + (f": {github_message}" if github_message else "")
    retry_after = _retry_after(headers, now)
    remaining_zero = headers.get("x-ratelimit-remaining", "").strip() == "0"
    lowered = github_message.lower()
    limited_text = any(
        marker in lowered for marker in ("rate limit exceeded", "secondary rate limit", "abuse")
    )
    kind: ErrorKind
    if status == 401:
        kind = "auth"
    elif status == 429 or (status == 403 and (remaining_zero or limited_text or retry_after)):
        kind = "rate_limited"
        if retry_after is None and remaining_zero:
            retry_after = _until_reset(headers, now)
        if retry_after is None:
            retry_after = _DEFAULT_RETRY_AFTER
    elif status == 403:
        kind = "forbidden"
    elif status == 404:
        kind = "not_found"
        message += " (rate limiting may be disabled on this GitHub Enterprise Server)"
    elif status >= 500:
        kind = "server"
    else:
        kind = "parse"
        message = f"GitHub {path}: unexpected status {status}" + (
            f": {github_message}" if github_message else ""
        )
    return ProviderFailure(kind, message, retry_after=retry_after, status_code=status)


def _message_of(content: bytes) -> str:
    """GitHub's ``message`` field, shortened; empty when the body is not GitHub's JSON."""
    try:
        body = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return ""
    text = body.get("message") if isinstance(body, dict) else None
    return " ".join(text.split())[:_MAX_MESSAGE] if isinstance(text, str) else ""


def _retry_after(headers: httpx2.Headers, now: float) -> float | None:
    raw = headers.get("retry-after")
    if raw is None:
        return None
    return parse_retry_after(raw, now=now, date=headers.get("date"), cap=_MAX_RETRY_AFTER)


def _until_reset(headers: httpx2.Headers, now: float) -> float | None:
    try:
        reset = float(headers.get("x-ratelimit-reset", ""))
    except ValueError:
        return None
    return min(max(1.0, reset - now), _MAX_RETRY_AFTER)
