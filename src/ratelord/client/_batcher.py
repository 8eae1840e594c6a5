"""Coalesce an AsyncClient's concurrent asks into ``POST /v1/intents`` batches.

While one request is in flight, further asks queue; when it returns, everything
queued goes in one batch (one request, one commit in the daemon).  A lone ask
is sent as ``POST /v1/intent`` at once, so batching adds no latency when there
is nothing to batch.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ratelord.schema import MAX_BATCH, Decision, DecisionList, IntentBatch, IntentRequest

if TYPE_CHECKING:
    from ratelord.client._client import AsyncClient

_Queued = tuple[IntentRequest, "asyncio.Future[Decision]"]


class Batcher:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.queue: list[_Queued] = []
        self.busy = False
        #: Batches sent (for tests and curiosity).
        self.batches = 0

    async def ask(self, request: IntentRequest) -> Decision:
        if self.busy:
            future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
            self.queue.append((request, future))
            return await future
        self.busy = True
        try:
            return await self.client._call("POST", "/v1/intent", request, Decision)
        finally:
            self._next()

    def _next(self) -> None:
        """Send what queued meanwhile as one batch, or go idle."""
        if not self.queue:
            self.busy = False
            return
        batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
        asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[_Queued]) -> None:
        self.batches += 1
        try:
            body = IntentBatch(intents=[request for request, _ in batch])
            answer = await self.client._call("POST", "/v1/intents", body, DecisionList)
        except BaseException as exc:  # every waiter hears of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), decision in zip(batch, answer.decisions, strict=True):
                if not future.done():
                    future.set_result(decision)
        finally:
            self._next()
