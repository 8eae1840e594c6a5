"""The daemon's lifecycle: boot, background loops, snapshots, shutdown.

Writes go through the :class:`~ratelord.service.CommandService` (``runtime.commands``);
this module only runs things.  ``main.py`` opens the store (refusing a database
another daemon holds) and builds the runtime; the HTTP server then answers
``/v1/health`` with ``initializing`` (and write endpoints with 503) while
:meth:`Runtime.boot` replays the log in a worker thread.  Shutdown stops
intake, lets in-flight requests finish, appends ``system_stopped``, writes a
snapshot, checkpoints the WAL and closes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from ratelord import __version__
from ratelord.daemon.config import Settings, price_table
from ratelord.daemon.providers import configure
from ratelord.daemon.retention import Archiver, archive_directory, read_archive
from ratelord.daemon.threads import to_thread_finished
from ratelord.engine.clock import iso
from ratelord.engine.core import Engine
from ratelord.engine.diagnosis import describe, failing
from ratelord.engine.events import Event, SnapshotWrittenPayload, SystemStartedPayload
from ratelord.engine.policy import CompiledPolicy, default_policy, load_policy_file
from ratelord.engine.state import State
from ratelord.providers.base import Provider
from ratelord.schema import Health
from ratelord.service import CommandService, Unavailable, build_engine
from ratelord.service.leasing import Leasing
from ratelord.service.poller import Poller
from ratelord.store import GroupCommitWriter, SQLiteStore
from ratelord.store.archived import Archive, ArchivedLog, ArchivedStore
from ratelord.store.port import EventQueries, EventStore, Maintenance
from ratelord.store.replay import load, replay_into
from ratelord.store.writer import StoreClosed

if TYPE_CHECKING:
    from ratelord.daemon.cluster import Member

log = logging.getLogger("ratelord.daemon")

#: Seconds between passive WAL checkpoints.  A checkpoint fsyncs the WAL and the
#: database, and on a slow disk that flush delays the commits running beside it:
#: measured on this project's 2-core VM at one connection, checkpointing every
#: second gave a median p99 of 3.8 ms, every five seconds 2.3 ms.
CHECKPOINT_EVERY = 5.0
HOUSEKEEPING_EVERY = 5.0
#: Seconds shutdown waits for a faulted store (a foreign lock, a full disk) to take
#: its last events before it stops without them.
STOP_WAIT = 30.0
#: How long a snapshot waits for the writer to run dry before giving up (busy).
DRAIN_TIMEOUT = 1.0


class Adapter(Protocol):
    """Something started once the daemon is ready, before the pollers (mock spending, demo)."""

    async def start(self, runtime: Runtime) -> None: ...


def initial_policy(settings: Settings) -> CompiledPolicy:
    if settings.policy:
        return load_policy_file(settings.policy)  # PolicyError stops start-up
    return default_policy()


class Runtime:
    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        *,
        policy: CompiledPolicy | None = None,
        adapters: Sequence[Adapter] = (),
        wall_clock: Callable[[], float] = time.time,
        background: bool = True,
    ) -> None:
        """``background=False`` (in-process tests on a manual clock): no loops run by
        themselves; pollers are made but only poll when told (``poll_once``)."""
        self.settings = settings
        self.store = store
        self.now = wall_clock
        self.status = "initializing"
        self.started_at = wall_clock()
        self._started_monotonic = time.monotonic()
        # A local SQLite commit is cheapest on the loop; a network round trip goes to the
        # writer's thread, so that a stalled database server never freezes the loop.
        inline = isinstance(store, SQLiteStore) and settings.store.synchronous == "normal"
        self.writer = GroupCommitWriter(store, wall_clock=wall_clock, inline=inline)
        configured = configure(settings.providers, wall_clock())
        self.providers: dict[str, Provider] = {pid: c.provider for pid, c in configured.items()}
        self._poll_every = {pid: c.poll_interval for pid, c in configured.items()}
        engine = build_engine(
            settings.engine,
            policy or initial_policy(settings),
            workloads=settings.workloads,
            default_windows={pid: p.default_window_seconds for pid, p in self.providers.items()},
            budgets=settings.budgets,
            prices=price_table(settings),
        )
        self.commands = CommandService(
            engine,
            self.writer.append,
            wall_clock,
            policy_file=settings.policy,
            guard=self.require_ready,
        )
        self.commands.identity_listeners.append(self._identity_changed)
        self.leasing = Leasing(self.commands)
        self.adapters = list(adapters)
        self.background = background
        self.pollers: dict[str, Poller] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = asyncio.Event()
        self._last_snapshot_seq = 0
        self.boot_error: str | None = None
        self.boot_seconds = 0.0
        self.replayed = 0
        self._reader: EventQueries | None = None
        self._boot_started = time.perf_counter()
        #: this daemon's place in a cluster (a PostgreSQL store), else None
        self.member = self._cluster_member()
        #: events moved out of the table into segment files (retention)
        self.archive = Archive(archive_directory(settings))
        self.archiver = Archiver(self)

    def _cluster_member(self) -> Member | None:
        if isinstance(self.store, SQLiteStore):
            return None  # one machine: this daemon is the writer
        from ratelord.daemon.cluster import Member, advertised
        from ratelord.store.postgres import PostgresStore

        assert isinstance(self.store, PostgresStore)
        return Member(
            self.store,
            advertised(self.settings),
            apply=self._apply_tail,
            on_lead=self._lead,
            writing=lambda: self.writer.failed is None,
            wall_clock=self.now,
        )

    @property
    def engine(self) -> Engine:
        return self.commands.engine

    @property
    def policy(self) -> CompiledPolicy:
        return self.engine.policy

    # ------------------------------------------------------------------ start-up

    async def boot(self) -> None:
        """Replay, start the writer, the adapters and the pollers; the server already answers."""
        try:
            await self._boot()
        except Exception as exc:  # say why instead of staying "initializing" forever
            self.boot_error = f"start-up failed: {exc}"
            log.exception("start-up failed")

    async def _boot(self) -> None:
        self._boot_started = time.perf_counter()
        await asyncio.to_thread(read_archive, self)
        loaded = await asyncio.to_thread(load, ArchivedStore(self.store, self.archive))
        for warning in loaded.warnings:
            log.warning(warning)
        self.replayed = loaded.replayed
        self.engine.state = loaded.state
        self._last_snapshot_seq = loaded.snapshot_seq
        if self.member is None:
            await self._lead()
            return
        # A cluster member serves reads at once and leads only once it wins the lock.
        self.status = "ok"
        self.boot_seconds = time.perf_counter() - self._boot_started
        log.info(
            "replayed %d events in %.3fs; joining the cluster", self.replayed, self.boot_seconds
        )
        self.spawn(self.member.run(), "cluster")

    def _apply_tail(self, events: list[Event]) -> None:
        """A follower applies what the leader appended, and tells its live streams."""
        apply = self.engine.state.apply
        for event in events:
            apply(event)
        self.writer.announce(events)

    async def _lead(self) -> None:
        """Start writing: the writer, ``system_started``, adapters, pollers, loops."""
        loaded_seq = self.store.high_water
        self.writer.start()
        now = self.now()
        events = self.engine.start(
            now,
            SystemStartedPayload(
                version=__version__,
                pid=os.getpid(),
                db=self.store_name(),
                replayed=self.replayed,
                snapshot_seq=self._last_snapshot_seq,
                from_seq=loaded_seq,
            ),
        )
        events += self.engine.set_policy(self.engine.policy, now)
        await self.commands.commit(events)
        self.status = "ok"
        await self.leasing.upkeep()  # leases whose time ran out while the daemon was down
        for adapter in self.adapters:
            await adapter.start(self)
        for record in list(self.engine.state.identities.values()):
            self._start_poller(record.identity_id)
        if self.background:
            self.spawn(self._checkpoint_loop(), "checkpoint")
            self.spawn(self._housekeeping_loop(), "housekeeping")
            self.spawn(self.leasing.loop(), "lease-upkeep")
            every = self.settings.retention and self.settings.retention.every_seconds
            if every:
                self.spawn(self.archiver.loop(every), "retention")
        if self.member is None:
            self.boot_seconds = time.perf_counter() - self._boot_started
        if self.background:
            # The replayed projections live as long as the daemon: keep the cyclic GC
            # from re-scanning them (its full passes showed up as p99 latency spikes).
            gc.collect()
            gc.freeze()
        log.info(
            "ready: replayed %d events in %.3fs (snapshot at seq %d)",
            self.replayed,
            self.boot_seconds,
            self._last_snapshot_seq,
        )

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a background task until shutdown."""
        self._tasks.append(asyncio.get_running_loop().create_task(coroutine, name=name))

    def _identity_changed(self, identity_id: str) -> None:
        poller = self.pollers.get(identity_id)
        if poller is not None:
            poller.poke()
        else:
            self._start_poller(identity_id)

    def _start_poller(self, identity_id: str) -> None:
        record = self.engine.state.identities[identity_id]
        provider = self.providers.get(record.provider_id)
        if provider is None or record.status == "revoked" or identity_id in self.pollers:
            return
        poller = Poller(
            self.commands, provider, identity_id, self._poll_every[provider.provider_id]
        )
        self.pollers[identity_id] = poller
        if self.background:
            poller.start()

    # ------------------------------------------------------------------ writes

    def require_ready(self) -> None:
        if self.status == "initializing":
            raise Unavailable("ratelord-d is replaying its event log; retry shortly")
        if self.status == "stopping":
            raise Unavailable("ratelord-d is shutting down", retry_after=5)
        if self.member is not None and self.member.role != "leader":
            leader = self.member.leader_address or "not known yet"
            raise Unavailable(f"this daemon follows the cluster's leader ({leader})")
        if self.writer.failed is not None:
            raise Unavailable("the event store is read-only after a write failure", retry_after=30)
        safe_mode = self.writer.refuses_writes()
        if safe_mode is not None:
            raise Unavailable(safe_mode, retry_after=5)

    # ------------------------------------------------------------------ reads

    def reader(self) -> EventQueries:
        if self._reader is None:
            self._reader = self.store.reader()
        return self._reader

    def store_name(self) -> str:
        """Where the log lives, fit for logs and events (a URL's password is masked)."""
        if isinstance(self.store, SQLiteStore):
            return str(self.store.path)
        from ratelord.store.postgres import PostgresStore, redact

        return redact(self.store.url) if isinstance(self.store, PostgresStore) else "?"

    def high_water(self) -> int:
        return self.store.high_water

    def uptime(self) -> float:
        return time.monotonic() - self._started_monotonic

    def health(self) -> Health:
        reasons: list[str] = []
        status = self.status
        if self.boot_error:
            status, reasons = "degraded", [self.boot_error]
        reasons += [describe(record) for record in failing(self.engine.state)]
        if self.writer.failed is not None:
            reasons.append(f"event store read-only: {self.writer.failed}")
        elif self.writer.fault is not None:
            reasons.append(f"event store: {self.writer.fault.reason(time.monotonic())}")
        if status == "ok" and reasons:
            status = "degraded"
        return Health(
            status=status,  # type: ignore[arg-type]
            version=__version__,
            uptime_seconds=round(self.uptime(), 3),
            started_at=iso(self.started_at) or "",
            high_water_seq=self.store.high_water,
            reasons=reasons,
            policy_version=self.policy.version,
            cluster=self.member.status() if self.member is not None else None,
        )

    # ------------------------------------------------------------------ background

    async def _checkpoint_loop(self) -> None:
        checkpointer: Maintenance = self.store.checkpointer()
        last = self.writer.appended
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_EVERY)
                if self.writer.appended != last:
                    appended = self.writer.appended
                    try:
                        await to_thread_finished(checkpointer.run)
                    except sqlite3.Error as exc:  # a full disk; the WAL keeps the events
                        log.warning("WAL checkpoint failed, will retry: %s", exc)
                    else:
                        last = appended
        finally:
            checkpointer.close()

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_EVERY)
            try:
                await self.commands.refresh_forecasts()
            except Unavailable:
                continue
            if self.store.high_water - self._last_snapshot_seq >= (
                self.settings.store.snapshot_every_events
            ):
                await self.snapshot()

    async def _drained(self) -> None:
        """Until every event the engine applied is durable (nothing queued, nothing in flight)."""
        while not self.writer.idle:
            await self.writer.drained()

    async def snapshot(self) -> int | None:
        """Checkpoint the projections at a moment when every applied event is durable."""
        writer, store = self.writer, self.store
        if not writer.running:
            return None
        try:
            await asyncio.wait_for(self._drained(), DRAIN_TIMEOUT)
        except TimeoutError:
            return None
        seq, data = store.high_water, self.engine.state.encode()
        await writer.run(store.write_snapshot, seq, self.now(), data)
        self._last_snapshot_seq = seq
        await self.commands.commit(
            [self.engine.emit(SnapshotWrittenPayload(seq=seq, bytes=len(data)), self.now())]
        )
        log.info("snapshot written at seq %d (%d bytes)", seq, len(data))
        return seq

    async def rebuild(self, progress: Callable[[int, int], None]) -> dict[str, Any]:
        """Drop snapshots, replay everything, compare with the live state, snapshot anew."""
        writer, store = self.writer, self.store
        self.require_ready()
        await self._drained()
        upto, live = store.high_water, self.engine.state.encode()
        started = time.perf_counter()
        await asyncio.to_thread(self.archive.check)  # before dropping anything
        dropped = await writer.run(store.drop_snapshots)

        def replay_all() -> State:
            reader = store.reader()
            try:
                state = State()
                replay_into(state, ArchivedLog(reader, self.archive), 0, upto, progress)
                return state
            finally:
                reader.close()

        rebuilt = await asyncio.to_thread(replay_all)
        seconds = time.perf_counter() - started
        rebuilt_bytes = rebuilt.encode()
        equal = rebuilt_bytes == live
        differences = [] if equal else _differences(rebuilt, State.decode(live))
        await writer.run(store.write_snapshot, upto, self.now(), rebuilt_bytes)
        self._last_snapshot_seq = upto
        return {
            "events": upto,
            "seconds": round(seconds, 3),
            "equal": equal,
            "snapshot_seq": upto,
            "snapshots_dropped": dropped,
            "differences": differences,
        }

    # ------------------------------------------------------------------ shutdown

    def begin_shutdown(self) -> None:
        """Called from the signal handler: stop taking intents, end live streams."""
        if self.status == "ok":
            self.status = "stopping"
        self._stopping.set()

    async def _final_writes(self) -> None:
        await self.snapshot()
        await self.commands.commit(self.engine.stop(self.now(), "signal"))

    @property
    def stopping(self) -> asyncio.Event:
        return self._stopping

    async def shutdown(self) -> None:
        self.begin_shutdown()
        for poller in self.pollers.values():
            await poller.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for provider in self.providers.values():
            await provider.aclose()
        if self.writer.running:
            try:  # a store fault is waited out, but not forever
                await asyncio.wait_for(self._final_writes(), STOP_WAIT)
            except (TimeoutError, StoreClosed):
                lost = self.writer.abandon()
                log.error(
                    "stopping without system_stopped: the event store stayed unwritable "
                    "for %.0fs (%d events not written)",
                    STOP_WAIT,
                    lost,
                )
        await self.writer.close()
        if self.member is not None:  # only now: a successor must not fence our last appends
            await asyncio.to_thread(self.member.close)
        if self._reader is not None:
            self._reader.close()
        self.store.close()
        log.info("stopped")


def _differences(rebuilt: State, live: State) -> list[str]:
    a, b = msgspec.to_builtins(rebuilt), msgspec.to_builtins(live)
    return [key for key in a if a[key] != b.get(key)][:20]
