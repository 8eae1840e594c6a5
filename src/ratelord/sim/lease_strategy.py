"""``leases``: honest agents spend from leases, as the SDK does, and ask per call otherwise.

Each agent holds at most one lease per (identity, resource), or per (identity,
workload) for work that charges a workload: a lease over the workload's pools.  A piece of work
that fits what the lease has left is approved locally, with no decision by the
engine; spent units are reported in batches (every :data:`REPORT_EVERY`
seconds, and when the lease is released).  When the lease runs out the agent
releases it and asks for a new one sized by its recent rate; when none is
granted it asks per call (the engine's intent path, as ``ratelord`` does).
The engine's upkeep (expiry, shrinking, revocation) runs every
:data:`UPKEEP_EVERY` seconds of simulated time; a holder learns of a shrunk or
revoked lease at once, as the SDK does from the event stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from ratelord.engine import leases
from ratelord.engine.clock import parse_iso
from ratelord.schema import SENTINEL_UNKNOWN, LeaseReport, LeaseRequest, UsageReport
from ratelord.service import run_sync
from ratelord.sim.strategies import Ask, Ratelord, Verdict
from ratelord.sim.world import CallResult

#: Seconds between usage reports of one lease (the SDK's batch interval).
REPORT_EVERY = 1.0
UPKEEP_EVERY = 1.0
#: The lifetime asked for: long enough that most work needs no round trip.
LEASE_SECONDS = 30.0
#: A lease asks for this many calls at least.
MIN_CALLS = 4
#: Seconds without asking for a lease after one was refused (at least).
REFUSED_BACKOFF = 5.0
#: Half-life-ish smoothing of an agent's call rate (seconds).
RATE_WINDOW = 10.0


@dataclass(slots=True)
class _Held:
    lease_id: str | None = None
    unreported: float = 0.0
    reported_at: float = 0.0
    #: Smoothed units per second of this agent on this pool, and when it was last updated.
    rate: float = 0.0
    rate_at: float | None = None
    #: After a refusal, no new lease is asked for before this time (work goes per call).
    retry_at: float = 0.0
    #: When a leased call's response headers were last reported (at most every
    #: REPORT_EVERY seconds, as the SDK's gate does).
    headers_at: float = -REPORT_EVERY

    def count(self, cost: float, now: float) -> None:
        if self.rate_at is None:
            self.rate, self.rate_at = 0.0, now
        elapsed = max(now - self.rate_at, 1e-3)
        keep = max(0.0, 1.0 - elapsed / RATE_WINDOW)
        self.rate = keep * self.rate + cost / RATE_WINDOW
        self.rate_at = now


def _key(ask: Ask) -> tuple[str, str, str]:
    """One lease per agent, identity and resource (or workload: a lease over its pools)."""
    return (ask.agent_id, ask.identity_id, ask.resource or f"workload:{ask.workload}")


class Leases(Ratelord):
    """The real engine; agents spend through leases."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._held: dict[tuple[str, str, str], _Held] = {}
        self._upkeep_at = 0.0
        self._stats = {"local": 0, "leases": 0, "per_call": 0}

    def event_counts(self) -> dict[str, int]:
        counts = super().event_counts()
        counts.update({f"lease_takes_{k}": v for k, v in self._stats.items()})
        return dict(sorted(counts.items()))

    def ask(self, ask: Ask, now: float) -> Verdict:
        self._upkeep(now)
        held = self._held.setdefault(_key(ask), _Held())
        held.count(ask.cost, now)
        if self._take(held, ask.cost, now):
            return Verdict("approve", now, ask.identity_id, ticket=held.lease_id)
        self._end(held, now)
        lease = self._request(ask, held, now) if now >= held.retry_at else None
        if lease is not None:
            held.lease_id, held.reported_at = lease, now
            if self._take(held, ask.cost, now):
                return Verdict("approve", now, ask.identity_id, ticket=held.lease_id)
        self._stats["per_call"] += 1
        return super().ask(ask, now)

    def called(
        self,
        ask: Ask,
        verdict: Verdict,
        result: CallResult,
        now: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        held = self._held.get(_key(ask))
        if held is not None and verdict.ticket is not None and verdict.ticket == held.lease_id:
            if result is not CallResult.OK:  # spent nothing: the units stay in the lease
                held.unreported = max(0.0, held.unreported - ask.cost)
            elif headers and now - held.headers_at >= REPORT_EVERY:
                held.headers_at = now
                self._now = now
                report = UsageReport(
                    agent_id=ask.agent_id, identity_id=verdict.identity_id, headers=headers
                )
                run_sync(self.service.usage(report))
            return
        super().called(ask, verdict, result, now, headers)

    # ---------------------------------------------------------------- holder side

    def _take(self, held: _Held, cost: float, now: float) -> bool:
        """Spend ``cost`` from the lease locally, if it is live and has it."""
        lease = self.engine.state.leases.get(held.lease_id or "")
        if lease is None or lease.expires_at <= now or lease.unspent - held.unreported < cost:
            return False
        held.unreported += cost
        self._stats["local"] += 1
        if now - held.reported_at >= REPORT_EVERY:
            self._report(held, now)
        return True

    def _report(self, held: _Held, now: float) -> None:
        assert held.lease_id is not None
        body = LeaseReport(spent=held.unreported, rate=round(held.rate, 6))
        _, events = leases.report(self.engine, held.lease_id, body, now)
        self._count(events)
        held.unreported, held.reported_at = 0.0, now

    def _end(self, held: _Held, now: float) -> None:
        """Release the lease with its unreported spend (reported even if the lease ended)."""
        state = self.engine.state
        lease_id = held.lease_id
        if lease_id is not None and (
            lease_id in state.leases or (held.unreported and lease_id in state.leases_closed)
        ):
            body = LeaseReport(spent=held.unreported, rate=round(held.rate, 6))
            _, events = leases.release(self.engine, lease_id, body, now)
            self._count(events)
        held.lease_id, held.unreported = None, 0.0

    def _request(self, ask: Ask, held: _Held, now: float) -> str | None:
        units = max(ask.cost * MIN_CALLS, held.rate * LEASE_SECONDS)
        request = LeaseRequest(
            agent_id=ask.agent_id,
            identity_id=ask.identity_id,
            resource=ask.resource,
            # No resource: units of the workload, over all its pools.
            workload_id=ask.workload if ask.resource is None and ask.workload else SENTINEL_UNKNOWN,
            urgency=ask.urgency,
            units=units,
            min_units=ask.cost,
            ttl_seconds=LEASE_SECONDS,
            rate=round(held.rate, 6) or None,
        )
        lease, events = leases.decide_lease(self.engine, request, now)
        self._count(events)
        if lease.status != "active":
            retry = parse_iso(lease.defer_until) if lease.defer_until else None
            held.retry_at = max(now + REFUSED_BACKOFF, retry or 0.0)
            return None
        self._stats["leases"] += 1
        return lease.lease_id

    def _upkeep(self, now: float) -> None:
        if now - self._upkeep_at < UPKEEP_EVERY:
            return
        self._upkeep_at = now
        self._count(leases.maintain(self.engine, now))

    def poll(self, identity_id: str, now: float) -> float:
        interval = super().poll(identity_id, now)
        self._upkeep(now)
        return interval
