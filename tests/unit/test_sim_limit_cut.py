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
