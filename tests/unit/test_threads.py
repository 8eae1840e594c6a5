"""A cancelled store call waits for its thread: what it reads is closed only after."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ratelord.daemon.threads import to_thread_finished


async def test_a_cancelled_call_ends_only_after_its_thread() -> None:
    release, finished = threading.Event(), threading.Event()

    def read() -> str:
        release.wait(5)
        finished.set()
        return "rows"

    call = asyncio.ensure_future(to_thread_finished(read))
    await asyncio.sleep(0.05)  # the thread is reading
    call.cancel()
    await asyncio.sleep(0.05)
    assert not call.done()  # plain asyncio.to_thread would be cancelled already
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert finished.is_set()


async def test_an_uncancelled_call_returns_what_the_thread_returns() -> None:
    assert await to_thread_finished(lambda a, b: a + b, 2, b=3) == 5
