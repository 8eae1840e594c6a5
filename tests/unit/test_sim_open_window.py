"""A run that ends mid-window: the work goal counts that window at an even pace of it.

A 600-s window of 1,000 units, a run of 300 s, 20 greedy workers: ``none`` spends
the window at once and its workers then wait for the reset, past the run's end.  A
strategy that spread the window to its reset would have done as much by then: judged
at the run's end it looked half as productive (many-agents seed 2, multi-pool seed 11).
"""

from __future__ import annotations

from ratelord.sim import parse_scenario, run_scenario
from ratelord.sim.generate import goals_missed, work_done

MID_WINDOW = """
name: ends-mid-window
seed: 4
duration_seconds: 300
poll_interval_seconds: 5
pools:
  acct-main:
    pools:
      requests: {limit: 1000, window_seconds: 600}
identities:
  - {id: tok-main, principal: acct-main}
agents:
  - name: worker
    count: 20
    identities: [tok-main]
    resource: requests
    behaviour: {kind: greedy, think_seconds: 0.5}
"""


def test_a_window_open_at_the_end_counts_at_most_an_even_pace_of_it() -> None:
    scenario = parse_scenario(MID_WINDOW)
    burst = run_scenario(scenario, "none")
    window = burst.pools[0].open
    assert window is not None and window.waiting
    assert window.used == 1000 and window.elapsed == 0.5
    assert burst.pools[0].spent_ahead == 500
    assert work_done(burst) == 500
    paced = run_scenario(scenario, "ratelord")
    assert work_done(paced) <= paced.overall.work_done
    assert goals_missed(paced, work_done(burst)) == []


def test_a_window_nobody_waits_on_counts_what_was_spent() -> None:
    """Demand that stopped: what pacing left in the window is lost, and counted so."""
    scenario = parse_scenario(
        MID_WINDOW + "    phases: [work]\nphases:\n  - {name: work, start: 0, end: 100}\n"
    )
    paced = run_scenario(scenario, "ratelord")
    assert paced.pools[0].open is not None and not paced.pools[0].open.waiting
    assert work_done(paced) == paced.overall.work_done
