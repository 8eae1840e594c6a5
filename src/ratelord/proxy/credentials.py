"""Who is calling: the credential a request carries, known only by its fingerprint.

The proxy never keeps a raw credential: it hashes the one a request carries
(:func:`ratelord.providers.secrets.fingerprint`, the same hash the daemon
stores as an identity's ``token_fingerprint`` when it is registered with a
``secret_ref``) and looks the hash up in the daemon's registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from ratelord.providers.secrets import fingerprint
from ratelord.schema import Identity

log = logging.getLogger("ratelord.proxy")

#: Headers that carry an API credential, most specific first.
CREDENTIAL_HEADERS = (b"authorization", b"x-api-key", b"api-key")
#: How often an unknown fingerprint may send the proxy back to the registry.
REFRESH_ON_MISS_SECONDS = 2.0
#: How often the registry is read anyway (revocations, rotations).
REFRESH_EVERY_SECONDS = 30.0


def credential_of(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The credential in ``Authorization`` (``Bearer``/``token`` scheme), ``x-api-key`` or
    ``api-key``; None when the request carries none."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in CREDENTIAL_HEADERS:
            found.setdefault(name, value)
    for name in CREDENTIAL_HEADERS:
        raw = found.get(name)
        if not raw:
            continue
        text = raw.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, rest = text.partition(" ")
            if scheme.lower() not in ("bearer", "token") or not rest.strip():
                continue
            text = rest.strip()
        if text:
            return text
    return None


class IdentityBook:
    """Fingerprint → identity id, read from ratelord-d's registry and kept fresh.

    ``fetch`` returns the registered identities; it is called at most every
    :data:`REFRESH_ON_MISS_SECONDS` when an unknown fingerprint shows up (a
    just-registered identity works within seconds) and every
    :data:`REFRESH_EVERY_SECONDS` regardless.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[Identity]]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._by_fingerprint: dict[str, Identity] = {}
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    async def lookup(self, credential: str) -> Identity | None:
        """The registered identity whose secret is ``credential``, or None."""
        key = fingerprint(credential)
        now = self._clock()
        identity = self._by_fingerprint.get(key)
        stale = now - self._fetched_at > REFRESH_EVERY_SECONDS
        if (identity is None and now - self._fetched_at > REFRESH_ON_MISS_SECONDS) or stale:
            await self.refresh()
            identity = self._by_fingerprint.get(key)
        return identity

    async def refresh(self) -> None:
        async with self._lock:
            if self._clock() - self._fetched_at <= REFRESH_ON_MISS_SECONDS / 4:
                return  # another request refreshed it just now
            identities = await self._fetch()
            self._fetched_at = self._clock()
        book: dict[str, Identity] = {}
        for identity in identities:
            if identity.token_fingerprint is None:
                continue
            current = book.get(identity.token_fingerprint)
            # Two registrations of one secret: prefer the active one.
            if current is None or (current.status != "active" and identity.status == "active"):
                book[identity.token_fingerprint] = identity
        self._by_fingerprint = book
        log.debug("identity book: %d fingerprints", len(book))
