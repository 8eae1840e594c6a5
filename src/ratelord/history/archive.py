"""The long memory of the log: rollups for the long view, checkpoints for time travel.

An :class:`Archive` reads the log once, in ``seq`` order, as it grows.  Every
event is folded into the rollups; events that change projections are applied
to a replica of the daemon's :class:`State`, and every ``checkpoint_every``
events that replica is saved (compressed).  The state at any instant is then
the nearest checkpoint at or before it plus a short replay — at most
``checkpoint_every`` events — instead of a replay from the start of the log.

The archive is a read model of its own: it never touches the live engine,
and it is filled from its own read connection in a worker thread.  A lock
guards it; catching up releases the lock between batches so that queries
interleave.
"""

from __future__ import annotations

import bisect
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from ratelord.engine.events import (
    Event,
    ForecastComputed,
    PolicyTriggered,
    ThrottleAdvised,
    event_type_of,
)
from ratelord.engine.state import State
from ratelord.history.rollup import HistoryAggregate, Rollups, aggregate
from ratelord.store.replay import EventSource
from ratelord.store.retention import Boundary

#: Events between two saved states: bounds the replay of a time-travel query.
CHECKPOINT_EVERY = 25_000
_RELEVANT = State.relevant_types()
#: What the archive reads: what projections need, and the decisions' consequences the
#: rollups count (triggers, forecasts, throttles).  Submissions repeat what decisions
#: say; polls are summed up by the observations they produced.
INDEXED_TYPES = _RELEVANT | frozenset(
    event_type_of(cls) for cls in (PolicyTriggered, ThrottleAdvised, ForecastComputed)
)
_encode = msgspec.msgpack.Encoder().encode
_decode_state = msgspec.msgpack.Decoder(State).decode


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    ts: float
    blob: bytes  # zlib(msgpack(State))

    def state(self) -> State:
        return _decode_state(zlib.decompress(self.blob))


@dataclass(frozen=True, slots=True)
class Instant:
    """The projections as they were at ``at``: after event ``seq``, the last by then that
    changed them."""

    at: float
    seq: int
    state: State
    checkpoint_seq: int
    replayed: int


class Archive:
    def __init__(self, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.rollups = Rollups()
        self.seq = 0
        self.checkpoint_every = checkpoint_every
        self._state = State()
        self._checkpoints = [Checkpoint(0, float("-inf"), _pack(State()))]
        self._lock = threading.Lock()

    @property
    def checkpoints(self) -> int:
        return len(self._checkpoints)

    def resume(self, boundary: Boundary) -> None:
        """Start after the archive boundary from the rollups and state saved with it,
        instead of reading the archived segments again."""
        with self._lock:
            if self.seq >= boundary.upto_seq:
                return
            state = State.decode(boundary.state)
            self.rollups = Rollups.load(boundary.rollups)
            self._state = state
            self._checkpoints = [
                *(c for c in self._checkpoints if c.seq < boundary.upto_seq),
                Checkpoint(boundary.upto_seq, boundary.upto_ts, _pack(state)),
            ]
            self.seq = boundary.upto_seq

    def catch_up(
        self, source: EventSource, upto: int, progress: Callable[[int], None] | None = None
    ) -> int:
        """Fold every event after :attr:`seq` up to ``upto``; returns how many were read."""
        read = 0
        batches = source.read_for_replay(self.seq, upto, INDEXED_TYPES)
        while True:
            with self._lock:
                batch = next(batches, None)
                if batch is None:
                    break
                self._fold(batch)
            read += len(batch)
            if progress is not None:
                progress(self.seq)
        with self._lock:
            self.seq = max(self.seq, upto)
        return read

    def _fold(self, batch: list[Event]) -> None:
        fold, apply, state = self.rollups.fold, self._state.apply, self._state
        last = self._checkpoints[-1].seq
        for event in batch:
            fold(event)
            if event.event_type in _RELEVANT:
                apply(event)
            if event.seq - last >= self.checkpoint_every:
                self._checkpoints.append(Checkpoint(event.seq, event.ts_event, _pack(state)))
                last = event.seq
        self.seq = batch[-1].seq

    def aggregate(
        self, since: float, until: float, bucket_seconds: int, pool_ids: list[str] | None
    ) -> HistoryAggregate:
        with self._lock:
            return aggregate(self.rollups, since, until, bucket_seconds, pool_ids)

    def state_at(self, source: EventSource, at: float) -> Instant:
        """The nearest checkpoint at or before ``at``, then the events up to ``at``."""
        with self._lock:
            index = bisect.bisect_right([c.ts for c in self._checkpoints], at) - 1
            checkpoint = self._checkpoints[max(0, index)]
            following = self._checkpoints[index + 1] if index + 1 < len(self._checkpoints) else None
            upto = following.seq if following is not None else self.seq
        state = checkpoint.state()
        seq = checkpoint.seq
        replayed = 0
        apply = state.apply
        for batch in source.read_for_replay(checkpoint.seq, upto, _RELEVANT):
            for event in batch:
                if event.ts_event > at:
                    return Instant(at, seq, state, checkpoint.seq, replayed)
                apply(event)
                seq = event.seq
                replayed += 1
        return Instant(at, seq, state, checkpoint.seq, replayed)


def _pack(state: State) -> bytes:
    return zlib.compress(_encode(state), 1)
