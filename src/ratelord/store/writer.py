"""Group commit: many concurrent appends, one SQLite transaction per batch.

Callers ``await writer.append(events)``; a single task drains everything that
queued up while the previous batch was being written, commits it in one
transaction on a dedicated thread, and only then resolves each caller's
future.  Under load the batches grow by themselves, so the cost of a commit
is shared by everyone who arrived during the last one.

After each commit the stored events (now with ``seq``) go to the
subscribers: the SSE tail and anything else that follows the log live.

Where a batch is written depends on its size.  With ``synchronous=NORMAL`` a
WAL commit is a few ``write()`` calls and no fsync, so a small batch (light
load: one caller waiting) is written on the event loop itself, which answers
soonest.  A large batch (many callers at once) goes to the writer thread: its
rows are inserted with a few multi-row statements, so the thread releases the
GIL once per statement and SQLite's work runs on another core while the loop
decides the next intents.  (Row by row, the two threads would trade the GIL
on every row, and each hand-over can wait a whole switch interval.)  With
``synchronous=FULL`` (an fsync per commit) every batch goes to the thread.

Other store work (:meth:`GroupCommitWriter.run`: snapshots) queues behind the
appends and runs alone, so the connection is never used by two threads at once.
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


class _Job:
    """Store work queued behind the appends: ``fn(*args)``, run alone."""

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args


_Pending = tuple[Sequence[Event] | _Job, asyncio.Future[Any]]


class GroupCommitWriter:
    def __init__(
        self,
        store: SQLiteStore,
        *,
        wall_clock: Callable[[], float] = time.time,
        max_batch: int = 4096,
        inline_max_events: int = 16,
    ) -> None:
        """``inline_max_events``: batches up to this size are written on the event loop
        (0: every batch goes to the writer thread, as ``synchronous=FULL`` wants)."""
        self.store = store
        self._clock = wall_clock
        self._max_batch = max_batch
        self._inline_max = inline_max_events
        self._pending: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
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
        return sum(len(item) for item, _ in self._pending if not isinstance(item, _Job))

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being written: every appended event is durable."""
        return not self._pending and not self._in_flight

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the store after everything appended so far, alone."""
        return await self._enqueue(_Job(fn, args))

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
        stored: list[Event] = await self._enqueue(events)
        return stored

    async def _enqueue(self, item: Sequence[Event] | _Job) -> Any:
        if self._failure is not None or self._closing:
            raise StoreClosed(str(self._failure or "the store is closing"))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                if isinstance(self._pending[0][0], _Job):
                    await self._run_job()
                    continue
                batch = self._take_batch()
                flat = [event for events, _ in batch for event in events]
                started = time.perf_counter()
                self._in_flight = True
                try:
                    if len(flat) <= self._inline_max:
                        stored = self.store.append(flat, self._clock())
                    else:
                        stored = await asyncio.get_running_loop().run_in_executor(
                            self._thread, self.store.append, flat, self._clock()
                        )
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

    async def _run_job(self) -> None:
        job, future = self._pending.popleft()
        assert isinstance(job, _Job)
        self._in_flight = True
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._thread, job.fn, *job.args
            )
        except Exception as exc:  # the caller's to handle; the log itself is fine
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)
        finally:
            self._in_flight = False

    def _take_batch(self) -> list[tuple[Sequence[Event], asyncio.Future[Any]]]:
        """Consecutive appends up to ``max_batch`` events (at least one), up to the next job."""
        batch: list[tuple[Sequence[Event], asyncio.Future[Any]]] = []
        size = 0
        while self._pending:
            events = self._pending[0][0]
            if isinstance(events, _Job) or (batch and size + len(events) > self._max_batch):
                break
            batch.append((events, self._pending.popleft()[1]))
            size += len(events)
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
            await asyncio.get_running_loop().run_in_executor(self._thread, self.store.checkpoint)
        self._thread.shutdown(wait=True)
