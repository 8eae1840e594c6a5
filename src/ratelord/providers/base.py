"""The provider port.

A provider is asked to ``poll`` one identity and answers with a
:class:`PollResult` (one :class:`PoolObservation` per resource family) or
raises :class:`ProviderFailure` with a classified :data:`ErrorKind`.
Providers do I/O; the engine turns their results into events.  ``now`` is
passed in so that the simulator can run providers on a virtual clock.
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

from ratelord.engine.observations import PollResult, PoolObservation, Window

__all__ = [
    "ErrorKind",
    "PollResult",
    "PoolObservation",
    "Provider",
    "ProviderFailure",
    "ProviderIdentity",
    "Window",
]

ErrorKind = Literal[
    "auth",  # 401: bad or expired credential
    "forbidden",  # 403 that is not a rate limit (permissions)
    "rate_limited",  # 403/429 primary or secondary limit; see retry_after
    "server",  # 5xx
    "timeout",  # no answer in time
    "network",  # connection refused, DNS, TLS
    "parse",  # an answer we could not read (truncated, wrong shape)
    "not_found",  # endpoint absent (e.g. GHES with rate limiting off)
    "config",  # secret reference missing/unreadable, bad settings
]


class ProviderIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider needs to know about an identity (never the secret itself)."""

    identity_id: str
    provider_id: str
    principal: str | None
    kind: str
    secret_ref: str | None
    labels: dict[str, str] = {}


class ProviderFailure(Exception):
    """A classified failure of one poll.  The message never contains a secret."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.retry_after = retry_after
        self.status_code = status_code


class Provider(Protocol):
    """What the poller needs from a provider."""

    provider_id: str

    async def poll(self, identity: ProviderIdentity, now: float) -> PollResult:
        """Observe every pool of ``identity``; raise :class:`ProviderFailure` on error."""
        ...

    def default_window_seconds(self, resource: str) -> float | None:
        """The provider's usual window for ``resource`` when a reset is not given."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
