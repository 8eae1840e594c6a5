"""The shipped scenarios with agents spending through leases: governance still holds.

Goals (issue 19), on every shipped scenario: zero 429s for honest agents,
>= 97 % utilisation at every reset of each overloaded pool, urgent work
served; and most work is spent from leases with no decision of its own.
"""

from __future__ import annotations

import pytest

from ratelord.sim import Report, load_scenario, run_scenario
from ratelord.sim.generate import goals_missed
from ratelord.sim.scenario import parse_scenario
from tests.support.shared import once_per_run
from tests.unit.test_sim_shipped import SCENARIOS, SHIPPED


@once_per_run
def run(name: str) -> Report:
    return run_scenario(load_scenario(SCENARIOS / f"{name}.yaml"), "leases")


#: Shipped scenario → why leases miss a goal there today.
LEASE_GAPS = {
    "raise-seen-in-headers": "every response's headers reach ratelord while holders have "
    "spent leased units they have not reported yet (they report every second): read as "
    "use behind ratelord's back, they size a headroom that holds the last units of later "
    "90-unit windows (93 % used)",
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=LEASE_GAPS[n], strict=True))
        if n in LEASE_GAPS
        else n
        for n in SHIPPED
    ],
)
def test_leases_hold_the_governance_goals(name: str) -> None:
    report = run(name)
    failed = [v.check for v in report.invariants if not v.passed]
    assert report.passed, f"{name}: {failed}"
    # Every overloaded window ends >= 97 % used (or with less left than any call waiting),
    # urgent work is served, no honest 429 (the search's judge; the work-done goal is
    # against baselines: not asked of leases).
    assert goals_missed(report, 0.0) == []
    assert report.engine_events["lease_decided"] > 0
    assert report.engine_events["lease_takes_local"] > 0


def test_leases_take_most_work_off_the_decision_path_in_priority_inversion() -> None:
    events = run("priority-inversion").engine_events
    assert events["lease_takes_local"] > events["lease_takes_per_call"]
    assert events["lease_reported"] < events["lease_takes_local"]


WORKLOAD_SCENARIO = """
name: workload-leases
description: Work that charges a workload over two pools, spent through leases of the workload.
seed: 5
duration_seconds: 300
poll_interval_seconds: 5
pools:
  acct-main:
    pools:
      search: {limit: 100, window_seconds: 60}
      core: {limit: 5000, window_seconds: 60}
identities:
  - {id: tok-main, principal: acct-main}
workloads:
  hydrate: {search: 1, core: 10}
agents:
  - name: hydrators
    count: 2
    identities: [tok-main]
    workload: hydrate
    behaviour: {kind: poisson, rate_per_second: 1.2}
    on_deny: retry
    retry_after_seconds: 5
"""


def test_work_over_a_workloads_pools_runs_on_workload_leases() -> None:
    scenario = parse_scenario(WORKLOAD_SCENARIO)
    report = run_scenario(scenario, "leases")
    assert goals_missed(report, 0.0) == []
    # About 500 hydrates fit in the run (search: 100 a minute); over half of them are spent
    # from leases over both pools, with no decision of their own (the rest, and every retry
    # of work told to wait for a reset, ask per call).
    assert report.engine_events["lease_takes_local"] > 250
    overloaded = [r for pool in report.pools for r in pool.resets if r.overloaded]
    assert overloaded  # search runs out: the leases are paced by it
