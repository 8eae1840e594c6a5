"""The shipped scenarios with agents spending through leases: governance still holds.

Goals (issue 19): zero 429s for honest agents, >= 97 % utilisation at every
reset of each overloaded pool, urgent work served; and most work is spent
from leases with no decision of its own.
"""

from __future__ import annotations

import functools

import pytest

from ratelord.sim import Report, load_scenario, run_scenario
from tests.unit.test_sim_shipped import SCENARIOS

#: Pools whose demand stays below their capacity (not overloaded): no utilisation goal.
UNDERLOADED = {"mock:requests:acct-quiet"}


@functools.cache
def run(name: str) -> Report:
    return run_scenario(load_scenario(SCENARIOS / f"{name}.yaml"), "leases")


#: The scenarios of issue 8; the workload classes of issue 13 (the other shipped scenarios)
#: are held to their goals under ``ratelord`` (test_sim_shipped.py, test_sim_search.py).
LEASE_SCENARIOS = [
    "cascading-failure",
    "drift-and-correction",
    pytest.param(
        "noisy-neighbour",
        marks=pytest.mark.xfail(
            reason="since intents are allocated (issue 13), leases on the shared pool end its "
            "first window ~95 % used: lease sizing still paces evenly to the reset",
            strict=False,
        ),
    ),
    "priority-inversion",
    "thundering-herd",
]


@pytest.mark.parametrize("name", LEASE_SCENARIOS)
def test_leases_hold_the_governance_goals(name: str) -> None:
    report = run(name)
    failed = [v.check for v in report.invariants if not v.passed]
    assert report.passed, f"{name}: {failed}"
    assert report.honest_429s == 0
    for pool in report.pools:
        for reset in pool.resets:
            if pool.pool_id not in UNDERLOADED and reset.overloaded:
                assert reset.used >= 0.97 * reset.available, (pool.pool_id, reset)
    if report.high_urgency.work_items:
        assert report.high_urgency.success_rate is not None
        assert report.high_urgency.success_rate >= 0.99
    assert report.engine_events["lease_decided"] > 0
    assert report.engine_events["lease_takes_local"] > 0


def test_leases_take_most_work_off_the_decision_path_in_priority_inversion() -> None:
    events = run("priority-inversion").engine_events
    assert events["lease_takes_local"] > events["lease_takes_per_call"]
    assert events["lease_reported"] < events["lease_takes_local"]
