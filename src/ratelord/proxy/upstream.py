"""The proxy's side of an upstream API: a pooled keep-alive ``httpx2`` transport
(:class:`~ratelord.proxy.transport.H1Transport`) and the header rules of a reverse proxy.

Certificates are always verified (the system's trust store, plus the
upstream's ``ca_file`` if set).  Requests are forwarded byte for byte; only
hop-by-hop headers and the proxy's own (``Proxy-Authorization``,
``x-ratelord-*``) are dropped, and nothing is added but ``Host`` and
``Content-Length`` (no client's default ``User-Agent`` or ``Accept-Encoding``,
no cookie jar shared between callers).  Answers stream back as they arrive.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import httpx2

from ratelord.proxy.settings import UpstreamSettings
from ratelord.proxy.transport import H1Transport

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
#: ``Expect: 100-continue`` is moot: the proxy sends the body it has already read.
_NOT_FORWARDED = _HOP_BY_HOP | {b"host", b"content-length", b"expect"}
OWN_HEADER_PREFIX = b"x-ratelord-"
#: Parsed URLs kept per upstream (an LLM API has a handful of paths; GitHub's vary more).
URL_CACHE = 1024
#: Seconds to open a connection to an upstream.
CONNECT_TIMEOUT = 10.0


class Upstream:
    """One configured API: where it is, how to reach it, what kind it is."""

    def __init__(self, name: str, settings: UpstreamSettings) -> None:
        self.name = name
        self.settings = settings
        self.kind = settings.kind
        self.base = settings.url.rstrip("/")
        self.prefix = f"/{name}"
        # The proxy is the egress point: it does not chain to HTTP(S)_PROXY (trust_env).
        #: Parsed URLs by path and query: parsing one costs more than the rest of a request.
        self._urls: dict[bytes, httpx2.URL] = {}
        self.transport: httpx2.AsyncBaseTransport = H1Transport(
            httpx2.create_ssl_context(verify=_tls(settings.ca_file), trust_env=False),
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=settings.timeout_seconds,
        )

    def request(
        self,
        method: str,
        path: bytes,
        query: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> httpx2.Request:
        target = path + b"?" + query if query else path
        url = self._urls.get(target)
        if url is None:
            url = httpx2.URL(self.base + target.decode("latin-1"))
            if len(self._urls) >= URL_CACHE:
                self._urls.clear()
            self._urls[target] = url
        forwarded = [
            (name, value)
            for name, value in headers
            if name not in _NOT_FORWARDED and not name.startswith(OWN_HEADER_PREFIX)
        ]
        return httpx2.Request(method, url, headers=forwarded, content=body)

    async def send(self, request: httpx2.Request) -> httpx2.Response:
        """Forward ``request``; the answer once its headers are in, its body still streaming."""
        return await self.transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self.transport.aclose()


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
