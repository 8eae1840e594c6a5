"""Rebuilding projections from the log: newest valid snapshot + tail, or everything."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from ratelord.engine.events import Event
from ratelord.engine.state import State
from ratelord.store.sql import Snapshot

log = logging.getLogger("ratelord.store")


class EventSource(Protocol):
    def read_for_replay(
        self, after_seq: int, upto_seq: int, types: frozenset[str], batch: int = 5000
    ) -> Iterator[list[Event]]: ...


class Replayable(EventSource, Protocol):
    """What start-up loads from: a store (or the store seen through its archive)."""

    @property
    def high_water(self) -> int: ...

    def snapshots(self) -> Iterator[Snapshot | str]: ...


#: progress(done, total)
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Loaded:
    state: State
    snapshot_seq: int  # 0 when no snapshot was used
    replayed: int
    warnings: tuple[str, ...]


def load(store: Replayable, progress: Progress | None = None) -> Loaded:
    """Start-up: the newest snapshot that decodes, then the events after it."""
    with _collector_paused():
        return _load(store, progress)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Replay makes millions of short-lived, acyclic objects (rows, events, payloads);
    reference counting frees them, and the cyclic collector's passes over the growing
    projections only cost time (measured: 84,000 → 104,000 events/s on a 1M-event log)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(store: Replayable, progress: Progress | None) -> Loaded:
    warnings: list[str] = []
    for snapshot in store.snapshots():
        if isinstance(snapshot, str):
            warnings.append(snapshot)
            continue
        state = _decode(snapshot, warnings)
        if state is not None:
            replayed = replay_into(state, store, snapshot.seq, store.high_water, progress)
            return Loaded(state, snapshot.seq, replayed, tuple(warnings))
    state = State()
    replayed = replay_into(state, store, 0, store.high_water, progress)
    return Loaded(state, 0, replayed, tuple(warnings))


def replay_into(
    state: State,
    store: EventSource,
    after_seq: int,
    upto_seq: int,
    progress: Progress | None = None,
) -> int:
    """Apply events ``after_seq < seq <= upto_seq`` to ``state``; returns the seqs covered.

    Events of types no projection handles are not even read.
    """
    total = max(0, upto_seq - after_seq)
    apply = state.apply
    for batch in store.read_for_replay(after_seq, upto_seq, State.relevant_types()):
        for event in batch:
            apply(event)
        if progress is not None:
            progress(batch[-1].seq - after_seq, total)
    if progress is not None:
        progress(total, total)
    return total


def _decode(snapshot: Snapshot, warnings: list[str]) -> State | None:
    try:
        return State.decode(snapshot.state)
    except Exception as exc:  # any decoding failure means: do not trust it
        warnings.append(f"snapshot at seq {snapshot.seq} cannot be decoded ({exc}); ignored")
        return None
