"""What a simulation reports: per agent, per agent group, overall, per pool, per invariant.

``intents`` counts every time an honest agent asked its strategy whether to
call (for ``none`` that is every attempt).  ``approvals`` were told to go at
once, ``modifications`` to go later or with another identity (or, under the
token bucket, to wait for tokens), ``deferrals`` to come back after a reset,
``denials`` were refused.  ``rejections_429`` are calls that hit an exhausted
pool; ``provider_errors`` are calls that failed during an outage.  A *wait*
is the time from when a piece of work arrived until the call that did it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import msgspec


class Counts(msgspec.Struct, kw_only=True):
    name: str
    agents: int = 1
    honest: bool = True
    urgency: str = "normal"
    work_items: int = 0
    intents: int = 0
    approvals: int = 0
    modifications: int = 0
    deferrals: int = 0
    denials: int = 0
    rejections_429: int = 0
    #: Of those, the first call to meet what no client could foresee (see
    #: ``Report.unavoidable_429s``).
    unavoidable_429s: int = 0
    provider_errors: int = 0
    completed: int = 0
    dropped: int = 0
    in_flight: int = 0
    work_done: float = 0.0
    wait_p50_seconds: float = 0.0
    wait_p99_seconds: float = 0.0
    #: Work finished with no denial and no 429 on the way, among work that ended.
    served_without_denial: int = 0
    #: Work finished within the agent's deadline (any time in the run when it has none).
    served_in_time: int = 0
    #: Approvals that no longer held when their wait was over: the agent asked again.
    revoked: int = 0


class Reset(msgspec.Struct, kw_only=True):
    """One window of a pool as it reset: spent by anyone inside the run, over its limit."""

    at: str
    used: float
    utilisation: float
    limit: float = 0.0
    #: What the window offered inside the run (less than the limit when it began part-spent).
    available: float = 0.0
    #: Units asked of it: agents' work that arrived, or still waited when it began, plus
    #: consumers behind ratelord's back.
    demand: float = 0.0
    #: Demand exceeded what was available: the window should end (nearly) used up.
    overloaded: bool = False
    #: The smallest call waiting on the pool when it reset (None: none was waiting).
    smallest_waiting: float | None = None
    #: What was left fit no call waiting: the window was as used as it could be.
    full: bool = False


class OpenWindow(msgspec.Struct, kw_only=True):
    """A pool's window still open when the run ends (its reset comes after)."""

    used: float  # spent in it inside the run, by anyone
    available: float  # what it offered inside the run
    elapsed: float  # the share of its time inside the run that had passed (0..1)
    waiting: bool  # honest work was still waiting on the pool


class PoolReport(msgspec.Struct, kw_only=True):
    pool_id: str
    limit: float
    window_seconds: float
    resets: list[Reset]
    #: The lowest utilisation at a reset; one marked ``full`` (what was left fit no call
    #: waiting) counts as used up: no strategy could have used more of it.
    min_utilisation: float | None
    open: OpenWindow | None = None

    @property
    def spent_ahead(self) -> float:
        """Units spent in the open window beyond an even pace of it to its reset, while
        work still waits on the pool: spent sooner, not more (see the work goal)."""
        window = self.open
        if window is None or not window.waiting:
            return 0.0
        return max(0.0, window.used - window.elapsed * window.available)


class Verdict(msgspec.Struct, kw_only=True):
    check: str
    value: float | None
    passed: bool


class HighUrgency(msgspec.Struct, kw_only=True):
    """Honest high-urgency work: ``success_rate`` = served within deadline / decided."""

    work_items: int  # decided: arrived, less undecided (deadline still ahead) and cut_off
    served_without_denial: int
    success_rate: float | None
    arrived: int = 0
    served_within_deadline: int = 0
    undecided: int = 0
    #: Not served in time, having arrived on a pool a limit cut had left nothing until
    #: after its deadline (no strategy that used the window could serve it): left out.
    cut_off: int = 0


class Report(msgspec.Struct, kw_only=True):
    scenario: str
    strategy: str
    seed: int
    start: str
    duration_seconds: float
    overall: Counts
    honest_429s: int
    high_urgency: HighUrgency
    groups: list[Counts]
    agents: list[Counts]
    pools: list[PoolReport]
    engine_events: dict[str, int]
    invariants: list[Verdict] = []
    passed: bool = True
    #: Units consumers behind ratelord's back (``external:``) spent: work too, on the same
    #: account (a strategy that starves them with 429s does not do more work).
    external_done: float = 0.0
    #: Honest 429s no strategy could have avoided: each the first call refused on a pool
    #: after the provider lowered its limit, or after a consumer behind ratelord's back
    #: first spent on it, before any poll (or another 429) showed it.
    unavoidable_429s: int = 0

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


_SUMMED = (
    "work_items",
    "intents",
    "approvals",
    "modifications",
    "deferrals",
    "denials",
    "rejections_429",
    "unavoidable_429s",
    "provider_errors",
    "completed",
    "dropped",
    "in_flight",
    "served_without_denial",
    "served_in_time",
    "revoked",
)


def combine(name: str, parts: Iterable[tuple[Counts, list[float]]]) -> Counts:
    """Add agents' counts up; waits are pooled, not averaged."""
    total = Counts(name=name, agents=0)
    waits: list[float] = []
    honest, urgencies = set(), set()
    for counts, agent_waits in parts:
        total.agents += counts.agents
        for field in _SUMMED:
            setattr(total, field, getattr(total, field) + getattr(counts, field))
        total.work_done += counts.work_done
        honest.add(counts.honest)
        urgencies.add(counts.urgency)
        waits += agent_waits
    total.honest = honest == {True}
    total.urgency = urgencies.pop() if len(urgencies) == 1 else "mixed"
    set_waits(total, waits)
    return total


def set_waits(counts: Counts, waits: Sequence[float]) -> None:
    counts.wait_p50_seconds = round(percentile(waits, 50), 3)
    counts.wait_p99_seconds = round(percentile(waits, 99), 3)
    counts.work_done = round(counts.work_done, 3)
