"""The simulated provider's pools: the truth about budgets, resets and who spent what.

Each pool is a fixed window whose resets need not line up with the run's
start (``first_reset_seconds``), may come early or late (``reset_shift_seconds``)
or wander (``reset_jitter_seconds``), and whose limit may change mid-run
(``limits``).  What the provider *says* is the nominal reset; what it *does*
is the actual one, as real APIs sometimes do.  A call that does not fit is
rejected (a 429) and spends nothing.  Every unit spent inside the run is
counted per window, by anyone: agents, consumers behind ratelord's back, the
steady background burn; what was spent before the run is not.
"""

from __future__ import annotations

import math
from random import Random

import msgspec

from ratelord.engine.observations import PollResult, PoolObservation
from ratelord.sim.scenario import SimPool


class Window(msgspec.Struct, kw_only=True):
    """One window of one pool, as it ended (or stands)."""

    reset_at: float  # when it actually ended
    limit: float
    available: float  # what it offered inside the run (the limit, or less at the start)
    spent: float = 0.0  # by anyone, inside the run
    demand: float = 0.0  # what was asked of it (agents' work arriving + unseen consumers)
    #: The smallest call waiting on it when it ended (None: none was waiting).
    waiting: float | None = None
    #: The least a waiting call that could go may have spent (see Simulation._could_fit):
    #: infinite when none could go.
    could_fit: float = math.inf


class SimBucket:
    """One pool of one principal."""

    __slots__ = (
        "_limits",
        "_rng",
        "burn",
        "config",
        "current",
        "cut_off_until",
        "ended",
        "external_seen",
        "next_actual",
        "next_nominal",
        "remaining",
        "start",
        "unforeseen",
        "updated_at",
    )

    def __init__(self, config: SimPool, start: float, rng: Random) -> None:
        self.config = config
        self.start = start
        self._rng = rng
        self._limits = sorted((start + c.at, c.limit) for c in config.limits)
        limit = self.limit_at(start)
        self.remaining = limit if config.remaining is None else min(config.remaining, limit)
        first = config.first_reset_seconds
        self.updated_at = start
        self.next_nominal = start + (config.window_seconds if first is None else first)
        self.next_actual = self._actual(self.next_nominal)
        self.burn = config.burn_per_second
        self.current = Window(reset_at=self.next_actual, limit=limit, available=self.remaining)
        self.ended: list[Window] = []
        #: Something no client could foresee changed the pool and nobody has looked at it
        #: since (a poll, or a 429's headers): the limit was lowered, or a consumer behind
        #: ratelord's back spent on it for the first time.  Only a refused call tells.
        self.unforeseen = False
        self.external_seen = False  # a consumer behind ratelord's back ever spent here
        #: A limit cut left nothing for the rest of the window, until this reset (see
        #: :meth:`_cut`); None: no such cut.
        self.cut_off_until: float | None = None

    def limit_at(self, now: float) -> float:
        limit = self.config.limit
        for at, value in self._limits:
            if at <= now:
                limit = value
        return limit

    def _actual(self, nominal: float) -> float:
        jitter = self.config.reset_jitter_seconds
        shift = self.config.reset_shift_seconds + (
            self._rng.uniform(-jitter, jitter) if jitter else 0.0
        )
        return max(self.updated_at, nominal + shift)

    def advance(self, now: float) -> None:
        """Roll resets, limit changes and the background burn forward to ``now``."""
        while now >= self.next_actual:
            self._burn(self.next_actual)
            self.current.reset_at = self.next_actual
            self.ended.append(self.current)
            limit = self.limit_at(self.next_actual)
            self.unforeseen |= limit < self.current.limit
            self.remaining = limit
            self.next_nominal += self.config.window_seconds
            self.next_actual = self._actual(self.next_nominal)
            self.current = Window(reset_at=self.next_actual, limit=limit, available=limit)
        self._burn(now)
        limit = self.limit_at(now)
        if limit != self.current.limit:
            self.unforeseen |= limit < self.current.limit
            if limit < self.current.limit:
                self._cut(now, limit)
            # A new limit applies to the window under way: what is left moves by the difference.
            self.remaining = max(0.0, self.remaining + limit - self.current.limit)
            self.current.available = max(0.0, self.current.available + limit - self.current.limit)
            self.current.limit = limit

    def _cut(self, now: float, limit: float) -> None:
        """The provider lowers the limit mid-window.  A pace that spread the old limit
        evenly over the window has spent ``elapsed × old limit`` by now: when that
        reaches the new limit, the cut takes everything the rest of the window had, for
        every strategy that used the window (none can know a cut is coming)."""
        window = self.config.window_seconds
        elapsed = min(1.0, max(0.0, (now - (self.next_nominal - window)) / window))
        if limit <= elapsed * self.current.limit:
            self.cut_off_until = self.next_actual

    def cut_off(self, now: float, until: float) -> bool:
        """Whether the pool has nothing until ``until`` because a limit cut took it."""
        return (
            self.cut_off_until is not None
            and now < self.cut_off_until
            and until < self.cut_off_until
        )

    def _burn(self, until: float) -> None:
        if until > self.updated_at:
            if self.burn:
                spent = min(self.remaining, self.burn * (until - self.updated_at))
                self.remaining -= spent
                self.current.spent += spent
                self.current.demand += self.burn * (until - self.updated_at)
            self.updated_at = until

    def spend(self, amount: float, now: float) -> bool:
        self.advance(now)
        if self.remaining + 1e-9 < amount:
            return False
        self.remaining = max(0.0, self.remaining - amount)
        self.current.spent += amount
        return True

    def observe(self, resource: str) -> PoolObservation:
        self.unforeseen = False
        limit = self.current.limit
        remaining = math.floor(self.remaining + 1e-9)
        return PoolObservation(
            resource=resource,
            limit=limit,
            remaining=remaining,
            used=limit - remaining,
            reset_at=self.next_nominal,
            window="fixed",
            window_seconds=self.config.window_seconds,
            unit=self.config.unit,
        )


class SimProvider:
    """Every principal's pools."""

    def __init__(self, pools: dict[str, dict[str, SimPool]], start: float, seed: int) -> None:
        self.buckets: dict[tuple[str, str], SimBucket] = {
            (principal, resource): SimBucket(pool, start, Random(f"{seed}:{principal}:{resource}"))
            for principal, resources in pools.items()
            for resource, pool in resources.items()
        }
        self._windows = {
            resource: pool.window_seconds
            for resources in pools.values()
            for resource, pool in resources.items()
        }

    def default_window_seconds(self, resource: str) -> float | None:
        return self._windows.get(resource)

    def observe(self, principal: str, now: float) -> PollResult:
        observations = []
        for (owner, resource), bucket in self.buckets.items():
            if owner == principal:
                bucket.advance(now)
                observations.append(bucket.observe(resource))
        return PollResult(observed_at=now, observations=observations, raw_status=200)

    def spend(self, principal: str, resource: str, amount: float, now: float) -> bool:
        bucket = self.buckets.get((principal, resource))
        return True if bucket is None else bucket.spend(amount, now)

    def demand(self, principal: str, resource: str, amount: float, now: float) -> None:
        """Work asking for ``amount`` arrived (for the report: was the pool overloaded?)."""
        bucket = self.buckets.get((principal, resource))
        if bucket is not None:
            bucket.advance(now)
            bucket.current.demand += amount
