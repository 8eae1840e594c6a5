"""Blocking store calls off the event loop, finished before a cancellation goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def to_thread_finished(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """:func:`asyncio.to_thread`, but a cancelled caller waits for the thread to finish.

    A cancelled ``to_thread`` returns at once while its thread runs on. The
    caller's cleanup (a shutdown closing the connection the thread still reads)
    then frees a SQLite connection in use: a segfault in libsqlite3, seen when a
    daemon stopped with event streams open. Here the cancellation waits for the
    thread (store calls are short), then goes on.
    """
    running = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        raise
