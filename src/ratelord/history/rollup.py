"""Rollups of the event log over fixed time buckets, and the aggregate query over them.

The long view (30 days, a million events) must answer in milliseconds, so it
never reads raw events: :class:`Rollups` folds each event once, as the log
grows, into 5-minute and 1-hour buckets, and :func:`aggregate` sums buckets.
This is the one place that knows how history is stored.  Rollups are saved
(:meth:`Rollups.dump`) with the archive boundary when old events are archived,
so the long view outlives the events it sums.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable

import msgspec

from ratelord.engine.events import (
    ConstraintObserved,
    Event,
    ForecastComputed,
    IntentDecided,
    PolicyTriggered,
    PostureChanged,
    ThrottleAdvised,
    UsageObserved,
)

#: The two resolutions kept; a query uses the coarsest one that divides its bucket.
FINE, COARSE = 300, 3600
RESOLUTIONS = (FINE, COARSE)
POSTURE_RANK = {"OK": 0, "WARN": 1, "CRIT": 2}
TOP = 10


class PoolSlot(msgspec.Struct, kw_only=True):
    """One pool during one bucket."""

    consumed: float = 0.0
    min_remaining: float | None = None
    limit: float | None = None
    worst_posture: int = 0
    max_p_exhaustion: float = 0.0


class Bucket(msgspec.Struct, kw_only=True):
    start: float
    events: int = 0
    intents: int = 0
    approved: int = 0
    modified: int = 0
    waited: int = 0
    deferred: int = 0
    denied: int = 0
    throttles: int = 0
    pools: dict[str, PoolSlot] = {}
    agents: dict[str, float] = {}
    workloads: dict[str, float] = {}
    scopes: dict[str, float] = {}
    rules: dict[str, int] = {}


class _Pool(msgspec.Struct):
    """What the rollups carry between buckets for one pool."""

    posture: int = 0
    limit: float | None = None
    remaining: float | None = None


class _Saved(msgspec.Struct, array_like=True):
    """:class:`Rollups` as stored with the archive boundary."""

    fine: list[Bucket]
    coarse: list[Bucket]
    pools: dict[str, _Pool]
    current: float | None
    agent_identities: dict[str, list[str]]
    first_ts: float | None
    last_ts: float | None


_encode_saved = msgspec.msgpack.Encoder().encode
_decode_saved = msgspec.msgpack.Decoder(_Saved).decode


class Rollups:
    """5-minute buckets folded event by event; each closed one is merged into its hour."""

    def __init__(self) -> None:
        self.buckets: dict[int, dict[float, Bucket]] = {r: {} for r in RESOLUTIONS}
        self._pools: dict[str, _Pool] = {}
        self._current: Bucket | None = None
        #: agent → identities it has asked for (the explorer's first edges)
        self.agent_identities: dict[str, set[str]] = {}
        self.first_ts: float | None = None
        self.last_ts: float | None = None

    def dump(self) -> bytes:
        """Everything folded so far, compressed: :meth:`load` continues from here."""
        saved = _Saved(
            fine=list(self.buckets[FINE].values()),
            coarse=list(self.buckets[COARSE].values()),
            pools=self._pools,
            current=None if self._current is None else self._current.start,
            agent_identities={a: sorted(ids) for a, ids in self.agent_identities.items()},
            first_ts=self.first_ts,
            last_ts=self.last_ts,
        )
        return zlib.compress(_encode_saved(saved), 6)

    @classmethod
    def load(cls, data: bytes) -> Rollups:
        saved = _decode_saved(zlib.decompress(data))
        rollups = cls()
        rollups.buckets[FINE] = {b.start: b for b in saved.fine}
        rollups.buckets[COARSE] = {b.start: b for b in saved.coarse}
        rollups._pools = saved.pools
        if saved.current is not None:
            rollups._current = rollups.buckets[FINE][saved.current]
        rollups.agent_identities = {a: set(ids) for a, ids in saved.agent_identities.items()}
        rollups.first_ts, rollups.last_ts = saved.first_ts, saved.last_ts
        return rollups

    def fold(self, event: Event) -> None:
        ts = event.ts_event
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        bucket = self._current
        if bucket is None or not bucket.start <= ts < bucket.start + FINE:
            bucket = self._roll(ts - ts % FINE)
        _fold(bucket, event, self._pools)
        self._track(event)
        if isinstance(event, IntentDecided):
            dims = event.dimensions
            known = self.agent_identities.get(dims.agent_id)
            if known is None:
                known = self.agent_identities[dims.agent_id] = set()
            known.add(dims.identity_id)

    def _roll(self, start: float) -> Bucket:
        """Close the current 5-minute bucket (into its hour) and open the one at ``start``."""
        if self._current is not None:
            self._close(self._current)
        fine = self.buckets[FINE]
        bucket = fine.get(start)
        if bucket is None:
            bucket = fine[start] = self._open(start)
        self._current = bucket
        return bucket

    def _close(self, bucket: Bucket) -> None:
        hour = bucket.start - bucket.start % COARSE
        hourly = self.buckets[COARSE]
        target = hourly.get(hour)
        if target is None:
            target = hourly[hour] = Bucket(start=hour)
        merge(target, bucket)

    def get(self, resolution: int, start: float) -> Bucket | None:
        """A bucket as it stands, the open 5-minute bucket included in its hour."""
        found = self.buckets[resolution].get(start)
        current = self._current
        if resolution == FINE or current is None or current.start - current.start % COARSE != start:
            return found
        merged = Bucket(start=start)
        if found is not None:
            merge(merged, found)
        merge(merged, current)
        return merged

    def _open(self, start: float) -> Bucket:
        """A new bucket starts with every known pool as it stands (postures carry over)."""
        return Bucket(
            start=start,
            pools={
                pool_id: PoolSlot(
                    min_remaining=pool.remaining, limit=pool.limit, worst_posture=pool.posture
                )
                for pool_id, pool in self._pools.items()
            },
        )

    def _track(self, event: Event) -> None:
        """Carry pool facts between buckets (once per event, after folding)."""
        pool_id = event.pool_id
        if pool_id is None:
            return
        if isinstance(event, PostureChanged):
            self._pools.setdefault(pool_id, _Pool()).posture = POSTURE_RANK.get(event.payload.to, 0)
        elif isinstance(event, UsageObserved | ConstraintObserved):
            pool = self._pools.setdefault(pool_id, _Pool())
            if event.payload.limit is not None:
                pool.limit = float(event.payload.limit)
            if isinstance(event, UsageObserved):
                pool.remaining = float(event.payload.remaining)


_COUNTERS = (
    "events",
    "intents",
    "approved",
    "modified",
    "waited",
    "deferred",
    "denied",
    "throttles",
)


def merge(into: Bucket, other: Bucket) -> None:
    """Add ``other`` (a later or same-time bucket) into ``into``."""
    for name in _COUNTERS:
        setattr(into, name, getattr(into, name) + getattr(other, name))
    for pool_id, slot in other.pools.items():
        mine = into.pools.get(pool_id)
        if mine is None:
            into.pools[pool_id] = msgspec.structs.replace(slot)
            continue
        mine.consumed += slot.consumed
        if slot.min_remaining is not None and (
            mine.min_remaining is None or slot.min_remaining < mine.min_remaining
        ):
            mine.min_remaining = slot.min_remaining
        mine.limit = slot.limit if slot.limit is not None else mine.limit
        mine.worst_posture = max(mine.worst_posture, slot.worst_posture)
        mine.max_p_exhaustion = max(mine.max_p_exhaustion, slot.max_p_exhaustion)
    for name in ("agents", "workloads", "scopes", "rules"):
        tally, more = getattr(into, name), getattr(other, name)
        for who, amount in more.items():
            tally[who] = tally.get(who, 0) + amount


def _fold(bucket: Bucket, event: Event, pools: dict[str, _Pool]) -> None:
    bucket.events += 1
    if isinstance(event, IntentDecided):
        _decided(bucket, event)
    elif isinstance(event, PolicyTriggered):
        rule = f"{event.payload.policy_id}/{event.payload.rule}"
        bucket.rules[rule] = bucket.rules.get(rule, 0) + 1
    elif isinstance(event, ThrottleAdvised):
        bucket.throttles += 1
    elif event.pool_id is not None:
        slot = _slot(bucket, event.pool_id, pools)
        if isinstance(event, UsageObserved | ConstraintObserved):
            if event.payload.limit is not None:
                slot.limit = float(event.payload.limit)
            if isinstance(event, UsageObserved):
                _low(slot, float(event.payload.remaining))
        elif isinstance(event, PostureChanged):
            slot.worst_posture = max(slot.worst_posture, POSTURE_RANK.get(event.payload.to, 0))
        elif isinstance(event, ForecastComputed):
            slot.max_p_exhaustion = max(slot.max_p_exhaustion, float(event.payload.p_exhaustion))
            _low(slot, float(event.payload.remaining))


def _decided(bucket: Bucket, event: IntentDecided) -> None:
    p = event.payload
    bucket.intents += 1
    decision = p.decision
    modifications = p.modifications
    if decision == "deny_with_reason":
        bucket.denied += 1
    elif modifications.defer_until:
        bucket.deferred += 1
    elif decision == "approve_with_modifications":
        bucket.modified += 1
        if modifications.wait_seconds:
            bucket.waited += 1
    else:
        bucket.approved += 1
    charges = p.charges
    if not charges:
        return
    total = sum(charges.values())
    dims = event.dimensions
    for who, tally in (
        (dims.agent_id, bucket.agents),
        (dims.workload_id, bucket.workloads),
        (dims.scope_id, bucket.scopes),
    ):
        tally[who] = tally.get(who, 0.0) + total
    for pool_id, cost in charges.items():
        slot = bucket.pools.get(pool_id)
        if slot is None:
            slot = bucket.pools[pool_id] = PoolSlot()
        slot.consumed += cost


def _slot(bucket: Bucket, pool_id: str, pools: dict[str, _Pool]) -> PoolSlot:
    slot = bucket.pools.get(pool_id)
    if slot is None:
        known = pools.get(pool_id)
        slot = bucket.pools[pool_id] = PoolSlot(
            limit=known.limit if known else None,
            min_remaining=known.remaining if known else None,
            worst_posture=known.posture if known else 0,
        )
    return slot


def _low(slot: PoolSlot, remaining: float) -> None:
    if slot.min_remaining is None or remaining < slot.min_remaining:
        slot.min_remaining = remaining


# ---------------------------------------------------------------------- the query


class PoolSeries(msgspec.Struct, kw_only=True):
    """Per bucket: units consumed per hour, peak utilisation (0..1), worst posture."""

    pool_id: str
    burn_per_hour: list[float | None]
    utilisation: list[float | None]
    posture: list[int | None]
    p_exhaustion: list[float | None]


class Ranked(msgspec.Struct):
    id: str
    used: float


class HeatCell(msgspec.Struct, array_like=True):
    """[hour bucket start, pools exhausted or critical, pools near exhaustion]"""

    ts: float
    exhausted: int
    near: int


class HistoryAggregate(msgspec.Struct, kw_only=True):
    """Time buckets ``since <= start < until``; ``ts`` holds each bucket's start (epoch s)."""

    since: float
    until: float
    bucket_seconds: int
    resolution_seconds: int
    ts: list[float]
    events: list[int]
    intents: list[int]
    approved: list[int]
    modified: list[int]
    waited: list[int]
    deferred: list[int]
    denied: list[int]
    throttles: list[int]
    pools: list[PoolSeries]
    heatmap: list[HeatCell]
    top_agents: list[Ranked]
    top_workloads: list[Ranked]
    top_scopes: list[Ranked]
    top_rules: list[Ranked]
    totals: dict[str, int]
    agent_identities: dict[str, list[str]]
    first_ts: float | None
    last_ts: float | None


