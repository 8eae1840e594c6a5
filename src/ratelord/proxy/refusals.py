"""Answers the proxy gives instead of the upstream's, in the upstream's own error shape.

A client library reads a proxy refusal exactly like one from its API: the
``openai`` SDK raises ``RateLimitError`` for a 429 with OpenAI's error body,
octokit and PyGithub wait out a 429's ``Retry-After``, and so on.  Every body
names ratelord and its reason, so a person reading a log knows who said no.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import msgspec

from ratelord.proxy.settings import Kind

_encode = msgspec.json.Encoder().encode
GITHUB_DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer made by the proxy: status, ``code`` (machine-readable) and message."""

    status: int
    code: str
    message: str
    retry_after: float | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def render(self, kind: Kind) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """Headers and body as the upstream of ``kind`` would have sent them."""
        headers = [
            (b"content-type", b"application/json"),
            (b"x-ratelord-refusal", self.code.encode()),
        ]
        if self.retry_after is not None:
            seconds = max(0.0, self.retry_after)
            headers.append((b"retry-after", str(max(1, math.ceil(seconds))).encode()))
            headers.append((b"retry-after-ms", str(round(seconds * 1000)).encode()))
        return headers + self.headers, _encode(_body(kind, self))


def _body(kind: Kind, refusal: Refusal) -> object:
    message = f"ratelord: {refusal.message}"
    if kind == "openai":
        error_type = "rate_limit_exceeded" if refusal.status == 429 else "ratelord_error"
        return {
            "error": {"message": message, "type": error_type, "param": None, "code": refusal.code}
        }
    if kind == "anthropic":
        error_type = {
            429: "rate_limit_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            413: "request_too_large",
        }.get(refusal.status, "api_error")
        return {"type": "error", "error": {"type": error_type, "message": message}}
    if kind == "github":
        return {"message": message, "documentation_url": GITHUB_DOCS, "status": str(refusal.status)}
    return {"error": {"code": refusal.code, "message": message}}


def rate_limited(reason: str, retry_after: float) -> Refusal:
    """ratelord said no (or to wait longer than the proxy may hold the request)."""
    return Refusal(429, "rate_limit_exceeded", reason, retry_after=retry_after)


def unavailable(reason: str) -> Refusal:
    """ratelord-d could not be asked; fail safe."""
    return Refusal(503, "ratelord_unavailable", reason, retry_after=5.0)


def no_credential() -> Refusal:
    return Refusal(
        401,
        "ratelord_no_credential",
        "the request carries no API credential (Authorization, x-api-key or api-key), so "
        "ratelord cannot tell whose budget it spends",
    )


def unknown_credential(provider: str) -> Refusal:
    return Refusal(
        403,
        "ratelord_unknown_credential",
        "this credential is not registered with ratelord-d; register it by reference: "
        f"ratelord identity add ID --provider {provider} --principal PRINCIPAL "
        "--secret-ref env:NAME (the daemon stores only its fingerprint)",
    )


def bad_gateway(upstream: str, error: str) -> Refusal:
    return Refusal(502, "ratelord_upstream_error", f"upstream {upstream} failed: {error}")


def proxy_auth_required() -> Refusal:
    return Refusal(
        407,
        "ratelord_proxy_auth",
        "this proxy needs its token: send 'Proxy-Authorization: Bearer TOKEN' "
        "(or 'x-ratelord-token: TOKEN')",
        headers=[(b"proxy-authenticate", b"Bearer")],
    )


def not_found(path: str, names: list[str]) -> Refusal:
    return Refusal(
        404,
        "ratelord_no_upstream",
        f"no upstream for {path}: the path starts with an upstream's name, one of "
        f"{', '.join('/' + n for n in sorted(names))}",
    )


def too_large(limit: int) -> Refusal:
    return Refusal(413, "ratelord_body_too_large", f"the body exceeds the proxy's {limit} bytes")
