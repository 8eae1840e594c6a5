"""The mock provider stands for the real API: what ratelord approves, the agent spends there.

An adapter started from ``main.py`` (see :class:`~ratelord.daemon.runtime.Adapter`):
it resumes the mock's pools from what the log says (the mock keeps no state of
its own), then spends each approved intent's charges at the mock once the
agent's wait is over.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ratelord.providers.mock import MockProvider

if TYPE_CHECKING:
    from ratelord.daemon.runtime import Runtime


class MockSpending:
    async def start(self, runtime: Runtime) -> None:
        mock = runtime.providers.get(MockProvider.provider_id)
        if not isinstance(mock, MockProvider):
            return
        state = runtime.engine.state
        for pool in state.pools.values():
            if pool.provider_id == mock.provider_id and pool.reset_at is not None:
                mock.restore(pool.principal, pool.resource, pool.remaining, pool.reset_at)

        def charged(charges: dict[str, float], wait: float) -> None:
            def spend() -> None:
                mock.spend_charges(runtime.engine.state.pools, charges, runtime.now())

            if wait > 0:
                asyncio.get_running_loop().call_later(wait, spend)
            else:
                spend()

        runtime.commands.charge_listeners.append(charged)
