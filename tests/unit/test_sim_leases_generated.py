"""Generated scenarios with agents spending through leases: governance still holds.

A few in CI (``bench/search_sim.py --strategy leases`` runs many): urgent work at a
window's end, a late burst, intents over several pools at once.  The goals are
those of the shipped scenarios under leases (``test_sim_leases.py``): no honest 429,
>= 97 % used at every overloaded reset, urgent work served within its deadline.
"""

from __future__ import annotations

import pytest

from ratelord.sim import run_scenario
from ratelord.sim.generate import generate, goals_missed

GENERATED = [("urgent-late", 1), ("late-burst", 0), ("multi-pool", 0)]


@pytest.mark.parametrize(("kind", "seed"), GENERATED)
def test_leases_hold_the_governance_goals_on_generated_scenarios(kind: str, seed: int) -> None:
    scenario = generate(kind, seed)
    report = run_scenario(scenario, "leases")
    assert goals_missed(report, 0.0) == []
    assert report.engine_events["lease_takes_local"] > 0
