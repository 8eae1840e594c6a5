"""The event store: group-commit append rate, replay rate, start-up with and without a snapshot.

Usage: python bench/bench_store.py [events]   (default 1,000,000)
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

from _harness import dump

from ratelord.engine.arbitration import decide
from ratelord.engine.clock import ManualClock
from ratelord.engine.core import Engine, EngineConfig
from ratelord.engine.events import IdFactory, SystemStartedPayload
from ratelord.engine.observe import observe_poll
from ratelord.engine.policy import default_policy
from ratelord.engine.state import State
from ratelord.providers.mock import (
    MockPoolConfig,
    MockPrincipalConfig,
    MockProvider,
    MockProviderConfig,
)
from ratelord.schema import IdentityCreate, IntentRequest
from ratelord.store import GroupCommitWriter, SQLiteStore
from ratelord.store.replay import load

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000


def realistic_log(store: SQLiteStore, target: int) -> float:
    """Fill ``store`` with intents and polls made by the real engine; returns seconds."""
    clock = ManualClock()
    mock = MockProvider(
        MockProviderConfig(
            principals={
                f"acct-{i}": MockPrincipalConfig(
                    pools={"requests": MockPoolConfig(limit=1e9, window_seconds=3600)}
                )
                for i in range(4)
            }
        ),
        start=clock.now(),
    )
    engine = Engine(EngineConfig(), default_policy(), ids=IdFactory("bench"))
    started = time.perf_counter()
    batch = []
    for i in range(4):
        batch += engine.register_identity(
            IdentityCreate(identity_id=f"id-{i}", provider_id="mock", principal=f"acct-{i}"),
            clock.now(),
        )
    written = 0
    n = 0
    while written + len(batch) < target:
        clock.advance(0.01)
        identity = f"id-{n % 4}"
        if n % 500 == 0:
            batch += observe_poll(engine, identity, mock.observe(f"acct-{n % 4}", clock.now()))
        events = decide(
            engine,
            IntentRequest(
                agent_id=f"agent-{n % 32}", identity_id=identity, resource="requests", cost=1.0
            ),
            clock.now(),
        ).events
        batch += events
        n += 1
        if len(batch) >= 5000:
            store.append(batch, clock.now())
            written += len(batch)
            batch = []
    store.append(batch, clock.now())
    return time.perf_counter() - started


async def group_commit_rate(path: Path, writers: int = 32, seconds: float = 5.0) -> dict:
    store = SQLiteStore(path)
    writer = GroupCommitWriter(store)
    writer.start()
    engine = Engine(EngineConfig(), default_policy(), ids=IdFactory("gc"))
    done = 0
    stop = time.perf_counter() + seconds

    async def one(k: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            events = engine.start(float(k), SystemStartedPayload(replayed=k))
            events += engine.stop(float(k), "bench")
            await writer.append(events)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(writers)))
    elapsed = time.perf_counter() - started
    commits = writer.commits
    await writer.close()
    store.close()
    return {
        "writers": writers,
        "acknowledged_appends_per_s": round(done / elapsed),
        "events_per_s": round(2 * done / elapsed),
        "commits_per_s": round(commits / elapsed),
        "mean_batch_events": round(2 * done / max(commits, 1), 1),
    }


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ratelord-bench-store-"))
    dump("group_commit", asyncio.run(group_commit_rate(workdir / "gc.db")))

    store = SQLiteStore(workdir / "big.db")
    made = realistic_log(store, EVENTS)
    events = store.high_water
    store.close()

    store = SQLiteStore(workdir / "big.db")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    loaded = load(store)
    replay_s = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store.write_snapshot(store.high_water, 0.0, loaded.state.encode())
    started = time.perf_counter()
    from_snapshot = load(store)
    snapshot_s = time.perf_counter() - started
    assert from_snapshot.state.encode() == loaded.state.encode()
    assert isinstance(from_snapshot.state, State)
    store.close()
    dump(
        "replay",
        {
            "events": events,
            "generated_in_s": round(made, 1),
            "full_replay_s": round(replay_s, 2),
            "replay_events_per_s": round(events / replay_s),
            "startup_from_snapshot_s": round(snapshot_s, 3),
            "max_rss_mb_after_replay": round(max(rss_before, rss_after) / 1024, 1),
            "db_size_mb": round((workdir / "big.db").stat().st_size / 2**20, 1),
        },
    )


if __name__ == "__main__":
    main()
