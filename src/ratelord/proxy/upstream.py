"""The proxy's side of an upstream API: a pooled keep-alive ``httpx2`` client and the
header rules of a reverse proxy.

Certificates are always verified (the system's trust store, plus the
upstream's ``ca_file`` if set).  Requests are forwarded byte for byte; only
hop-by-hop headers and the proxy's own (``Proxy-Authorization``,
``x-ratelord-*``) are dropped.  Answers stream back as they arrive.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import httpx2

from ratelord.proxy.settings import UpstreamSettings

#: RFC 9110 §7.6.1 hop-by-hop headers, plus what the proxy itself consumes or recomputes.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_NOT_FORWARDED = _HOP_BY_HOP | {b"host", b"content-length"}
OWN_HEADER_PREFIX = b"x-ratelord-"

#: Keep-alive connections per upstream (enough for a busy fleet on one machine).
MAX_CONNECTIONS = 256


class Upstream:
    """One configured API: where it is, how to reach it, what kind it is."""

    def __init__(self, name: str, settings: UpstreamSettings) -> None:
        self.name = name
        self.settings = settings
        self.kind = settings.kind
        self.base = settings.url.rstrip("/")
        self.prefix = f"/{name}"
        self.client = httpx2.AsyncClient(
            verify=_tls(settings.ca_file),
            timeout=httpx2.Timeout(settings.timeout_seconds, connect=10.0),
            limits=httpx2.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
            ),
            follow_redirects=False,
            # The proxy is the egress point: it does not chain to HTTP(S)_PROXY.
            trust_env=False,
        )

    def request(
        self,
        method: str,
        path: bytes,
        query: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> httpx2.Request:
        url = (
            self.base + path.decode("latin-1") + (("?" + query.decode("latin-1")) if query else "")
        )
        forwarded = [
            (name, value)
            for name, value in headers
            if name not in _NOT_FORWARDED and not name.startswith(OWN_HEADER_PREFIX)
        ]
        return self.client.build_request(method, url, headers=forwarded, content=body)

    async def aclose(self) -> None:
        await self.client.aclose()


def response_headers(raw: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """An upstream answer's headers for the client: lower-cased, hop-by-hop ones dropped."""
    kept = []
    for name, value in raw:
        lower = name.lower()
        if lower not in _HOP_BY_HOP:
            kept.append((lower, value))
    return kept


def _tls(ca_file: str | None) -> ssl.SSLContext | bool:
    if ca_file is None:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_file)
    return context
