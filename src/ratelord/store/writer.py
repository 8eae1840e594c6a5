"""Group commit: many concurrent appends, one SQLite transaction per batch.

Callers ``await writer.append(events)``; a single task drains everything that
queued up while the previous batch was being written, commits it in one
transaction (see below for where), and only then resolves each caller's
future.  Under load the batches grow by themselves, so the cost of a commit
is shared by everyone who arrived during the last one.

After each commit the stored events (now with ``seq``) go to the
subscribers: the SSE tail and anything else that follows the log live.

Where the batch is written matters more than it looks.  With
``synchronous=NORMAL`` a WAL commit is a few ``write()`` calls and no fsync, so
the writer runs it on the event loop itself (``inline``): handing it to a
thread looks cheaper but makes the two threads trade the GIL once per row
(``executemany`` releases it around every step), and each hand-over can wait a
whole switch interval — measured here, that cut throughput by a factor of five.
With ``synchronous=FULL`` (an fsync per commit) the thread is the better place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ratelord.engine.events import Event
from ratelord.store.sqlite import SQLiteStore

log = logging.getLogger("ratelord.store")

Subscriber = Callable[[list[Event]], None]


class StoreClosed(Exception):
    """The writer is stopped or failed; nothing more can be appended."""


class GroupCommitWriter:
    def __init__(
        self,
        store: SQLiteStore,
        *,
        wall_clock: Callable[[], float] = time.time,
        max_batch: int = 4096,
        inline: bool = True,
    ) -> None:
        self.store = store
        self._clock = wall_clock
        self._max_batch = max_batch
        self._pending: deque[tuple[Sequence[Event], asyncio.Future[list[Event]]]] = deque()
        self._wakeup = asyncio.Event()
        self._inline = inline
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ratelord-writer")
        self._task: asyncio.Task[None] | None = None
        self._subscribers: list[Subscriber] = []
        self._failure: BaseException | None = None
        self._closing = False
        self._in_flight = False
        self.commits = 0
        self.appended = 0
        self.last_commit_seconds = 0.0

    @property
    def queue_depth(self) -> int:
        return sum(len(events) for events, _ in self._pending)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being written: every appended event is durable."""
        return not self._pending and not self._in_flight

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` where the appends run, in order with them."""
        if self._inline:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    @property
    def failed(self) -> BaseException | None:
        return self._failure

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def append(self, events: Sequence[Event]) -> list[Event]:
        """Append ``events`` durably; returns them with ``seq`` once their batch committed."""
        if self._failure is not None or self._closing:
            raise StoreClosed(str(self._failure or "the store is closing"))
        future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        self._pending.append((events, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._take_batch()
                flat = [event for events, _ in batch for event in events]
                started = time.perf_counter()
                self._in_flight = True
                try:
                    stored = await self.run(self.store.append, flat, self._clock())
                except BaseException as exc:  # the log cannot take writes: fail loudly
                    self._fail(exc, batch)
                    return
                finally:
                    self._in_flight = False
                self.last_commit_seconds = time.perf_counter() - started
                self.commits += 1
                self.appended += len(stored)
                offset = 0
                for events, future in batch:
                    if not future.done():
                        future.set_result(stored[offset : offset + len(events)])
                    offset += len(events)
                self._publish(stored)
            if self._closing:
                return

    def _take_batch(self) -> list[tuple[Sequence[Event], asyncio.Future[list[Event]]]]:
        batch: list[tuple[Sequence[Event], asyncio.Future[list[Event]]]] = []
        size = 0
        while self._pending and (not batch or size + len(self._pending[0][0]) <= self._max_batch):
            item = self._pending.popleft()
            batch.append(item)
            size += len(item[0])
        return batch

    def _publish(self, stored: list[Event]) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(stored)
            except Exception:  # a broken subscriber must not stop the log
                log.exception("event subscriber failed")

    def _fail(self, exc: BaseException, batch: list[Any]) -> None:
        self._failure = exc
        log.error("event store append failed; the daemon is read-only now: %s", exc)
        for _, future in [*batch, *self._pending]:
            if not future.done():
                future.set_exception(StoreClosed(f"event store append failed: {exc}"))
        self._pending.clear()

    async def close(self) -> None:
        """Write what is queued, checkpoint, and stop the writer thread."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._failure is None:
            await self.run(self.store.checkpoint)
        self._thread.shutdown(wait=True)
