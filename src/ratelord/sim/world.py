"""The simulated provider as agents and pollers meet it: its pools plus injected outages.

The provider (:mod:`ratelord.sim.provider`) keeps the real budgets (what agents
actually spend, what bypasses ratelord, what resets when); outages from the
scenario make polls raise :class:`~ratelord.providers.base.ProviderFailure`
and make agents' calls fail with a 5xx that spends nothing.
"""

from __future__ import annotations

import math
from enum import StrEnum

from ratelord.engine.observations import PollResult
from ratelord.providers.base import ProviderFailure
from ratelord.sim.provider import SimBucket, SimProvider
from ratelord.sim.scenario import Failure, Scenario


class CallResult(StrEnum):
    OK = "ok"
    RATE_LIMITED = "429"
    ERROR = "5xx"


class World:
    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.start = scenario.start
        pools = {principal: dict(spec.pools) for principal, spec in scenario.pools.items()}
        self.provider = SimProvider(pools, scenario.start, scenario.seed if seed is None else seed)
        self._failures = scenario.failures

    def _outage(self, principal: str, now: float) -> Failure | None:
        offset = now - self.start
        for failure in self._failures:
            if failure.start <= offset < failure.end and (
                not failure.principals or principal in failure.principals
            ):
                return failure
        return None

    def poll(self, principal: str, now: float) -> PollResult:
        """What a poll sees; raises ``ProviderFailure`` during an outage."""
        failure = self._outage(principal, now)
        if failure is not None:
            raise ProviderFailure(failure.kind, f"injected {failure.kind} failure")
        return self.provider.observe(principal, now)

    def call(self, principal: str, charges: dict[str, float], now: float) -> CallResult:
        """An agent's API call that spends ``charges`` (resource → units), all or nothing."""
        failure = self._outage(principal, now)
        if failure is not None and failure.calls_fail:
            return CallResult.ERROR
        buckets = self.provider.buckets
        for resource, cost in charges.items():
            bucket = buckets.get((principal, resource))
            if bucket is not None:
                bucket.advance(now)
                if bucket.remaining + 1e-9 < cost:
                    return CallResult.RATE_LIMITED
        for resource, cost in charges.items():
            self.provider.spend(principal, resource, cost, now)
        return CallResult.OK

    def met_unforeseen(self, principal: str, charges: dict[str, float], now: float) -> bool:
        """Whether a call refused at ``now`` is the first to meet what no client could
        foresee (see ``SimBucket.unforeseen``): a limit cut, or a consumer behind
        ratelord's back spending for the first time, that nobody has looked at since."""
        for resource, cost in charges.items():
            bucket = self.provider.buckets.get((principal, resource))
            if bucket is not None and bucket.unforeseen:
                bucket.advance(now)
                if bucket.remaining + 1e-9 < cost:
                    bucket.unforeseen = False
                    return True
        return False

    def rejection_headers(
        self, principal: str, charges: dict[str, float], now: float
    ) -> dict[str, str]:
        """The rate-limit headers a 429 for ``charges`` carries: the pool that refused it,
        in the generic ``x-ratelimit-*`` form (what an SDK transport reports back)."""
        for resource, cost in charges.items():
            bucket = self.provider.buckets.get((principal, resource))
            if bucket is None:
                continue
            bucket.advance(now)
            if bucket.remaining + 1e-9 < cost:
                return _headers(bucket, resource)
        return {}

    def response_headers(
        self, principal: str, charges: dict[str, float], now: float
    ) -> dict[str, str]:
        """The rate-limit headers of a call that went through, answered at ``now``: its
        first pool's."""
        for resource in charges:
            bucket = self.provider.buckets.get((principal, resource))
            if bucket is not None:
                bucket.advance(now)
                return _headers(bucket, resource)
        return {}

    def spend_external(self, principal: str, resource: str, amount: float, now: float) -> float:
        """Usage behind ratelord's back (another tool on the same account); what it spent.

        It is many small calls: those that fit go through, the rest are refused.
        """
        self.provider.demand(principal, resource, amount, now)
        bucket = self.provider.buckets.get((principal, resource))
        if bucket is None:
            return 0.0
        bucket.advance(now)
        spent = min(amount, bucket.remaining)
        self.provider.spend(principal, resource, spent, now)
        if spent > 0 and not bucket.external_seen:
            bucket.external_seen = bucket.unforeseen = True
        return spent

    def demand(self, principal: str, charges: dict[str, float], now: float) -> None:
        for resource, cost in charges.items():
            self.provider.demand(principal, resource, cost, now)

    def bucket(self, principal: str, resource: str) -> SimBucket:
        return self.provider.buckets[(principal, resource)]

    def limit(self, principal: str, resource: str) -> float:
        return self.bucket(principal, resource).config.limit

    def window(self, principal: str, resource: str) -> float:
        return self.bucket(principal, resource).config.window_seconds


def _headers(bucket: SimBucket, resource: str) -> dict[str, str]:
    """``bucket`` as a response's ``x-ratelimit-*`` headers (the generic form)."""
    seen = bucket.observe(resource)
    assert seen.reset_at is not None and seen.used is not None
    return {
        "x-ratelimit-limit": f"{seen.limit:.15g}",
        "x-ratelimit-remaining": f"{seen.remaining:.15g}",
        "x-ratelimit-used": f"{seen.used:.15g}",
        # GitHub sends whole epoch seconds; rounded up, never before the reset.
        "x-ratelimit-reset": str(math.ceil(seen.reset_at)),
        "x-ratelimit-resource": resource,
    }
