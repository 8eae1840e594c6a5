"""A search for failures: random realistic scenarios of every workload class of issue 13.

Each class is drawn from :mod:`ratelord.sim.generate` (``RATELORD_SEARCH_SEEDS``
seeds per class, default 1, so CI stays within a minute or so) and run under
ratelord and the baselines.  Every generated scenario must give honest agents
no 429 (but the first call to meet what no client could foresee: a limit cut,
or a consumer behind ratelord's back spending for the first time); every goal
(utilisation at each overloaded reset, urgent work within its deadline, work
done against the best baseline) must hold except where a known gap is named
below.  A failure found with more seeds is shrunk by hand into
``scenarios/``.
"""

from __future__ import annotations

import os
import time

import pytest

from ratelord.sim.generate import CLASSES, Verdict, generate, judge
from tests.support.shared import once_per_run

SEEDS = range(int(os.environ.get("RATELORD_SEARCH_SEEDS", "1")))

#: (class, seed) → why the goal is missed today (the run still must not 429).
KNOWN_GAPS: dict[tuple[str, int], str] = {}


@once_per_run
def verdict(kind: str, seed: int) -> tuple[Verdict, float]:
    started = time.perf_counter()
    result = judge(generate(kind, seed))
    return result, time.perf_counter() - started


CASES = [(kind, seed) for kind in CLASSES for seed in SEEDS]


@pytest.mark.parametrize(("kind", "seed"), CASES)
def test_no_generated_scenario_gives_an_honest_agent_a_429(kind: str, seed: int) -> None:
    result, _ = verdict(kind, seed)
    report = result.report
    assert report.honest_429s - report.unavoidable_429s == 0, result.failures


@pytest.mark.parametrize(
    ("kind", "seed"),
    [
        pytest.param(k, s, marks=pytest.mark.xfail(reason=KNOWN_GAPS[(k, s)], strict=False))
        if (k, s) in KNOWN_GAPS
        else (k, s)
        for k, s in CASES
    ],
)
def test_every_generated_scenario_meets_every_goal(kind: str, seed: int) -> None:
    result, _ = verdict(kind, seed)
    assert not result.failures, f"{kind} seed {seed}: {result.failures}"


def test_the_generator_is_deterministic_and_covers_every_class() -> None:
    assert len(CLASSES) == 10
    for kind in CLASSES:
        assert generate(kind, 3) == generate(kind, 3)
        assert generate(kind, 3) != generate(kind, 4)


def test_a_class_without_limit_cuts_only_ever_raises_a_limit() -> None:
    """Limit changes are drawn relative to the base: without cuts, each must also be at
    least the one before it (urgent-late seed 12 drew 6,000 then 4,500 on a 3,000 base)."""
    for seed in range(60):
        for principal in generate("urgent-late", seed).pools.values():
            for pool in principal.pools.values():
                limits = [pool.limit, *(change.limit for change in pool.limits)]
                assert limits == sorted(limits), (seed, limits)
