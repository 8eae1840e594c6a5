"""The shipped scenarios under every strategy: the side-by-side table and the wall time.

Run: .venv/bin/python bench/bench_sim.py   (prints the Markdown table of docs/simulator.md)

Target (issue 8): the thundering herd (100 agents, one simulated hour) in < 10 s of wall time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ratelord.sim import STRATEGIES, Report, load_scenario, run_scenario
from ratelord.sim.render import utilisation_text

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
ORDER = [
    "thundering-herd",
    "drift-and-correction",
    "priority-inversion",
    "noisy-neighbour",
    "cascading-failure",
    "late-burst",
    "small-costly",
    "spill-over",
    "unseen-consumers",
    "urgent-at-window-end",
    "demand-stops",
    "fresh-burst",
    "reset-lockout",
    "many-agents",
    "rare-polls",
    "urgent-from-the-start",
    "raised-then-stops",
    "raise-seen-in-headers",
    "raised-near-reset",
]
HERD_BUDGET_SECONDS = 10.0


def _urgent(report: Report) -> str:
    rate = report.high_urgency.success_rate
    return "n/a" if rate is None else f"{rate:.1%}"


def main() -> int:
    print(
        "| scenario | strategy | honest 429s | lowest utilisation at a reset "
        "| high-urgency served | units done | wait p99 | invariants | wall time |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|---:|")
    herd_seconds = 0.0
    for name in ORDER:
        scenario = load_scenario(SCENARIOS / f"{name}.yaml")
        for strategy in STRATEGIES:
            started = time.perf_counter()
            report = run_scenario(scenario, strategy)
            seconds = time.perf_counter() - started
            if name == "thundering-herd" and strategy == "ratelord":
                herd_seconds = seconds
            print(
                f"| {name} | {strategy} | {report.honest_429s:,} | {utilisation_text(report)} "
                f"| {_urgent(report)} | {report.overall.work_done:,.0f} "
                f"| {report.overall.wait_p99_seconds:,.1f} s "
                f"| {'pass' if report.passed else 'FAIL'} | {seconds:.2f} s |",
                flush=True,
            )
    verdict = "ok" if herd_seconds < HERD_BUDGET_SECONDS else "OVER BUDGET"
    print(
        f"\nthundering herd under ratelord (100 agents, 1 simulated hour): "
        f"{herd_seconds:.2f} s wall time (budget {HERD_BUDGET_SECONDS:.0f} s): {verdict}"
    )
    return 0 if herd_seconds < HERD_BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
