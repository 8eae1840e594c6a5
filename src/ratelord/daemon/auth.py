"""Bearer tokens per client, each with scopes: ``read``, ``ask`` and ``admin``.

* ``read``: every ``GET`` (pools, forecasts, events, the SSE stream, metrics).
* ``ask``: what an agent does — intents (one or a batch), checking an approval,
  reporting usage, taking, reporting and releasing leases.  Each route declares it
  (``Route.scope``).
* ``admin``: every other write (identities, policy reload, snapshots, mock controls).

Tokens come from references (``env:NAME`` / ``file:PATH``), never from the
config file itself; only their SHA-256 digests stay in memory, compared in
constant time, and no token ever reaches the log (a refused request is logged
with the client's name at most).  ``auth.token_ref`` alone is one client with
every scope, as before.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from ratelord.asgi.http import HTTPError
from ratelord.providers.secrets import resolve

SCOPES = ("read", "ask", "admin")


def required_scope(method: str, declared: str | None) -> str:
    """The route's own scope, else ``read`` for reads and ``admin`` for every other write."""
    if declared is not None:
        return declared
    return "read" if method in ("GET", "HEAD") else "admin"


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    scopes: frozenset[str]


class Authenticator:
    def __init__(self, clients: Sequence[tuple[str, str, Sequence[str]]]) -> None:
        """``clients``: (name, token, scopes) with the token already resolved."""
        self._clients = [
            (hashlib.sha256(token.encode()).digest(), Client(name, frozenset(scopes)))
            for name, token, scopes in clients
        ]

    @classmethod
    def from_refs(
        cls, token_ref: str | None, tokens: Sequence[tuple[str, str, Sequence[str]]]
    ) -> Authenticator | None:
        """From ``auth.token_ref`` (all scopes) and ``auth.tokens``; None when neither is set."""
        clients = [(name, resolve(ref), scopes) for name, ref, scopes in tokens]
        if token_ref is not None:
            clients.append(("default", resolve(token_ref), SCOPES))
        return cls(clients) if clients else None

    def check(
        self, headers: list[tuple[bytes, bytes]], method: str, path: str, declared: str | None
    ) -> Client:
        """The client the request's bearer token names; 401 without one, 403 without the scope."""
        client = self._client(headers)
        if client is None:
            raise HTTPError(
                401,
                "unauthorized",
                "missing or wrong bearer token (Authorization: Bearer <token>)",
                [(b"www-authenticate", b"Bearer")],
            )
        scope = required_scope(method, declared)
        if scope not in client.scopes:
            raise HTTPError(
                403,
                "forbidden",
                f"the token of client {client.name!r} lacks the {scope!r} scope "
                f"needed for {method} {path}; it has: {', '.join(sorted(client.scopes))}",
            )
        return client

    def _client(self, headers: list[tuple[bytes, bytes]]) -> Client | None:
        for key, value in headers:
            if key == b"authorization" and value.startswith(b"Bearer "):
                digest = hashlib.sha256(value[7:].strip()).digest()
                found = None
                for known, client in self._clients:  # no early exit: constant time
                    if hmac.compare_digest(digest, known):
                        found = client
                return found
        return None
