"""Providers turn a real (or simulated) API's rate-limit state into observations."""

from ratelord.providers.base import (
    ErrorKind,
    PollResult,
    PoolObservation,
    Provider,
    ProviderFailure,
    ProviderIdentity,
)

__all__ = [
    "ErrorKind",
    "PollResult",
    "PoolObservation",
    "Provider",
    "ProviderFailure",
    "ProviderIdentity",
]
