"""The simulator: the real engine (forecasts, policy, arbitration) on a virtual clock.

``run_scenario(load_scenario(path), "ratelord")`` runs a scenario file and
returns a :class:`Report`; ``render(report)`` turns it into Rich tables.
"""

from ratelord.sim.render import compare_table, render
from ratelord.sim.report import Report
from ratelord.sim.runner import Simulation, run_scenario
from ratelord.sim.scenario import Scenario, ScenarioError, load_scenario, parse_scenario
from ratelord.sim.strategies import STRATEGIES

__all__ = [
    "STRATEGIES",
    "Report",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "compare_table",
    "load_scenario",
    "parse_scenario",
    "render",
    "run_scenario",
]
