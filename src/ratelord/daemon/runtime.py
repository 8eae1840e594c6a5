"""The daemon assembled: store, engine, providers and pollers, and their lifecycle.

Start-up opens the store (refusing a database another daemon holds), then
replays the log in a worker thread while the HTTP server already answers
``/v1/health`` with ``initializing`` (and write endpoints with 503).  Shutdown
stops intake, lets in-flight requests finish, appends ``system_stopped``,
writes a snapshot, checkpoints the WAL and closes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ratelord import __version__
from ratelord.daemon.config import Settings
from ratelord.daemon.leasing import Leasing
from ratelord.daemon.poller import Poller
from ratelord.engine.arbitration import decide
from ratelord.engine.clock import iso
from ratelord.engine.core import Engine, EngineConfig, EngineError
from ratelord.engine.events import Event, EventType
from ratelord.engine.observe import observe_usage
from ratelord.engine.policy import CompiledPolicy, PolicyError, default_policy, load_policy_file
from ratelord.engine.state import State
from ratelord.headers import pool_observations
from ratelord.providers.base import Provider
from ratelord.providers.mock import MockProvider
from ratelord.providers.secrets import SecretError, fingerprint, resolve
from ratelord.schema import (
    Decision,
    Health,
    Identity,
    IdentityCreate,
    IntentRequest,
    UsageAccepted,
    UsageReport,
)
from ratelord.store import Checkpointer, EventReader, GroupCommitWriter, SQLiteStore
from ratelord.store.replay import load, replay_into
from ratelord.store.writer import StoreClosed

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


class NotReady(Exception):
    """The daemon cannot take writes now (initializing, stopping, or the store failed)."""

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Runtime:
    def __init__(self, settings: Settings, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.now = wall_clock
        self.status = "initializing"
        self.started_at = wall_clock()
        self._started_monotonic = time.monotonic()
        self.policy = self._initial_policy()
        self.store: SQLiteStore | None = None
        self.writer: GroupCommitWriter | None = None
        self.engine = Engine(self._engine_config(), self.policy)
        self.providers: dict[str, Provider] = {}
        self.pollers: dict[str, Poller] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = asyncio.Event()
        self._last_snapshot_seq = 0
        self.boot_error: str | None = None
        self.boot_seconds = 0.0
        self.replayed = 0
        self._reader: EventReader | None = None
        self.leasing = Leasing(self)

    # ------------------------------------------------------------------ start-up

    def _initial_policy(self) -> CompiledPolicy:
        if self.settings.policy:
            return load_policy_file(self.settings.policy)  # PolicyError stops start-up
        return default_policy()

    def _engine_config(self) -> EngineConfig:
        e = self.settings.engine
        return EngineConfig(
            workloads=self.settings.workloads,
            drift_threshold=e.drift_threshold,
            stale_after_seconds=e.stale_after_seconds,
            quarantine_after_auth_failures=e.quarantine_after_auth_failures,
        )

    def open_store(self) -> None:
        """Open (and lock) the database; raises StoreError with a clear message."""
        os.umask(0o077)  # WAL and SHM files too: owner only
        self.store = SQLiteStore(self.settings.db, synchronous=self.settings.store.synchronous)

    async def boot(self) -> None:
        """Replay, start the writer and the pollers; the server is already answering."""
        try:
            await self._boot()
        except Exception as exc:  # say why instead of staying "initializing" forever
            self.boot_error = f"start-up failed: {exc}"
            log.exception("start-up failed")

    async def _boot(self) -> None:
        assert self.store is not None
        started = time.perf_counter()
        loaded = await asyncio.to_thread(load, self.store)
        for warning in loaded.warnings:
            log.warning(warning)
        self.replayed = loaded.replayed
        self.engine = Engine(self._engine_config(), self.policy, state=loaded.state)
        self._last_snapshot_seq = loaded.snapshot_seq
        self.writer = GroupCommitWriter(
            self.store,
            wall_clock=self.now,
            inline=self.settings.store.synchronous == "normal",
        )
        self.writer.start()
        self._providers()
        self.engine.default_windows = {
            pid: p.default_window_seconds for pid, p in self.providers.items()
        }
        now = self.now()
        events = self.engine.start(
            now,
            {
                "version": __version__,
                "pid": os.getpid(),
                "db": str(self.settings.db),
                "replayed": loaded.replayed,
                "snapshot_seq": loaded.snapshot_seq,
            },
        )
        events += self.engine.set_policy(self.policy, now)
        await self.commit(events)
        self.status = "ok"
        await self.leasing.upkeep()  # leases whose time ran out while the daemon was down
        if self.settings.demo:
            from ratelord.daemon.demo import register_demo_identities

            await register_demo_identities(self)
        for record in list(self.engine.state.identities.values()):
            self._start_poller(record.identity_id)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._checkpoint_loop(), name="checkpoint"))
        self._tasks.append(loop.create_task(self._housekeeping_loop(), name="housekeeping"))
        self._tasks.append(loop.create_task(self.leasing.loop(), name="lease-upkeep"))
        if self.settings.demo:
            from ratelord.daemon.demo import demo_traffic

            self._tasks.append(loop.create_task(demo_traffic(self), name="demo-traffic"))
        self.boot_seconds = time.perf_counter() - started
        # The replayed projections live as long as the daemon: keep the cyclic GC
        # from re-scanning them (its full passes showed up as p99 latency spikes).
        gc.collect()
        gc.freeze()
        log.info(
            "ready: replayed %d events in %.3fs (snapshot at seq %d)",
            loaded.replayed,
            self.boot_seconds,
            loaded.snapshot_seq,
        )

    def _providers(self) -> None:
        cfg = self.settings.providers
        if cfg.mock is not None:
            mock = MockProvider(cfg.mock, start=self.now())
            self._restore_mock(mock)
            self.providers["mock"] = mock
        if cfg.github is not None:
            from ratelord.providers.github import GitHubProvider

            self.providers["github"] = GitHubProvider(
                base_url=cfg.github.base_url, timeout_seconds=cfg.github.timeout_seconds
            )

    def _restore_mock(self, mock: MockProvider) -> None:
        """The mock keeps no state of its own: resume its pools from what the log says."""
        for pool in self.engine.state.pools.values():
            if pool.provider_id == "mock" and pool.reset_at is not None:
                mock.restore(pool.principal, pool.resource, pool.remaining, pool.reset_at)

    def _poll_interval(self, provider_id: str) -> float:
        cfg = self.settings.providers
        if provider_id == "mock" and cfg.mock is not None:
            return cfg.mock.poll_interval_seconds
        if provider_id == "github" and cfg.github is not None:
            return cfg.github.poll_interval_seconds
        return 60.0

    def _start_poller(self, identity_id: str) -> None:
        record = self.engine.state.identities[identity_id]
        provider = self.providers.get(record.provider_id)
        if provider is None or record.status == "revoked" or identity_id in self.pollers:
            return
        poller = Poller(self, provider, identity_id, self._poll_interval(record.provider_id))
        self.pollers[identity_id] = poller
        poller.start()

    # ------------------------------------------------------------------ writes

    @property
    def accepting_writes(self) -> bool:
        writer = self.writer
        return (
            self.status == "ok"
            and writer is not None
            and writer.failed is None
            and writer.refuses_writes() is None
        )

    def require_ready(self) -> None:
        if self.status == "initializing":
            raise NotReady("ratelord-d is replaying its event log; retry shortly")
        if self.status == "stopping":
            raise NotReady("ratelord-d is shutting down", retry_after=5)
        if self.writer is None or self.writer.failed is not None:
            raise NotReady("the event store is read-only after a write failure", retry_after=30)
        safe_mode = self.writer.refuses_writes()
        if safe_mode is not None:
            raise NotReady(safe_mode, retry_after=5)

    async def commit(self, events: list[Event]) -> list[Event]:
        if not events:
            return []
        assert self.writer is not None
        return await self.writer.append(events)

    async def intent(self, request: IntentRequest) -> Decision:
        self.require_ready()
        now = self.now()
        decision, events = decide(self.engine, request, now)
        await self.commit(events)
        decided = next(e for e in reversed(events) if e.event_type == EventType.INTENT_DECIDED)
        errors = decided.payload.get("policy_errors")
        if errors:
            log.warning(
                "policy rules failed at run time for intent %s: %s",
                decision.intent_id,
                "; ".join(errors),
            )
        if decided.payload["charges"]:
            self.spend_at_mock(decided.payload["charges"], decision.modifications.wait_seconds)
        return decision

    def spend_at_mock(self, charges: dict[str, float], wait: float) -> None:
        """The mock provider stands for the real API: the agent calls it once its wait is over."""
        mock = self.providers.get("mock")
        if not isinstance(mock, MockProvider):
            return
        pools = [
            (self.engine.state.pools[pool_id], cost)
            for pool_id, cost in charges.items()
            if pool_id in self.engine.state.pools
            and self.engine.state.pools[pool_id].provider_id == "mock"
        ]

        def spend() -> None:
            for pool, cost in pools:
                mock.spend(pool.principal, pool.resource, cost, self.now())

        if wait > 0:
            asyncio.get_running_loop().call_later(wait, spend)
        else:
            spend()

    async def usage(self, report: UsageReport) -> UsageAccepted:
        self.require_ready()
        now = self.now()
        observations = (
            pool_observations(report.headers, now=now, path=report.path, model=report.model)
            if report.headers
            else []
        )
        accepted, events = observe_usage(self.engine, report, observations, now)
        await self.commit(events)
        return accepted

    async def register(self, request: IdentityCreate) -> Identity:
        self.require_ready()
        token_fingerprint = self._fingerprint(request.secret_ref)
        events = self.engine.register_identity(
            request, self.now(), token_fingerprint=token_fingerprint
        )
        await self.commit(events)
        self._start_poller(request.identity_id)
        return self.engine.identity_view(self.engine.identity(request.identity_id))

    def _fingerprint(self, secret_ref: str | None) -> str | None:
        if secret_ref is None:
            return None
        try:
            return fingerprint(resolve(secret_ref))
        except SecretError as exc:  # registered anyway; polling will report it
            log.warning("secret reference not resolvable yet: %s", exc)
            return None

    async def change_identity(
        self, identity_id: str, action: str, payload: dict[str, Any]
    ) -> Identity:
        self.require_ready()
        if action == "rotate" and payload.get("secret_ref") is None:
            payload["secret_ref"] = self.engine.identity(identity_id).secret_ref
        if action == "rotate":
            payload["token_fingerprint"] = self._fingerprint(payload.get("secret_ref"))
        events = self.engine.change_identity(identity_id, action, self.now(), payload)
        await self.commit(events)
        poller = self.pollers.get(identity_id)
        if poller is not None:
            poller.poke()
        return self.engine.identity_view(self.engine.identity(identity_id))

    def mock_provider(self) -> MockProvider:
        mock = self.providers.get("mock")
        if not isinstance(mock, MockProvider):
            raise EngineError(
                "no_mock_provider", "the mock provider is not configured (providers.mock)", 404
            )
        return mock

    # ------------------------------------------------------------------ policy

    async def reload_policy(self, origin: str) -> tuple[bool, str]:
        """Reload the policy file; a bad file is rejected and the old policy stays."""
        self.require_ready()
        source = self.settings.policy
        now = self.now()
        try:
            policy = load_policy_file(source) if source else default_policy()
        except PolicyError as exc:
            log.error("policy rejected (%s), keeping %s: %s", origin, self.policy.version, exc)
            await self.commit(self.engine.reject_policy(exc, source or "built-in", now))
            return False, str(exc)
        self.policy = policy
        await self.commit(self.engine.set_policy(policy, now))
        log.info("policy %s loaded from %s (%s)", policy.version, policy.source, origin)
        return True, policy.version

    # ------------------------------------------------------------------ reads

    def reader(self) -> EventReader:
        if self._reader is None:
            assert self.store is not None
            self._reader = self.store.reader()
        return self._reader

    def high_water(self) -> int:
        return self.store.high_water if self.store is not None else 0

    def uptime(self) -> float:
        return time.monotonic() - self._started_monotonic

    def health(self) -> Health:
        reasons: list[str] = []
        status = self.status
        if self.boot_error:
            status, reasons = "degraded", [self.boot_error]
        for provider in self.engine.state.providers.values():
            if provider.degraded:
                failing = ", ".join(f"{i} ({k})" for i, k in provider.failing_identities.items())
                reasons.append(
                    f"provider {provider.provider_id} failing for {failing}: "
                    f"{provider.last_error_message}"
                )
        if self.writer is not None and self.writer.failed is not None:
            reasons.append(f"event store read-only: {self.writer.failed}")
        elif self.writer is not None and self.writer.fault is not None:
            reasons.append(f"event store: {self.writer.fault.reason(time.monotonic())}")
        if status == "ok" and reasons:
            status = "degraded"
        return Health(
            status=status,  # type: ignore[arg-type]
            version=__version__,
            uptime_seconds=round(self.uptime(), 3),
            started_at=iso(self.started_at) or "",
            high_water_seq=self.store.high_water if self.store else 0,
            reasons=reasons,
            policy_version=self.policy.version,
        )

    # ------------------------------------------------------------------ background

    async def _checkpoint_loop(self) -> None:
        assert self.store is not None and self.writer is not None
        checkpointer: Checkpointer = self.store.checkpointer()
        last = self.writer.appended
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_EVERY)
                if self.writer.appended != last:
                    appended = self.writer.appended
                    try:
                        await asyncio.to_thread(checkpointer.run)
                    except sqlite3.Error as exc:  # a full disk; the WAL keeps the events
                        log.warning("WAL checkpoint failed, will retry: %s", exc)
                    else:
                        last = appended
        finally:
            checkpointer.close()

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_EVERY)
            await self._refresh_idle_forecasts()
            if self._events_since_snapshot() >= self.settings.store.snapshot_every_events:
                await self.snapshot()

    async def _refresh_idle_forecasts(self) -> None:
        """Forecasts decay with silence: let idle pools' forecasts catch up."""
        if self.accepting_writes:
            await self.commit(
                self.engine.refresh_forecasts(list(self.engine.state.pools), self.now())
            )

    def _events_since_snapshot(self) -> int:
        return (self.store.high_water if self.store else 0) - self._last_snapshot_seq

    async def snapshot(self) -> int | None:
        """Checkpoint the projections at a moment when every applied event is durable."""
        writer, store = self.writer, self.store
        if writer is None or store is None or writer.failed is not None:
            return None
        for _ in range(200):
            if writer.idle:
                break
            await asyncio.sleep(0.005)
        else:
            return None
        seq, data = store.high_water, self.engine.state.encode()
        await writer.run(store.write_snapshot, seq, self.now(), data)
        self._last_snapshot_seq = seq
        await self.commit(
            [
                self.engine.emit(
                    EventType.SNAPSHOT_WRITTEN, self.now(), {"seq": seq, "bytes": len(data)}
                )
            ]
        )
        log.info("snapshot written at seq %d (%d bytes)", seq, len(data))
        return seq

    async def rebuild(self, progress: Callable[[int, int], None]) -> dict[str, Any]:
        """Drop snapshots, replay everything, compare with the live state, snapshot anew."""
        writer, store = self.writer, self.store
        self.require_ready()
        assert writer is not None and store is not None
        while not writer.idle:
            await asyncio.sleep(0.005)
        upto, live = store.high_water, self.engine.state.encode()
        started = time.perf_counter()
        dropped = await writer.run(store.drop_snapshots)

        def replay_all() -> State:
            reader = store.reader()
            try:
                state = State()
                replay_into(state, reader, 0, upto, progress)
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
        await self.commit(self.engine.stop(self.now(), "signal"))

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
        if self.writer is not None and self.writer.failed is None:
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
        if self.writer is not None:
            await self.writer.close()
        if self._reader is not None:
            self._reader.close()
        if self.store is not None:
            self.store.close()
        log.info("stopped")


def _differences(rebuilt: State, live: State) -> list[str]:
    a, b = msgspec.to_builtins(rebuilt), msgspec.to_builtins(live)
    return [key for key in a if a[key] != b.get(key)][:20]
