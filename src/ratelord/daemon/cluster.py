"""Several daemons, one log: this daemon's place in a PostgreSQL-backed cluster.

Every member replays the shared log at start-up, then either wins the leader
lock (a PostgreSQL session advisory lock, :class:`~ratelord.store.postgres.Leadership`)
and becomes the one writer, or follows: it tails the log (``LISTEN`` for the
append trigger's notification, then reads by ``seq``), applies each event to
its projections so that reads are served hot, and forwards writes to the
leader (:class:`Forwarder`).  Followers keep trying the lock; when the
leader's session ends (even by ``kill -9``) one of them wins it, bumps the
epoch — which fences off any late append of the old leader — catches up the
tail and starts writing.

A leader that loses its lock session stops itself: it can no longer append
(the epoch check refuses it) and a supervisor restarts it as a follower.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx
import msgspec
import psycopg

from ratelord.engine.events import Event
from ratelord.store.postgres import CHANNEL, EventReader, Leadership, PostgresStore, connect

log = logging.getLogger("ratelord.cluster")

Role = Literal["leader", "follower", "candidate"]

#: Seconds between a follower's attempts at the leader lock (failover must be < 5 s).
ELECTION_EVERY = 0.5
#: Longest a follower waits for a notification before it reads the tail anyway.
TAIL_WAIT = 0.5
#: Seconds between the leader's checks that its lock session is still alive.
LEASE_CHECK_EVERY = 0.5


class ClusterStatus(msgspec.Struct, kw_only=True):
    """What ``/v1/health`` says about the cluster."""

    role: Role
    leader: str | None
    epoch: int
    applied_seq: int
    replication_lag_events: int
    replication_lag_seconds: float


class Member:
    """Follows the log until it wins the lock, then calls ``on_lead`` and guards the lease."""

    def __init__(
        self,
        store: PostgresStore,
        address: str,
        *,
        apply: Callable[[list[Event]], None],
        on_lead: Callable[[], Awaitable[None]],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.address = address
        self._apply = apply
        self._on_lead = on_lead
        self._now = wall_clock
        self._leadership = Leadership(store.url)
        self._reader = EventReader(store.url)
        self.role: Role = "candidate"
        self.leader_address: str | None = None
        self.epoch = 0
        self.applied_seq = store.high_water
        self._lag_events = 0
        self._tail_checked = time.monotonic()

    # ------------------------------------------------------------------ status

    def status(self) -> ClusterStatus:
        behind = self.role == "follower" and self._lag_events > 0
        return ClusterStatus(
            role=self.role,
            leader=self.address if self.role == "leader" else self.leader_address,
            epoch=self.epoch,
            applied_seq=self.applied_seq,
            replication_lag_events=self._lag_events if self.role == "follower" else 0,
            replication_lag_seconds=round(time.monotonic() - self._tail_checked, 3)
            if behind
            else 0.0,
        )

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Follow until elected, then lead until the lock is lost."""
        try:
            if not await asyncio.to_thread(self._leadership.try_acquire):
                self.role = "follower"
                log.info("following the leader (epoch %d)", self.store.leader()[0])
                await self._follow()
            await self._lead()
        finally:
            await asyncio.to_thread(self._close)

    async def _follow(self) -> None:
        listener = await asyncio.to_thread(_listen, self.store.url)
        try:
            next_election = time.monotonic()
            while True:
                await asyncio.to_thread(_wait_for_notice, listener, TAIL_WAIT)
                await self._catch_up()
                if time.monotonic() >= next_election:
                    next_election = time.monotonic() + ELECTION_EVERY
                    if await asyncio.to_thread(self._leadership.try_acquire):
                        return
        finally:
            await asyncio.to_thread(listener.close)

    async def _catch_up(self) -> None:
        """Apply every event after ``applied_seq``; note the leader and how far behind we were."""
        events, (epoch, leader), tail = await asyncio.to_thread(self._read_tail)
        self._lag_events = max(0, tail - self.applied_seq)
        self._tail_checked = time.monotonic()
        self.epoch, self.leader_address = epoch, leader or None
        if events:
            self._apply(events)
            self.applied_seq = events[-1].seq
            self.store.high_water = self.applied_seq

    def _read_tail(self) -> tuple[list[Event], tuple[int, str], int]:
        leader = self.store.leader()
        tail = self._reader.high_water()
        events = [event for batch in self._reader.read(self.applied_seq) for event in batch]
        return events, leader, tail

    async def _lead(self) -> None:
        self.role = "candidate"
        self.epoch = await asyncio.to_thread(self.store.lead, self.address, self._now())
        started = time.monotonic()
        await self._catch_up_to(self.store.high_water)
        self.role, self.leader_address, self._lag_events = "leader", self.address, 0
        log.warning(
            "leading the cluster at epoch %d from seq %d (took over in %.3fs)",
            self.epoch,
            self.applied_seq,
            time.monotonic() - started,
        )
        await self._on_lead()
        while await asyncio.to_thread(self._leadership.alive):
            await asyncio.sleep(LEASE_CHECK_EVERY)
        log.error("lost the leader lock session; stopping (a supervisor restarts us as follower)")
        os.kill(os.getpid(), signal.SIGTERM)

    async def _catch_up_to(self, seq: int) -> None:
        while self.applied_seq < seq:
            await self._catch_up()

    def _close(self) -> None:
        self._leadership.release()
        self._reader.close()


class Forwarder:
    """A follower hands writes to the leader: same method, path, body and credentials."""

    FORWARDED = (b"authorization", b"content-type", b"x-request-id", b"accept")

    def __init__(self, member: Member) -> None:
        self._member = member
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=1.0))

    @property
    def active(self) -> bool:
        """True while this daemon is not the leader (its writes must go elsewhere)."""
        return self._member.role != "leader"

    async def forward(
        self, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """The leader's answer, or None when there is no leader to ask right now."""
        leader = self._member.leader_address
        if not leader or self._member.role == "candidate":
            return None
        url = leader + path + (("?" + query.decode("latin-1")) if query else "")
        sent = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in headers if k in self.FORWARDED
        ]
        try:
            response = await self._client.request(method, url, headers=sent, content=body)
        except httpx.HTTPError as exc:
            log.info("leader %s unreachable: %s", leader, type(exc).__name__)
            return None
        kept = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.items()
            if k in ("content-type", "retry-after", "www-authenticate")
        ]
        return (
            response.status_code,
            response.content,
            [*kept, (b"x-ratelord-leader", leader.encode())],
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def _listen(url: str) -> psycopg.Connection[Any]:
    conn = connect(url)
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


def _wait_for_notice(conn: psycopg.Connection[Any], timeout: float) -> None:
    """Block until the leader appended something (or ``timeout``); drain every notice."""
    for _ in conn.notifies(timeout=timeout, stop_after=1):
        pass
