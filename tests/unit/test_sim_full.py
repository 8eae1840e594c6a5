"""When a window counts as used up: what was left fit no waiting call that could go.

A call could go only if every pool it draws on has room for it (work over two pools
cannot spend one's leftover while the other is spent), and it could fit only at what it
may cost: its estimate times the most its group's calls spend over their estimates (a
client knows no more; sent on a leftover below that, it risks a 429).
"""

from __future__ import annotations

import pytest

from ratelord.sim import parse_scenario, run_scenario
from ratelord.sim.runner import Simulation, _Work
from ratelord.sim.strategies import Ask

SCARCE_SEARCH = """
name: scarce-search
seed: 1
duration_seconds: 120
poll_interval_seconds: 5
pools:
  acct-main:
    pools:
      requests: {limit: 100, window_seconds: 60}
      search: {limit: 3, window_seconds: 60, first_reset_seconds: 30}
identities:
  - {id: tok-main, principal: acct-main}
workloads:
  hydrate: {requests: 10, search: 1}
agents:
  - name: hydrators
    count: 12
    identities: [tok-main]
    workload: hydrate
    behaviour: {kind: greedy, think_seconds: 1}
"""


def test_a_pool_left_unspent_because_the_workloads_other_pool_is_spent_is_used_up() -> None:
    report = run_scenario(parse_scenario(SCARCE_SEARCH), "none")
    requests = next(p for p in report.pools if p.pool_id == "mock:requests:acct-main")
    first = requests.resets[0]
    # 3 searches in each search window (two of them in the first minute) allow 60 requests:
    # the rest waits on search, not on requests.
    assert first.overloaded and first.used == 60
    assert first.full


COSTLY = """
name: costly
seed: 1
duration_seconds: 60
pools:
  acct-main:
    pools:
      requests: {limit: 60, window_seconds: 60}
identities:
  - {id: tok-main, principal: acct-main}
agents:
  - name: worker
    identities: [tok-main]
    resource: requests
    behaviour: {kind: greedy, think_seconds: 1}
    cost: {kind: constant, value: 6}
    actual_cost_factor: {min: 0.8, max: 1.2}
"""


def test_a_waiting_call_fits_a_leftover_only_at_the_most_it_may_cost() -> None:
    simulation = Simulation(parse_scenario(COSTLY), "none")
    agent = simulation.agents[0]
    ask = Ask(
        agent_id=agent.id,
        identity_id="tok-main",
        resource="requests",
        cost=6.0,
        urgency="normal",
        charges={"requests": 6.0},
        actual={"requests": 5.0},
    )
    agent.open_work[0] = _Work(agent, ask, simulation.start)
    # It would cost 5, but nobody could know: at 6 × 1.2 a leftover of 7 does not hold it.
    assert simulation._could_fit(("acct-main", "requests"), simulation.start) == pytest.approx(7.2)
