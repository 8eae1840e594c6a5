"""The mock provider stands for the real API: what ratelord approves, the agent spends there.

An adapter started from ``main.py`` (see :class:`~ratelord.daemon.runtime.Adapter`):
it resumes the mock's pools from what the log says the provider has seen (the
mock keeps no state of its own), then spends each approved intent's charges at
the mock once the agent's wait is over (calls still waiting at a restart too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ratelord.providers.mock import MockProvider

if TYPE_CHECKING:
    from ratelord.daemon.runtime import Runtime


class MockSpending:
    async def start(self, runtime: Runtime) -> None:
        mock = runtime.providers.get(MockProvider.provider_id)
        if not isinstance(mock, MockProvider):
            return
        now = runtime.now()
        for pool in runtime.engine.state.pools.values():
            if pool.provider_id == mock.provider_id and pool.reset_at is not None:
                # ratelord's remaining already subtracts the calls told to wait and the
                # units leased out; the provider has seen neither yet.
                waiting = [(t, c) for t, c in pool.pending if t > now]
                seen = pool.remaining - pool.shortfall + pool.leased + sum(c for _, c in waiting)
                mock.restore(pool.principal, pool.resource, seen, pool.reset_at)
                for at, cost in waiting:
                    mock.spend_later(pool.principal, pool.resource, cost, at)

        def charged(charges: dict[str, float], wait: float) -> None:
            now = runtime.now()
            mock.spend_charges(runtime.engine.state.pools, charges, now, now + wait)

        runtime.commands.charge_listeners.append(charged)
