"""One polling loop per identity: first poll at once, adaptive cadence, jittered backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING

from ratelord.engine.observe import observe_error, observe_poll
from ratelord.providers.base import Provider, ProviderFailure, ProviderIdentity

if TYPE_CHECKING:
    from ratelord.daemon.runtime import Runtime

log = logging.getLogger("ratelord.poller")

MIN_INTERVAL = 1.0
MAX_BACKOFF = 300.0
#: Poll more often the closer a pool is to trouble.
CADENCE = {"OK": 1.0, "WARN": 0.5, "CRIT": 0.25}


def next_interval(base: float, postures: list[str]) -> float:
    factor = min((CADENCE.get(p, 1.0) for p in postures), default=1.0)
    return max(MIN_INTERVAL, base * factor)


def backoff(failures: int, retry_after: float | None, rng: random.Random) -> float:
    """Exponential backoff with ±20 % jitter; a provider's ``retry_after`` is a floor."""
    delay = min(MAX_BACKOFF, 2.0 ** min(max(0, failures - 1), 30)) * rng.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, 3600.0))
    return delay


class Poller:
    def __init__(
        self,
        runtime: Runtime,
        provider: Provider,
        identity_id: str,
        interval: float,
        timeout: float = 30.0,
    ) -> None:
        self.runtime = runtime
        self.provider = provider
        self.identity_id = identity_id
        self.interval = interval
        self.timeout = timeout
        self.failures = 0
        self._rng = random.Random()
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"poll:{self.identity_id}"
        )

    def poke(self) -> None:
        """Poll now (after a rotation, or when asked)."""
        self._wake.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            record = self.runtime.engine.state.identities.get(self.identity_id)
            if record is None or record.status == "revoked":
                return
            if record.status == "quarantined":  # until a rotation pokes us
                await self._wake.wait()
                self._wake.clear()
                continue
            delay = await self.poll_once()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def poll_once(self) -> float:
        """Poll, record what happened, and say how long to wait before the next poll."""
        engine = self.runtime.engine
        record = engine.state.identities[self.identity_id]
        identity = ProviderIdentity(
            identity_id=record.identity_id,
            provider_id=record.provider_id,
            principal=record.principal,
            kind=record.kind,
            secret_ref=record.secret_ref,
            labels=record.labels,
        )
        try:
            result = await asyncio.wait_for(
                self.provider.poll(identity, self.runtime.now()), timeout=self.timeout
            )
        except ProviderFailure as failure:
            return await self._failed(
                failure.kind, failure.message, failure.retry_after, failure.status_code
            )
        except TimeoutError:
            return await self._failed("timeout", f"no answer in {self.timeout:.0f}s", None, None)
        except Exception as exc:  # a provider bug must not kill the loop
            log.exception("provider %s failed unexpectedly", self.provider.provider_id)
            return await self._failed(
                "parse", f"unexpected provider error: {type(exc).__name__}", None, None
            )
        self.failures = 0
        if not self.runtime.accepting_writes:
            return self.interval
        await self.runtime.commit(observe_poll(engine, self.identity_id, result))
        pools = engine.state.pools_of(
            record.provider_id, engine.state.identities[self.identity_id].principal
        )
        return next_interval(self.interval, [p.posture for p in pools])

    async def _failed(
        self, kind: str, message: str, retry_after: float | None, status_code: int | None
    ) -> float:
        self.failures += 1
        log.warning("poll of %s failed (%s): %s", self.identity_id, kind, message)
        if self.runtime.accepting_writes:
            await self.runtime.commit(
                observe_error(
                    self.runtime.engine,
                    self.identity_id,
                    kind=kind,
                    message=message,
                    now=self.runtime.now(),
                    retry_after=retry_after,
                    status_code=status_code,
                )
            )
        return backoff(self.failures, retry_after, self._rng)
