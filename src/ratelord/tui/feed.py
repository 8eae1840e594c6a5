"""The dashboard's live data: polls the daemon's views every second and tails its events.

:class:`Feed` is an invisible widget whose two workers talk to the daemon and post what they
learn as messages (``Refreshed``, ``EventsArrived``, ``ConnectionChanged``) that bubble up to the
screen.  Events are delivered exactly once and in order: the feed remembers the last ``seq`` it
passed on and, after any disconnection, resumes the SSE stream from there.  Should the daemon
come back with a different database (its high-water mark below our last seq), the feed says so
(``LogReplaced``) and starts over from that log's recent decisions.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from textual import work
from textual.message import Message
from textual.widget import Widget

from ratelord.client import AsyncClient, RatelordError, RatelordRequestError
from ratelord.client._retry import Backoff
from ratelord.schema import Health, Identity, Lease, MoneyBudget, Pool, Stats

#: Pauses between reconnects: 0.25 s doubling up to 5 s, jittered so many dashboards spread out.
RECONNECT = Backoff(base=0.25, max_delay=5.0, jitter=0.4)


@dataclass(frozen=True)
class Snapshot:
    """One consistent poll of the daemon's read views."""

    health: Health
    pools: list[Pool]
    identities: list[Identity]
    stats: Stats | None
    fetched_at: float
    leases: list[Lease] = field(default_factory=list)
    budgets: list[MoneyBudget] = field(default_factory=list)


class Feed(Widget):
    DEFAULT_CSS = "Feed { display: none; }"

    class Refreshed(Message):
        def __init__(self, snapshot: Snapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class EventsArrived(Message):
        def __init__(self, events: list[dict[str, Any]]) -> None:
            super().__init__()
            self.events = events

    class LogReplaced(Message):
        """The daemon now serves another event log: rows shown so far are not in it."""

    class ConnectionChanged(Message):
        def __init__(self, connected: bool, detail: str) -> None:
            super().__init__()
            self.connected = connected
            self.detail = detail

    def __init__(
        self,
        api: AsyncClient,
        *,
        poll_interval: float = 1.0,
        backfill: int = 200,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.api = api
        self.poll_interval = poll_interval
        self.backfill = backfill
        self.last_seq = 0
        self.connected = False
        self._poll_ok = False
        self._stream_ok = False
        self._backfilled = False
        self._started_at: str | None = None

    def on_mount(self) -> None:
        self.run_polling()
        self.run_stream()

    @work(exclusive=True, group="feed-poll")
    async def run_polling(self) -> None:
        failures = 0
        while True:
            try:
                snapshot = await self._fetch()
            except RatelordError as exc:
                self._set_health(poll_ok=False, detail=str(exc))
                await asyncio.sleep(RECONNECT.pause(failures))
                failures += 1
                continue
            failures = 0
            self._set_health(poll_ok=True)
            if self._log_replaced(snapshot.health):
                self.last_seq, self._backfilled = 0, False
                self.post_message(self.LogReplaced())
                self.run_stream()  # exclusive: replaces the stream waiting past the old seq
            self.post_message(self.Refreshed(snapshot))
            await asyncio.sleep(self.poll_interval)

    def _log_replaced(self, health: Health) -> bool:
        """A daemon restarted on a different database: its seqs start again below ours."""
        restarted = self._started_at not in (None, health.started_at)
        self._started_at = health.started_at
        return restarted and health.high_water_seq < self.last_seq

    @work(exclusive=True, group="feed-stream")
    async def run_stream(self) -> None:
        failures = 0
        while True:
            try:
                if not self._backfilled:
                    await self._load_recent()
                async with self.api.event_stream(after_seq=self.last_seq) as events:
                    failures = 0
                    self._set_health(stream_ok=True)
                    async for event in events:
                        self._deliver([event])
                detail = "the daemon closed the event stream"
            except RatelordError as exc:
                detail = str(exc)
            self._set_health(stream_ok=False, detail=detail)
            await asyncio.sleep(RECONNECT.pause(failures))
            failures += 1

    async def _fetch(self) -> Snapshot:
        try:
            async with asyncio.TaskGroup() as group:
                health = group.create_task(self.api.health())
                pools = group.create_task(self.api.pools())
                identities = group.create_task(self.api.identities())
                stats = group.create_task(self._stats())
                leases = group.create_task(self._leases())
                budgets = group.create_task(self._budgets())
        except* RatelordError as failed:
            raise failed.exceptions[0] from None
        return Snapshot(
            health.result(),
            pools.result(),
            identities.result(),
            stats.result(),
            time.time(),
            leases.result(),
            budgets.result(),
        )

    async def _stats(self) -> Stats | None:
        """Vitals are optional: a daemon without ``/v1/stats`` still gets a dashboard."""
        try:
            return await self.api.stats()
        except RatelordRequestError:
            return None

    async def _leases(self) -> list[Lease]:
        """Leases are optional too (a daemon older than ``/v1/leases``)."""
        try:
            return await self.api.leases()
        except RatelordRequestError:
            return []

    async def _budgets(self) -> list[MoneyBudget]:
        """Money budgets too (a daemon older than ``/v1/budgets``)."""
        try:
            return await self.api.budgets()
        except RatelordRequestError:
            return []

    async def _load_recent(self) -> None:
        """Show the decisions made before we connected; stream from the high-water mark on."""
        high_water = (await self.api.health()).high_water_seq
        page = await self.api.events(type="intent_decided", limit=self.backfill)
        recent = sorted(page.events, key=lambda e: int(e["seq"]))
        self._deliver([e for e in recent if int(e["seq"]) <= high_water])
        self.last_seq = max(self.last_seq, high_water)
        self._backfilled = True

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        fresh = []
        for event in events:
            seq = int(event["seq"])
            if seq > self.last_seq:
                fresh.append(event)
                self.last_seq = seq
        if fresh:
            self.post_message(self.EventsArrived(fresh))

    def _set_health(
        self, *, poll_ok: bool | None = None, stream_ok: bool | None = None, detail: str = ""
    ) -> None:
        if poll_ok is not None:
            self._poll_ok = poll_ok
        if stream_ok is not None:
            self._stream_ok = stream_ok
        connected = self._poll_ok and self._stream_ok
        if connected != self.connected:
            self.connected = connected
            self.post_message(self.ConnectionChanged(connected, detail))
