"""The mock provider: deterministic, in-process pools for demos, tests and the simulator.

Each principal has pools with a limit and a fixed window; budgets reset on
schedule, can burn in the background at a steady rate, and can be spent
"behind ratelord's back" (external usage) or made to fail on demand.  The
daemon tells it about approved intents (:meth:`MockProvider.spend`) so that it
behaves like a real API the agents actually called.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Mapping
from typing import Annotated

import msgspec

from ratelord.engine.observations import PollResult, PoolObservation
from ratelord.engine.state import PoolState
from ratelord.providers.base import ErrorKind, ProviderFailure, ProviderIdentity

Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class MockPoolConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    limit: Positive
    window_seconds: Positive = 3600.0
    remaining: NonNegative | None = None  # start partly spent; default: full
    burn_per_second: NonNegative = 0.0  # synthetic background consumption
    unit: str = "requests"


class MockPrincipalConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pools: dict[str, MockPoolConfig]


class MockProviderConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    principals: dict[str, MockPrincipalConfig] = {}
    poll_interval_seconds: Positive = 5.0


class _Bucket:
    __slots__ = ("config", "remaining", "reset_at", "scheduled", "updated_at")

    def __init__(self, config: MockPoolConfig, start: float) -> None:
        self.config = config
        self.remaining = (
            config.limit if config.remaining is None else min(config.remaining, config.limit)
        )
        self.reset_at = start + config.window_seconds
        self.updated_at = start
        #: Calls that will be made later (a heap of (at, amount)): an agent told to wait.
        self.scheduled: list[tuple[float, float]] = []

    def advance(self, now: float) -> None:
        """Roll resets, scheduled calls and background burn forward to ``now``, in time order.

        A call due exactly at the reset spends the new window (as ratelord counts it).
        """
        window = self.config.window_seconds
        while True:
            due = self.scheduled[0][0] if self.scheduled else math.inf
            if min(due, self.reset_at) > now:
                break
            if due < self.reset_at:
                self._burn(due)
                self.remaining = max(0.0, self.remaining - heapq.heappop(self.scheduled)[1])
            else:
                self._burn(self.reset_at)
                self.remaining = self.config.limit
                self.reset_at += window
        self._burn(now)

    def _burn(self, until: float) -> None:
        if until > self.updated_at:
            if self.config.burn_per_second:
                spent = self.config.burn_per_second * (until - self.updated_at)
                self.remaining = max(0.0, self.remaining - spent)
            self.updated_at = until


class MockProvider:
    provider_id = "mock"

    def __init__(self, config: MockProviderConfig, *, start: float) -> None:
        self.config = config
        self._buckets: dict[tuple[str, str], _Bucket] = {
            (principal, resource): _Bucket(pool, start)
            for principal, spec in config.principals.items()
            for resource, pool in spec.pools.items()
        }
        self._failures: deque[tuple[ErrorKind, float | None]] = deque()

    # ------------------------------------------------------------------ Provider

    async def poll(self, identity: ProviderIdentity, now: float) -> PollResult:
        return self.observe(identity.principal, now)

    def default_window_seconds(self, resource: str) -> float | None:
        windows = {r: b.config.window_seconds for (_, r), b in self._buckets.items()}
        return windows.get(resource)

    async def aclose(self) -> None:
        return None

    # ------------------------------------------------------------------ mock API

    def observe(self, principal: str | None, now: float) -> PollResult:
        """What a poll at ``now`` sees (synchronous: the simulator calls this directly)."""
        if self._failures:
            kind, retry_after = self._failures.popleft()
            raise ProviderFailure(kind, f"injected {kind} failure", retry_after=retry_after)
        if principal is None:
            raise ProviderFailure("config", "mock identities need a principal")
        buckets = [(r, b) for (p, r), b in self._buckets.items() if p == principal]
        if not buckets:
            raise ProviderFailure(
                "not_found", f"mock provider has no principal {principal!r} (see providers.mock)"
            )
        observations = []
        for resource, bucket in buckets:
            bucket.advance(now)
            observations.append(
                PoolObservation(
                    resource=resource,
                    limit=bucket.config.limit,
                    remaining=math.floor(bucket.remaining),
                    used=bucket.config.limit - math.floor(bucket.remaining),
                    reset_at=bucket.reset_at,
                    window="fixed",
                    window_seconds=bucket.config.window_seconds,
                    unit=bucket.config.unit,
                )
            )
        return PollResult(observed_at=now, observations=observations, raw_status=200)

    def spend(self, principal: str, resource: str, amount: float, now: float) -> bool:
        """Consume ``amount`` now; False (a 429) when the pool cannot cover it."""
        bucket = self._buckets.get((principal, resource))
        if bucket is None:
            return True  # not a pool this mock models: nothing to enforce
        bucket.advance(now)
        if bucket.remaining < amount:
            bucket.remaining = 0.0
            return False
        bucket.remaining -= amount
        return True

    def spend_later(self, principal: str, resource: str, amount: float, at: float) -> None:
        """A call that will spend ``amount`` at ``at`` (an agent told to wait until then)."""
        bucket = self._buckets.get((principal, resource))
        if bucket is not None:
            heapq.heappush(bucket.scheduled, (at, amount))

    def spend_charges(
        self,
        pools: Mapping[str, PoolState],
        charges: Mapping[str, float],
        now: float,
        at: float | None = None,
    ) -> None:
        """Spend an intent's charges (pool id → cost) on those pools that are this mock's,
        now or, for a call told to wait, at ``at``."""
        for pool_id, cost in charges.items():
            pool = pools.get(pool_id)
            if pool is not None and pool.provider_id == self.provider_id:
                if at is not None and at > now:
                    self.spend_later(pool.principal, pool.resource, cost, at)
                else:
                    self.spend(pool.principal, pool.resource, cost, now)

    def remaining(self, principal: str, resource: str, now: float) -> float | None:
        bucket = self._buckets.get((principal, resource))
        if bucket is None:
            return None
        bucket.advance(now)
        return bucket.remaining

    def reset_at(self, principal: str, resource: str) -> float | None:
        bucket = self._buckets.get((principal, resource))
        return None if bucket is None else bucket.reset_at

    def restore(self, principal: str, resource: str, remaining: float, reset_at: float) -> None:
        """Resume a pool from the log after a restart (the mock itself keeps nothing)."""
        bucket = self._buckets.get((principal, resource))
        if bucket is not None:
            bucket.remaining = min(remaining, bucket.config.limit)
            bucket.reset_at = reset_at

    def fail(self, kind: ErrorKind, count: int = 1, retry_after: float | None = None) -> None:
        """Make the next ``count`` polls fail with ``kind``."""
        self._failures.extend([(kind, retry_after)] * count)

    def knows(self, principal: str) -> bool:
        return any(p == principal for p, _ in self._buckets)
