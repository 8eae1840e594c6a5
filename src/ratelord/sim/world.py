"""The simulated provider as agents and pollers meet it: the mock plus injected outages.

The mock provider keeps the real budgets (what agents actually spend, what
bypasses ratelord, what resets); outages from the scenario make polls raise
the mock's own :class:`~ratelord.providers.base.ProviderFailure` and make
agents' calls fail with a 5xx that spends nothing.
"""

from __future__ import annotations

from enum import StrEnum

from ratelord.engine.observations import PollResult
from ratelord.providers.mock import MockProvider
from ratelord.sim.scenario import Failure, Scenario

#: How long before a reset the pool's use is read for the utilisation report (seconds).
RESET_PROBE_LEAD = 1e-3


class CallResult(StrEnum):
    OK = "ok"
    RATE_LIMITED = "429"
    ERROR = "5xx"


class World:
    def __init__(self, scenario: Scenario) -> None:
        self.start = scenario.start
        self.mock = MockProvider(scenario.mock_config(), start=scenario.start)
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
            self.mock.fail(failure.kind, 1)
        return self.mock.observe(principal, now)

    def call(self, principal: str, resource: str, cost: float, now: float) -> CallResult:
        """An agent's API call that costs ``cost`` units of ``resource``."""
        failure = self._outage(principal, now)
        if failure is not None and failure.calls_fail:
            return CallResult.ERROR
        if self.mock.spend(principal, resource, cost, now):
            return CallResult.OK
        return CallResult.RATE_LIMITED

    def spend_external(self, principal: str, resource: str, amount: float, now: float) -> None:
        """Usage behind ratelord's back (another tool on the same account)."""
        self.mock.spend(principal, resource, amount, now)

    def used(self, principal: str, resource: str, now: float) -> float:
        remaining = self.mock.remaining(principal, resource, now)
        return 0.0 if remaining is None else max(0.0, self.limit(principal, resource) - remaining)

    def limit(self, principal: str, resource: str) -> float:
        return self.mock.config.principals[principal].pools[resource].limit

    def window(self, principal: str, resource: str) -> float:
        return self.mock.config.principals[principal].pools[resource].window_seconds
