"""Leases held by this process: spend locally, report in batches, renew on demand.

A :class:`HeldLease` is the holder's side of ``POST /v1/leases``: ``take(cost)``
spends from it with no round trip (a lock, two compares and an add).  A
:class:`Keeper` (one per client) holds at most one lease per *key* — the intent
fields that name who spends on which pool (or workload), and the labels — and:

* takes a lease by itself once a key is called at :data:`AUTO_RATE` calls per
  second or more (or at once when the caller asked for leases);
* reports what was spent, and the recent rate, every :data:`REPORT_EVERY`
  seconds in one request per lease; the answer carries the lease as the daemon
  holds it (a lease shrunk or revoked is also learnt at once from the event
  stream, see :mod:`ratelord.client._lease_watch`);
* releases an exhausted or expiring lease and takes a new one, sized by the
  rate it measured; after a refusal it asks per call until ``defer_until`` or
  :data:`REFUSED_BACKOFF` seconds.

The keeper does no I/O itself: :class:`~ratelord.client.Client` and
:class:`~ratelord.client.AsyncClient` send what it prepares.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ratelord.engine.clock import parse_iso
from ratelord.schema import Decision, Lease, LeaseReport, LeaseRequest

#: Calls per second of one key above which the SDK takes a lease by itself.
AUTO_RATE = 20.0
#: Seconds between batched usage reports of a lease.
REPORT_EVERY = 1.0
#: The lifetime the SDK asks for.
LEASE_SECONDS = 10.0
#: A lease asks for this many times the measured rate over its life (the daemon may grant less).
HEADROOM = 1.5
#: At least this many calls' worth is asked for.
MIN_CALLS = 10
#: Stop spending this long before the daemon's expiry (clock skew, the report in flight).
EXPIRY_MARGIN = 0.5
#: After a refusal, calls go per call for at least this long.
REFUSED_BACKOFF = 2.0
#: Intent id prefix of the decisions a lease makes locally.
LEASE_INTENT_PREFIX = "lease:"

Key = tuple[Any, ...]


def labels_key(labels: Mapping[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    """Labels as part of a lease key: rules and budgets that match labels decide the lease
    as they would the call, so calls with other labels must not spend from it."""
    return tuple(sorted(labels.items())) if labels else None


def is_leased(decision: Decision) -> bool:
    """A decision made locally from a lease (nothing to report per call)."""
    return decision.intent_id.startswith(LEASE_INTENT_PREFIX)


class HeldLease:
    """One lease as its holder sees it."""

    __slots__ = (
        "_lock",
        "clock",
        "deadline",
        "decision",
        "ended",
        "granted",
        "lease_id",
        "reported",
        "reported_at",
        "spent",
        "started",
    )

    def __init__(
        self, lease: Lease, *, now: float, wall: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.lease_id = lease.lease_id
        self.clock = clock
        self.granted = lease.granted
        self.spent = 0.0
        self.reported = 0.0
        self.reported_at = now
        self.started = now
        self.ended = False
        expires = parse_iso(lease.expires_at) if lease.expires_at else wall
        self.deadline = now + (expires - wall) - EXPIRY_MARGIN
        self.decision = Decision(intent_id=LEASE_INTENT_PREFIX + lease.lease_id, decision="approve")
        self._lock = threading.Lock()

    def take(self, cost: float, now: float | None = None) -> bool:
        """Spend ``cost`` if the lease lives and has it (at ``now``, else its clock's): no I/O."""
        if now is None:
            now = self.clock()
        with self._lock:
            if self.ended or now >= self.deadline or self.spent + cost > self.granted:
                return False
            self.spent += cost
            return True

    def adjust(self, delta: float) -> None:
        """The call actually cost ``delta`` more (or less) than was taken."""
        with self._lock:
            self.spent = max(0.0, self.spent + delta)

    def batch(self, now: float) -> LeaseReport:
        """What to report: spent since the last report and the rate it shows."""
        with self._lock:
            # A call that cost less than was taken (adjust) after the last report can
            # leave spent below reported: report nothing now, and let later spending
            # make up the difference (never a negative report).
            spent = max(0.0, self.spent - self.reported)
            self.reported = max(self.reported, self.spent)
            elapsed = max(now - self.reported_at, 1e-3)
            self.reported_at = now
        return LeaseReport(spent=round(spent, 6), rate=round(spent / elapsed, 6))

    def unreport(self, report: LeaseReport) -> None:
        """A report that could not be sent is sent with the next one."""
        with self._lock:
            self.reported -= report.spent

    def update(self, lease: Lease) -> None:
        """The daemon's view of the lease (a shrink, a revocation, its end)."""
        with self._lock:
            if lease.status != "active":
                self.ended = True
            self.granted = min(self.granted, lease.granted)

    def revise(self, granted: float, *, revoked: bool) -> None:
        """A shrink or a revocation the daemon pushed on its event stream."""
        with self._lock:
            self.granted = min(self.granted, granted)
            if revoked:
                self.ended = True

    def spent_up(self, now: float) -> bool:
        return self.ended or now >= self.deadline or self.granted - self.spent < 1e-9


@dataclass(slots=True)
class _Meter:
    """Calls of one key in the current second, and whether it runs on leases."""

    second: int = 0
    calls: int = 0
    rate: float = 0.0
    leasing: bool = False
    retry_at: float = 0.0
    #: Units per second the key spent from its last lease.
    pace: float = 0.0

    def count(self, now: float) -> None:
        second = int(now)
        if second != self.second:
            self.rate = self.calls / max(1, second - self.second) if self.second else 0.0
            self.second, self.calls = second, 0
        self.calls += 1
        if self.calls >= AUTO_RATE or self.rate >= AUTO_RATE:
            self.leasing = True


@dataclass(slots=True)
class Keeper:
    """The leases of one client, by key."""

    held: dict[Key, HeldLease] = field(default_factory=dict)
    meters: dict[Key, _Meter] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Any = time.monotonic
    wall: Any = time.time

    @staticmethod
    def key_of(fields: Mapping[str, Any]) -> Key:
        return (
            fields.get("agent_id"),
            fields.get("identity_id"),
            fields.get("workload_id"),
            fields.get("scope_id"),
            fields.get("resource"),
            fields.get("urgency"),
            labels_key(fields.get("labels")),
        )

    def take(self, key: Key, cost: float) -> HeldLease | None:
        """The held lease ``cost`` was spent from, else None (ask the daemon)."""
        lease = self.held.get(key)
        if lease is not None and lease.take(cost, self.clock()):
            return lease
        return None

    def wants_lease(self, key: Key, requested: bool | None) -> bool:
        """Count a call that missed the leases; should this key take a lease now?"""
        if requested is False:
            return False
        now = self.clock()
        meter = self.meters.get(key)
        if meter is None:
            meter = self.meters[key] = _Meter()
        meter.count(now)
        return (requested or meter.leasing) and now >= meter.retry_at

    def request(self, key: Key, fields: Mapping[str, Any], cost: float) -> LeaseRequest:
        """The lease to ask for: sized by the key's measured rate (in units per second)."""
        meter = self.meters.get(key) or _Meter()
        rate = max(meter.rate * cost, float(meter.calls) * cost, meter.pace)
        units = max(cost * MIN_CALLS, rate * LEASE_SECONDS * HEADROOM)
        # The labels too: the daemon decides the lease as it would the call (rules and
        # budgets that match labels apply).
        names = (
            "agent_id",
            "identity_id",
            "workload_id",
            "scope_id",
            "urgency",
            "resource",
            "labels",
        )
        return LeaseRequest(
            **{name: fields[name] for name in names if fields.get(name) is not None},
            units=units,
            min_units=cost,
            ttl_seconds=LEASE_SECONDS,
            rate=rate or None,
        )

    def got(self, key: Key, lease: Lease) -> HeldLease | None:
        """Hold a granted lease for ``key``; after a refusal, back off."""
        if lease.status == "active" and lease.granted > 0:
            held = HeldLease(lease, now=self.clock(), wall=self.wall(), clock=self.clock)
            with self.lock:
                self.held[key] = held
            return held
        retry = parse_iso(lease.defer_until) - self.wall() if lease.defer_until else 0.0
        self.back_off(key, max(REFUSED_BACKOFF, retry))
        return None

    def back_off(self, key: Key, seconds: float = REFUSED_BACKOFF) -> None:
        """Ask per call for ``seconds`` (refused, or the daemon could not be asked)."""
        self.meters.setdefault(key, _Meter()).retry_at = self.clock() + seconds

    def retire(self, key: Key) -> HeldLease | None:
        """The key's lease, which could not serve a call: to release before a new one is taken.

        Calls spent from a lease never reach the meter; the lease's own pace
        (units over its life) sizes the next one.
        """
        with self.lock:
            lease = self.held.pop(key, None)
        if lease is not None:
            meter = self.meters.setdefault(key, _Meter())
            meter.pace = lease.spent / max(self.clock() - lease.started, 1e-3)
        return lease

    def revise(self, lease_id: str, granted: float, *, revoked: bool) -> None:
        """The daemon shrank or revoked ``lease_id``: if this keeper holds it, so be it."""
        with self.lock:
            held = [lease for lease in self.held.values() if lease.lease_id == lease_id]
        for lease in held:
            lease.revise(granted, revoked=revoked)

    def due(self) -> list[tuple[HeldLease, LeaseReport, bool]]:
        """Reports to send now: (lease, batch, release?) for every lease due one."""
        now = self.clock()
        out: list[tuple[HeldLease, LeaseReport, bool]] = []
        with self.lock:
            for key, lease in list(self.held.items()):
                done = lease.spent_up(now)
                if done:
                    del self.held[key]
                if done or now - lease.reported_at >= REPORT_EVERY:
                    out.append((lease, lease.batch(now), done))
        return out

    def drain(self) -> list[tuple[HeldLease, LeaseReport, bool]]:
        """Every lease, to be released (the client is closing)."""
        now = self.clock()
        with self.lock:
            leases, self.held = list(self.held.values()), {}
        return [(lease, lease.batch(now), True) for lease in leases]
