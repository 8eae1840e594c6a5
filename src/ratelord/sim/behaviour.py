"""How agents generate work: arrival times and the cost of each piece of work.

Greedy agents are a closed loop (the next piece of work follows the end of the
last one, see the runner); poisson, periodic and bursty agents are open loops
whose arrivals do not wait for earlier work.  Every draw comes from the agent's
own ``random.Random``, so a run is a pure function of the scenario and seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from random import Random

from ratelord.sim.scenario import (
    Behaviour,
    Bursty,
    Choice,
    Constant,
    CostModel,
    Greedy,
    Periodic,
    Phase,
    Poisson,
    Uniform,
)


def open_arrivals(behaviour: Behaviour, rng: Random, first: float) -> Iterator[float]:
    """Offsets (seconds from the start) of an open-loop agent's arrivals, from ``first`` on."""
    if isinstance(behaviour, Greedy):
        raise ValueError("greedy agents are a closed loop: the runner schedules their work")
    if isinstance(behaviour, Poisson):
        at = first
        while True:
            yield at
            at += rng.expovariate(behaviour.rate_per_second)
    elif isinstance(behaviour, Periodic):
        for k in itertools.count():
            yield first + k * behaviour.every_seconds + rng.uniform(0, behaviour.jitter_seconds)
    elif isinstance(behaviour, Bursty):
        for k in itertools.count():
            start = first + k * behaviour.every_seconds
            for j in range(behaviour.burst):
                yield start + j * behaviour.spacing_seconds


def sample_cost(model: CostModel, rng: Random) -> float:
    if isinstance(model, Constant):
        return model.value
    if isinstance(model, Uniform):
        # Whole units, as APIs and token counters charge them.
        return max(model.min, float(round(rng.uniform(model.min, model.max))))
    if isinstance(model, Choice):
        return rng.choices(model.values, weights=model.weights)[0]
    raise TypeError(f"unknown cost model {model!r}")


class PhaseGate:
    """When an agent may generate work: always, or only inside its named phases."""

    def __init__(self, phases: Sequence[Phase], names: Sequence[str]) -> None:
        wanted = set(names)
        self._spans = sorted((p.start, p.end) for p in phases if p.name in wanted)
        self._always = not names

    def next_active(self, offset: float) -> float | None:
        """The earliest offset ≥ ``offset`` at which the agent is active; None if never again."""
        if self._always:
            return offset
        for start, end in self._spans:
            if offset < end:
                return max(offset, start)
        return None

    def active(self, offset: float) -> bool:
        return self.next_active(offset) == offset