def resolution_for(bucket_seconds: int) -> int:
    """The coarsest kept resolution that divides ``bucket_seconds``."""
    fitting = [r for r in RESOLUTIONS if bucket_seconds % r == 0]
    return max(fitting) if fitting else RESOLUTIONS[0]


def aggregate(
    rollups: Rollups,
    since: float,
    until: float,
    bucket_seconds: int,
    pool_ids: Iterable[str] | None = None,
) -> HistoryAggregate:
    resolution = resolution_for(bucket_seconds)
    bucket_seconds = max(resolution, bucket_seconds - bucket_seconds % resolution)
    first = since - since % bucket_seconds
    count = max(1, math.ceil((until - first) / bucket_seconds))
    ts = [first + i * bucket_seconds for i in range(count)]
    counters = {name: [0] * count for name in _COUNTERS}
    wanted = set(pool_ids) if pool_ids else None
    consumed: dict[str, list[float | None]] = {}
    utilisation: dict[str, list[float | None]] = {}
    posture: dict[str, list[int | None]] = {}
    risk: dict[str, list[float | None]] = {}
    tallies: dict[str, dict[str, float]] = {
        "agents": {},
        "workloads": {},
        "scopes": {},
        "rules": {},
    }
    start = since - since % resolution
    step = resolution
    at = start
    while at < until:
        bucket = rollups.get(resolution, at)
        if bucket is not None and at >= first:
            i = int((at - first) // bucket_seconds)
            for name, series in counters.items():
                series[i] += getattr(bucket, name)
            for pool_id, slot in bucket.pools.items():
                if wanted is not None and pool_id not in wanted:
                    continue
                _merge_pool(pool_id, slot, i, count, consumed, utilisation, posture, risk)
            for name in ("agents", "workloads", "scopes", "rules"):
                tally = tallies[name]
                for who, amount in getattr(bucket, name).items():
                    tally[who] = tally.get(who, 0.0) + amount
        at += step
    hours = bucket_seconds / 3600
    pools = [
        PoolSeries(
            pool_id=pool_id,
            burn_per_hour=[None if v is None else round(v / hours, 3) for v in consumed[pool_id]],
            utilisation=utilisation[pool_id],
            posture=posture[pool_id],
            p_exhaustion=risk[pool_id],
        )
        for pool_id in sorted(consumed)
    ]
    return HistoryAggregate(
        since=since,
        until=until,
        bucket_seconds=bucket_seconds,
        resolution_seconds=resolution,
        ts=ts,
        pools=pools,
        heatmap=heatmap(rollups, since, until, wanted),
        top_agents=_top(tallies["agents"]),
        top_workloads=_top(tallies["workloads"]),
        top_scopes=_top(tallies["scopes"]),
        top_rules=_top(tallies["rules"]),
        totals={name: sum(series) for name, series in counters.items()},
        agent_identities={a: sorted(ids) for a, ids in rollups.agent_identities.items()},
        first_ts=rollups.first_ts,
        last_ts=rollups.last_ts,
        **counters,
    )


def _merge_pool(
    pool_id: str,
    slot: PoolSlot,
    i: int,
    count: int,
    consumed: dict[str, list[float | None]],
    utilisation: dict[str, list[float | None]],
    posture: dict[str, list[int | None]],
    risk: dict[str, list[float | None]],
) -> None:
    if pool_id not in consumed:
        consumed[pool_id] = [None] * count
        utilisation[pool_id] = [None] * count
        posture[pool_id] = [None] * count
        risk[pool_id] = [None] * count
    consumed[pool_id][i] = (consumed[pool_id][i] or 0.0) + slot.consumed
    if slot.limit and slot.min_remaining is not None:
        used = round(1.0 - slot.min_remaining / slot.limit, 4)
        previous = utilisation[pool_id][i]
        utilisation[pool_id][i] = used if previous is None else max(previous, used)
    previous_posture = posture[pool_id][i]
    posture[pool_id][i] = max(previous_posture or 0, slot.worst_posture)
    previous_risk = risk[pool_id][i]
    risk[pool_id][i] = max(previous_risk or 0.0, slot.max_p_exhaustion)


def heatmap(
    rollups: Rollups, since: float, until: float, wanted: set[str] | None
) -> list[HeatCell]:
    """Hour by hour: how many pools were exhausted (or critical) and how many near it."""
    cells = []
    hour = since - since % 3600
    while hour < until:
        bucket = rollups.get(COARSE, hour)
        if bucket is not None:
            exhausted = near = 0
            for pool_id, slot in bucket.pools.items():
                if wanted is not None and pool_id not in wanted:
                    continue
                empty = slot.min_remaining is not None and slot.min_remaining <= 0
                if empty or slot.worst_posture >= 2:
                    exhausted += 1
                elif slot.worst_posture == 1:
                    near += 1
            cells.append(HeatCell(hour, exhausted, near))
        hour += 3600
    return cells


def _top(tally: dict[str, float]) -> list[Ranked]:
    ranked = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    return [Ranked(who, round(amount, 3)) for who, amount in ranked]
