"""Group commit: order, batching, durability before the answer, and failures."""

from __future__ import annotations

import asyncio
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


@pytest.mark.parametrize("inline", [True, False], ids=["on-the-loop", "on-the-thread"])
async def test_concurrent_appends_share_commits_and_keep_their_order(
    store: SQLiteStore, inline: bool
) -> None:
    writer = GroupCommitWriter(store, inline=inline)
    writer.start()
    results = await asyncio.gather(*(writer.append(make(2, start=2 * i)) for i in range(50)))
    assert [e.seq for batch in results for e in batch] == list(range(1, 101))
    assert writer.commits < 50  # callers who arrived together shared a commit
    assert writer.idle
    await writer.close()
    read = [e for chunk in store.read(0) for e in chunk]
    assert [e.payload.pid for e in read] == list(range(100))


async def test_an_append_is_durable_before_its_caller_resumes(store: SQLiteStore) -> None:
    writer = GroupCommitWriter(store)
    writer.start()
    stored = await writer.append(make(3))
    reader = store.reader()  # its own connection, as the API's reads have
    assert [e.seq for chunk in reader.read(0) for e in chunk] == [e.seq for e in stored]
    reader.close()
    await writer.close()


async def test_a_failed_commit_fails_its_callers_and_refuses_more(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = GroupCommitWriter(store)
    writer.start()

    def broken(events, ts_ingest):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(store, "append", broken)
    with pytest.raises(StoreClosed, match="disk full"):
        await writer.append(make(1))
    assert isinstance(writer.failed, OSError)
    with pytest.raises(StoreClosed):
        await writer.append(make(1))
