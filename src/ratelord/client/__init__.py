"""The ratelord Python SDK: ask ratelord-d before spending a rate-limited budget.

``Client``/``AsyncClient`` ask and report; ``client.guard(...)`` wraps a block
of work; ``RatelordTransport``/``AsyncRatelordTransport`` (httpx2 or httpx) and
``RatelordAdapter`` (requests, optional) wrap an agent's existing API client.
Importing this package is light: httpx2 and msgspec only; requests is loaded on
first use of ``RatelordAdapter``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ratelord.client._admission import Admission, admit
from ratelord.client._breaker import BreakerSettings
from ratelord.client._client import AsyncClient, Client
from ratelord.client._exceptions import (
    RatelordDenied,
    RatelordError,
    RatelordProtocolError,
    RatelordRequestError,
    RatelordTransportError,
    RatelordUnavailable,
)
from ratelord.client._gate import rate_limit_headers
from ratelord.client._guard import AsyncGuard, Guard
from ratelord.client._transport import AsyncRatelordTransport, RatelordTransport
from ratelord.schema import Decision, Health, IntentRequest, UsageAccepted, UsageReport

if TYPE_CHECKING:
    from ratelord.client._pygithub import RatelordGithubAuth
    from ratelord.client._requests_adapter import RatelordAdapter

__all__ = [
    "Admission",
    "AsyncClient",
    "AsyncGuard",
    "AsyncRatelordTransport",
    "BreakerSettings",
    "Client",
    "Decision",
    "Guard",
    "Health",
    "IntentRequest",
    "RatelordAdapter",
    "RatelordDenied",
    "RatelordError",
    "RatelordGithubAuth",
    "RatelordProtocolError",
    "RatelordRequestError",
    "RatelordTransport",
    "RatelordTransportError",
    "RatelordUnavailable",
    "UsageAccepted",
    "UsageReport",
    "admit",
    "rate_limit_headers",
]


def __getattr__(name: str) -> Any:
    """Load the requests adapter and the PyGithub auth lazily: optional dependencies."""
    if name == "RatelordAdapter":
        try:
            from ratelord.client._requests_adapter import RatelordAdapter
        except ModuleNotFoundError as exc:
            raise ImportError(
                "RatelordAdapter needs the 'requests' package: pip install 'ratelord[requests]'"
            ) from exc
        return RatelordAdapter
    if name == "RatelordGithubAuth":
        try:
            from ratelord.client._pygithub import RatelordGithubAuth
        except ModuleNotFoundError as exc:
            raise ImportError("RatelordGithubAuth needs PyGithub: pip install PyGithub") from exc
        return RatelordGithubAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
