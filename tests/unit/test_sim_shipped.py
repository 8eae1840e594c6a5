"""The scenarios shipped in scenarios/: ratelord meets its targets, the baselines do not.

Targets (issues 8 and 13): zero 429s for honest agents; high utilisation at
every reset of each pool whose demand exceeds its capacity; urgent work served
within its deadline; one scenario per workload class of issue 13.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ratelord.sim import Report, load_scenario, run_scenario
from tests.support.shared import once_per_run

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@once_per_run
def run(name: str, strategy: str = "ratelord") -> Report:
    return run_scenario(load_scenario(SCENARIOS / f"{name}.yaml"), strategy)


def utilisation(report: Report, pool_id: str) -> float:
    pool = next(p for p in report.pools if p.pool_id == pool_id)
    assert pool.min_utilisation is not None, f"{pool_id} saw no reset"
    return pool.min_utilisation


#: Every scenario the project ships (``bench/bench_sim.py`` orders them for the README).
SHIPPED = sorted(path.stem for path in SCENARIOS.glob("*.yaml"))
#: A burst on a fresh pool fits it: no strategy gets a 429 there.
BASELINES_ALSO_PASS = {"fresh-burst"}


def test_every_shipped_scenario_is_tested() -> None:
    assert {p.stem for p in SCENARIOS.glob("*.yaml")} == set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_ratelord_holds_every_invariant_and_the_none_baseline_does_not(name: str) -> None:
    report = run(name)
    failed = [v.check for v in report.invariants if not v.passed]
    assert report.passed, f"{name}: {failed}"
    assert report.honest_429s == 0
    if name not in BASELINES_ALSO_PASS:
        assert not run(name, "none").passed


def test_thundering_herd_keeps_100_agents_busy_without_429s() -> None:
    report = run("thundering-herd")
    assert report.overall.agents == 100
    assert report.duration_seconds == 3600
    assert utilisation(report, "mock:requests:acct-shared") >= 0.9
    assert run("thundering-herd", "none").honest_429s > 0


def test_drift_is_detected_and_corrected() -> None:
    report = run("drift-and-correction")
    assert report.engine_events["drift_detected"] > 0
    assert utilisation(report, "mock:requests:acct-shared") >= 0.9
    assert run("drift-and-correction", "token-bucket").honest_429s > 0


def test_priority_inversion_serves_urgent_work_first() -> None:
    report = run("priority-inversion")
    assert report.high_urgency.work_items > 100
    assert report.high_urgency.success_rate is not None
    assert report.high_urgency.success_rate >= 0.99
    assert utilisation(report, "mock:requests:acct-shared") >= 0.9
    baseline = run("priority-inversion", "none").high_urgency.success_rate
    assert baseline is not None and baseline < 0.5


def test_noisy_neighbour_shared_pool_is_paced_and_isolated_pool_untouched() -> None:
    report = run("noisy-neighbour")
    assert utilisation(report, "mock:requests:acct-team") >= 0.9
    assert utilisation(report, "mock:requests:acct-noisy") >= 0.9
    quiet = {g.name: g for g in report.groups}
    assert quiet["quiet-shared"].rejections_429 == 0
    # Isolation: the exporter on another principal never slows the quiet job down.
    assert quiet["quiet-isolated"].wait_p99_seconds == 0
    assert utilisation(report, "mock:requests:acct-quiet") < 0.2


def test_cascading_failure_recovers_without_a_retry_storm() -> None:
    report = run("cascading-failure")
    assert report.overall.provider_errors > 0
    assert report.engine_events["provider_error"] > 0
    assert utilisation(report, "mock:requests:acct-app") >= 0.9
    assert run("cascading-failure", "none").honest_429s > 0
