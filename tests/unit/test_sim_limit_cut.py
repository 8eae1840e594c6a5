"""A limit cut nobody announced: the 429 it causes tells ratelord the pool is spent.

The provider halves a pool's limit mid-window when more than half is spent:
the next call is refused whatever anyone does (no poll, no header said so).
Its 429 carries the pool's headers, which the SDK transport reports: ratelord
reads the pool as spent until its reset and revokes the approvals still
waiting on it, so that one refusal is the only one (it was 40 before).
"""

from __future__ import annotations

from ratelord.sim import parse_scenario, run_scenario

CUT = """
name: limit-cut
seed: 1
duration_seconds: 180
poll_interval_seconds: 30
pools:
  acct-main:
    pools:
      requests:
        limit: 200
        window_seconds: 60
        limits: [{at: 40, limit: 100}]
identities:
  - {id: tok-main, principal: acct-main}
agents:
  - name: worker
    count: 10
    identities: [tok-main]
    resource: requests
    behaviour: {kind: greedy, think_seconds: 0.5}
"""


def test_only_the_call_that_met_an_unannounced_cut_is_refused() -> None:
    scenario = parse_scenario(CUT)
    report = run_scenario(scenario, "ratelord")
    assert report.honest_429s == 1
    assert report.unavoidable_429s == 1  # the judge excuses it: nobody could have known
    assert report.engine_events["approval_revoked"] > 0
    # Every window after the cut is used to the end, at the new limit.
    resets = report.pools[0].resets
    assert [r.limit for r in resets] == [100, 100, 100]
    assert min(r.used / r.available for r in resets[1:]) >= 0.97
    assert run_scenario(scenario, "none").honest_429s > 100


URGENT_AFTER_A_CUT = """
name: urgent-after-a-cut
seed: 3
duration_seconds: 120
poll_interval_seconds: 5
pools:
  acct-main:
    pools:
      requests:
        limit: 200
        window_seconds: 60
        limits: [{at: LIMIT_AT, limit: 100}]
identities:
  - {id: tok-main, principal: acct-main}
agents:
  - name: worker
    count: 10
    identities: [tok-main]
    resource: requests
    behaviour: {kind: greedy, think_seconds: 0.5}
  - name: urgent
    identities: [tok-main]
    resource: requests
    urgency: high
    behaviour: {kind: periodic, every_seconds: 1}
    deadline_seconds: 3
    on_deny: drop
"""


def test_urgent_work_a_limit_cut_left_nothing_for_is_left_out_of_the_urgent_goal() -> None:
    """50 s into a 60-s window the limit drops from 200 to 100: a pace spreading 200
    evenly had spent 167 by then, so no strategy that used the window has anything left
    for it: urgent work arriving then, due before the reset, is ``cut_off`` (not counted
    as served, nor as missed).  Cut at 10 s (an even pace had spent 33), the window still
    had budget for it: nothing is excused."""
    late = run_scenario(parse_scenario(URGENT_AFTER_A_CUT.replace("LIMIT_AT", "50")))
    urgent = late.high_urgency
    assert urgent.cut_off > 0
    assert urgent.work_items == urgent.arrived - urgent.undecided - urgent.cut_off
    early = run_scenario(parse_scenario(URGENT_AFTER_A_CUT.replace("LIMIT_AT", "10")))
    assert early.high_urgency.cut_off == 0
