"""What a provider (or an agent's response headers) says about one pool.

These are plain values the engine consumes; they live in the engine so that
the engine depends on no provider, while every provider produces them.
"""

from __future__ import annotations

from typing import Literal

import msgspec

#: ``refill``: a token bucket refilling continuously, ``limit`` per ``window_seconds``
#: (see :mod:`ratelord.engine.refill`); ``reset_at`` is then when it would be full.
Window = Literal["fixed", "rolling", "refill", "unknown"]


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
