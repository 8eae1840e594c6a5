"""The search for failures, wider than CI's: many seeds of every generated class, offline.

Run: .venv/bin/python bench/search_sim.py [--seeds N] [--first S] [--class KIND ...] [--jobs J]
     [--strategy ratelord|leases]

Each generated scenario (``ratelord.sim.generate``) runs under ratelord (or, with
``--strategy leases``, with its agents spending through leases) and the baselines;
every goal it misses is printed on one line (``FAIL kind seed: ...``), then one
``key: value`` line per class: seeds run, seeds failing, and the seconds it took.
A failure is shrunk by hand into ``scenarios/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from ratelord.sim.generate import CLASSES, generate, judge
from ratelord.sim.strategies import StrategyName


def _one(case: tuple[str, int, StrategyName]) -> tuple[str, int, list[str], float]:
    kind, seed, strategy = case
    started = time.perf_counter()
    failures = judge(generate(kind, seed), strategy).failures
    return kind, seed, failures, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="seeds per class")
    parser.add_argument("--first", type=int, default=0, help="first seed")
    parser.add_argument("--class", dest="kinds", action="append", choices=sorted(CLASSES))
    parser.add_argument("--jobs", type=int, default=1, help="processes")
    parser.add_argument("--strategy", choices=("ratelord", "leases"), default="ratelord")
    args = parser.parse_args()
    kinds = args.kinds or list(CLASSES)
    seeds = range(args.first, args.first + args.seeds)
    cases = [(k, s, args.strategy) for k in kinds for s in seeds]
    runs = {k: 0 for k in kinds}
    failing = {k: 0 for k in kinds}
    seconds = {k: 0.0 for k in kinds}
    with ProcessPoolExecutor(args.jobs) as pool:
        for kind, seed, failures, took in pool.map(_one, cases):
            runs[kind] += 1
            seconds[kind] += took
            if failures:
                failing[kind] += 1
                print(f"FAIL {kind} {seed}: {'; '.join(failures)}", flush=True)
    for kind in kinds:
        print(f"{kind}: {runs[kind]} seeds, {failing[kind]} failing, {seconds[kind]:.0f} s")
    return 1 if any(failing.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
