"""Group commit: order, durability before the answer, and who touches the connection when."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from ratelord.store import GroupCommitWriter, SQLiteStore
from ratelord.store.writer import StoreClosed
from tests.unit.test_store import make


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "log.db")
    yield s
    s.close()


async def test_concurrent_appends_are_batched_and_keep_their_order(store: SQLiteStore) -> None:
    writer = GroupCommitWriter(store, inline_max_events=4)
    writer.start()
    results = await asyncio.gather(*(writer.append(make(2, start=2 * i)) for i in range(50)))
    await writer.close()
    assert [e.payload["i"] for batch in results for e in batch] == list(range(100))
    assert [e.seq for batch in results for e in batch] == list(range(1, 101))
    assert writer.commits < 50  # the callers shared commits
    read = [e for chunk in store.read(0) for e in chunk]
    assert [e.payload["i"] for e in read] == list(range(100))


async def test_small_batches_commit_on_the_loop_large_ones_on_the_thread(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    append = store.append

    def spy(events, ts_ingest):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return append(events, ts_ingest)

    monkeypatch.setattr(store, "append", spy)
    writer = GroupCommitWriter(store, inline_max_events=3)
    writer.start()
    await writer.append(make(3))
    await writer.append(make(200, start=3))  # bigger than one multi-row statement, too
    await writer.close()
    assert threads[0] == threading.main_thread().name
    assert threads[1].startswith("ratelord-writer")
    assert store.high_water == 203
    assert [e.payload["i"] for chunk in store.read(0) for e in chunk] == list(range(203))


async def test_jobs_run_after_earlier_appends_and_alone(store: SQLiteStore) -> None:
    writer = GroupCommitWriter(store, inline_max_events=1000)
    writer.start()
    seen: list[int] = []
    pending = [asyncio.ensure_future(writer.append(make(1, start=i))) for i in range(5)]
    job = asyncio.ensure_future(writer.run(lambda: seen.append(store.high_water) or "done"))
    later = asyncio.ensure_future(writer.append(make(1, start=5)))
    assert await job == "done"
    await asyncio.gather(*pending, later)
    await writer.close()
    assert seen == [5]  # everything queued before the job, nothing queued after it
    assert store.high_water == 6


async def test_a_failing_job_reaches_its_caller_and_the_log_goes_on(store: SQLiteStore) -> None:
    writer = GroupCommitWriter(store)
    writer.start()

    def broken() -> None:
        raise ValueError("snapshot failed")

    with pytest.raises(ValueError, match="snapshot failed"):
        await writer.run(broken)
    assert [e.seq for e in await writer.append(make(1))] == [1]
    await writer.close()
    with pytest.raises(StoreClosed):
        await writer.append(make(1))
