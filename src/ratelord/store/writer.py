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

A write that fails for a passing reason (a foreign lock, a full or read-only
disk, an I/O error: :mod:`ratelord.store.faults`) is not lost and does not
block the loop: the batch stays first in line and is retried with backoff on
the loop's timer until it commits.  Its callers keep waiting while the fault is
a lock within its grace; once the daemon is in safe mode they get
:class:`StoreUnavailable` (their events are still written when the fault
clears: they are already part of the in-memory state).  Any other error fails
the writer for good: the log cannot take writes and the daemon says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ratelord.engine.events import Event
from ratelord.store.faults import BACKOFF, FaultKind, StoreFault, classify
from ratelord.store.port import EventStore

log = logging.getLogger("ratelord.store")

Subscriber = Callable[[list[Event]], None]


class StoreClosed(Exception):
    """The writer is stopped or failed; nothing more can be appended."""


class StoreUnavailable(StoreClosed):
    """The store is in safe mode: this caller's events are queued but not yet durable."""


class GroupCommitWriter:
    def __init__(
        self,
        store: EventStore,
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
        self._batch: list[tuple[Sequence[Event], asyncio.Future[list[Event]]]] = []
        self._subscribers: list[Subscriber] = []
        self._failure: BaseException | None = None
        self._closing = False
        self._abandoned = asyncio.Event()
        self._in_flight = False
        #: the passing fault the writer is retrying through, if any
        self.fault: StoreFault | None = None
        self._drained = asyncio.Event()
        self._drained.set()
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

    async def drained(self) -> None:
        """Return once the queue has run dry (check :attr:`idle` again if you await more)."""
        await self._drained.wait()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` where the appends run; retried through passing faults."""
        delay = 0.0
        while True:
            try:
                result = await self._call(fn, *args)
            except Exception as exc:
                kind = classify(exc)
                if kind is None or self._abandoned.is_set():
                    raise
                delay = self._retry_delay(kind, delay, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._abandoned.wait(), delay)
                continue
            if self.fault is not None:
                log.info(
                    "event store writable again after %.1fs",
                    time.monotonic() - self.fault.since,
                )
                self.fault = None
            return result

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._inline:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _retry_delay(self, kind: FaultKind, previous: float, exc: Exception) -> float:
        """Record the fault (once per kind) and say how long to wait before the next try."""
        first, longest = BACKOFF[kind]
        now = time.monotonic()
        if self.fault is None or self.fault.kind != kind:
            self.fault = StoreFault(kind=kind, detail=str(exc), since=now)
            log.error("event store write failed, retrying: %s", self.fault.reason(now))
        if self.fault.refuses_writes(now):
            self._release_waiters(self.fault.reason(now))
        return min(longest, max(first, previous * 2))

    def _release_waiters(self, reason: str) -> None:
        """Safe mode: answer the callers now; their events stay queued for the retry."""
        for _, future in [*self._batch, *self._pending]:
            if not future.done():
                future.set_exception(StoreUnavailable(reason))

    def refuses_writes(self) -> str | None:
        """Why new writes are refused now (safe mode), or None."""
        fault, now = self.fault, time.monotonic()
        if fault is not None and fault.refuses_writes(now):
            return fault.reason(now)
        return None

    @property
    def running(self) -> bool:
        """Started, and neither failed nor closing: appends will be written."""
        return self._task is not None and self._failure is None and not self._closing

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
        self._drained.clear()
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                self._batch = batch = self._take_batch()
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
                    self._batch = []
                self.last_commit_seconds = time.perf_counter() - started
                self.commits += 1
                self.appended += len(stored)
                offset = 0
                for events, future in batch:
                    if not future.done():
                        future.set_result(stored[offset : offset + len(events)])
                    offset += len(events)
                self._publish(stored)
            self._drained.set()
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

    def announce(self, events: list[Event]) -> None:
        """Tell subscribers about events another daemon appended (a cluster follower's tail)."""
        self._publish(events)

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
        self._drained.set()

    def abandon(self) -> int:
        """Stop retrying (shutdown gave up waiting): fail what is queued; say how many events."""
        lost = self.queue_depth + sum(len(events) for events, _ in self._batch)
        self._abandoned.set()
        return lost

    async def close(self) -> None:
        """Write what is queued, checkpoint, and stop the writer thread."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._failure is None:
            try:  # best effort: the log is durable without it
                await self._call(self.store.checkpoint)
            except Exception as exc:
                log.warning("final WAL checkpoint skipped: %s", exc)
        self._thread.shutdown(wait=True)
