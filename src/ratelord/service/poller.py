"""One polling loop per identity: first poll at once, adaptive cadence, jittered backoff.

The poller needs only the command service (for the engine's view of the
identity and to record what a poll saw) and a provider; the clock is the
service's.  ``poll_once`` is a single step the simulator can drive on its own
schedule (with ``timeout=None`` it never touches the event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from ratelord.engine.observations import PollResult
from ratelord.providers.base import Provider, ProviderFailure, ProviderIdentity
from ratelord.service.cadence import PollCadence
from ratelord.service.commands import CommandService, Unavailable

log = logging.getLogger("ratelord.poller")


class Poller:
    def __init__(
        self,
        commands: CommandService,
        provider: Provider,
        identity_id: str,
        interval: float,
        *,
        timeout: float | None = 30.0,
        rng: random.Random | None = None,
        logger: logging.Logger = log,
    ) -> None:
        self.commands = commands
        self.provider = provider
        self.identity_id = identity_id
        self.timeout = timeout
        self.cadence = PollCadence(interval, rng)
        self.log = logger
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
            record = self.commands.engine.state.identities.get(self.identity_id)
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
        try:
            result = await self._fetch()
        except ProviderFailure as failure:
            return await self._failed(
                failure.kind, failure.message, failure.retry_after, failure.status_code
            )
        except TimeoutError:
            return await self._failed("timeout", f"no answer in {self.timeout:.0f}s", None, None)
        except Exception as exc:  # a provider bug must not kill the loop
            self.log.exception("provider %s failed unexpectedly", self.provider.provider_id)
            return await self._failed(
                "parse", f"unexpected provider error: {type(exc).__name__}", None, None
            )
        try:
            await self.commands.observe_poll(self.identity_id, result)
        except Unavailable:
            self.cadence.failures = 0
            return self.cadence.interval
        state = self.commands.engine.state
        record = state.identities[self.identity_id]
        return self.cadence.succeeded(
            state.pools_of(record.provider_id, record.principal), self.commands.now()
        )

    async def _fetch(self) -> PollResult:
        record = self.commands.engine.state.identities[self.identity_id]
        identity = ProviderIdentity(
            identity_id=record.identity_id,
            provider_id=record.provider_id,
            principal=record.principal,
            kind=record.kind,
            secret_ref=record.secret_ref,
            labels=record.labels,
        )
        poll = self.provider.poll(identity, self.commands.now())
        if self.timeout is None:
            return await poll
        return await asyncio.wait_for(poll, timeout=self.timeout)

    async def _failed(
        self, kind: str, message: str, retry_after: float | None, status_code: int | None
    ) -> float:
        self.log.warning("poll of %s failed (%s): %s", self.identity_id, kind, message)
        with contextlib.suppress(Unavailable):
            await self.commands.observe_failure(
                self.identity_id,
                kind=kind,
                message=message,
                retry_after=retry_after,
                status_code=status_code,
            )
        return self.cadence.failed(retry_after)
