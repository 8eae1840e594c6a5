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

import httpx2
import psycopg

from ratelord.asgi.http import Response
from ratelord.daemon.config import Settings
from ratelord.engine.events import Event
from ratelord.schema import ClusterHealth
from ratelord.service import Unavailable
from ratelord.store.postgres import CHANNEL, EventReader, Leadership, PostgresStore, connect

log = logging.getLogger("ratelord.cluster")

Role = Literal["leader", "follower", "candidate"]

#: Seconds between a follower's attempts at the leader lock (failover must be < 5 s).
ELECTION_EVERY = 0.5
#: Longest a follower waits for a notification before it reads the tail anyway.
TAIL_WAIT = 0.5
#: Seconds between the leader's checks that its lock session is still alive.
LEASE_CHECK_EVERY = 0.5


class Member:
    """Follows the log until it wins the lock, then calls ``on_lead`` and guards the lease."""

    def __init__(
        self,
        store: PostgresStore,
        address: str,
        *,
        apply: Callable[[list[Event]], None],
        on_lead: Callable[[], Awaitable[None]],
        writing: Callable[[], bool],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.address = address
        self._apply = apply
        self._on_lead = on_lead
        self._writing = writing
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

    def status(self) -> ClusterHealth:
        following = self.role == "follower"
        return ClusterHealth(
            role=self.role,
            leader=self.address if self.role == "leader" else self.leader_address,
            epoch=self.epoch,
            applied_seq=self.store.high_water if self.role == "leader" else self.applied_seq,
            replication_lag_events=self._lag_events if following else 0,
            replication_lag_seconds=round(time.monotonic() - self._tail_checked, 3)
            if following
            else 0.0,
        )

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Follow until elected, then lead until the lock is lost (:meth:`close` releases it).

        A member that loses the database stops, as a deposed leader does: serving reads
        that silently fall behind would be worse than a restart by the supervisor.
        """
        try:
            if not await asyncio.to_thread(self._leadership.try_acquire):
                await self._catch_up()  # learn who leads before saying we follow
                self.role = "follower"
                log.info("following the cluster's leader")
                await self._follow()
            await self._lead()
        except psycopg.Error as exc:
            log.error("lost the cluster's database (%s); stopping", type(exc).__name__)
        _stop_this_daemon()

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
        self.epoch, self.leader_address = epoch, leader or None
        if events:
            self._apply(events)
            self.applied_seq = events[-1].seq
            self.store.high_water = self.applied_seq
        self._lag_events = max(0, tail - self.applied_seq)
        self._tail_checked = time.monotonic()

    def _read_tail(self) -> tuple[list[Event], tuple[int, str], int]:
        leader = self.store.leader()
        events = [event for batch in self._reader.read(self.applied_seq) for event in batch]
        tail = self._reader.high_water()  # what was committed while we read
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
        while self._writing() and await asyncio.to_thread(self._leadership.alive):
            await asyncio.sleep(LEASE_CHECK_EVERY)
        # Fenced, or the lock's session is gone: another member leads (or will).
        log.error("no longer the leader; stopping (a supervisor restarts us as a follower)")

    async def _catch_up_to(self, seq: int) -> None:
        while self.applied_seq < seq:
            await self._catch_up()

    def close(self) -> None:
        """Give up the lock (after the last append) and the reader's connections."""
        self._leadership.release()
        self._reader.close()


class Forwarder:
    """A follower hands writes to the leader: same method, path, body and credentials."""

    FORWARDED = (b"authorization", b"content-type", b"x-request-id", b"accept")

    def __init__(self, member: Member) -> None:
        self._member = member
        self._client = httpx2.AsyncClient(timeout=httpx2.Timeout(10.0, connect=1.0))

    @property
    def active(self) -> bool:
        """True while this daemon is not the leader (its writes must go elsewhere)."""
        return self._member.role != "leader"

    @staticmethod
    def applies_to(method: str) -> bool:
        return method not in ("GET", "HEAD")

    async def forward(
        self, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Response:
        """The leader's answer; :class:`Unavailable` (503) when no leader can be asked now."""
        leader = self._member.leader_address
        if not leader or self._member.role == "candidate":
            raise Unavailable("the cluster is electing a leader; retry shortly")
        url = leader + path + (("?" + query.decode("latin-1")) if query else "")
        sent = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in headers if k in self.FORWARDED
        ]
        try:
            answer = await self._client.request(method, url, headers=sent, content=body)
        except httpx2.HTTPError as exc:
            log.info("leader %s unreachable: %s", leader, type(exc).__name__)
            raise Unavailable(
                f"the cluster's leader {leader} is unreachable; retry shortly"
            ) from None
        kept = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in answer.headers.items()
            if k in ("retry-after", "www-authenticate")
        ]
        return Response(
            answer.content,
            answer.status_code,
            content_type=answer.headers.get("content-type", "application/json").encode("latin-1"),
            headers=[*kept, (b"x-ratelord-leader", leader.encode())],
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def advertised(settings: Settings) -> str:
    """The URL other members forward writes to: ``cluster.advertise``, else bind and port."""
    if settings.cluster.advertise:
        return settings.cluster.advertise.rstrip("/")
    scheme = "https" if settings.server.tls_cert else "http"
    host = f"[{settings.bind}]" if ":" in settings.bind else settings.bind
    return f"{scheme}://{host}:{settings.port}"


def _stop_this_daemon() -> None:
    """A graceful stop, as on SIGTERM (the supervisor brings us back as a follower)."""
    os.kill(os.getpid(), signal.SIGTERM)


def _listen(url: str) -> psycopg.Connection[Any]:
    conn = connect(url)
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


def _wait_for_notice(conn: psycopg.Connection[Any], timeout: float) -> None:
    """Block until the leader appended something (or ``timeout``); drain every notice."""
    for _ in conn.notifies(timeout=timeout, stop_after=1):
        pass
