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

Window = Literal["fixed", "rolling", "unknown"]


class ProviderIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider needs to know about an identity (never the secret itself)."""

    identity_id: str
    provider_id: str
    principal: str | None
    kind: str
    secret_ref: str | None
    labels: dict[str, str] = {}


class PoolObservation(msgspec.Struct, frozen=True, kw_only=True):
    """The provider's word on one resource family of one principal."""

    resource: str
    limit: float | None
    remaining: float
    used: float | None = None
    reset_at: float | None = None  # absolute epoch seconds
    window: Window = "fixed"
    window_seconds: float | None = None
    unit: str = "requests"


class PollResult(msgspec.Struct, frozen=True, kw_only=True):
    observed_at: float
    observations: list[PoolObservation]
    principal: str | None = None  # discovered principal (e.g. GitHub login), if any
    raw_status: int | None = None


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
