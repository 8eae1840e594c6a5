"""Hot policy reload of the real ``ratelord-d``: SIGHUP and the API, good and bad files (Pol-03)."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from tests.e2e.test_policy_arbitration import HARD_DENY, ONE_POOL, ask, ready
from tests.support.daemon import RunningDaemon, events, wait_for

pytestmark = pytest.mark.e2e

Factory = Callable[..., RunningDaemon]

LENIENT = """
policies:
  - id: caps
    target: global
    kind: hard
    rules:
      - name: no-huge-spends
        when: 'intent.cost > 500.0'
        action: deny
"""

BROKEN = """
policies:
  - id: caps
    target: global
    kind: hard
    rules:
      - name: typo
        when: 'intent.cost >>> 10'
        action: deny
"""


@pytest.mark.acceptance("Pol-03")
def test_editing_the_policy_and_sighup_applies_new_rules_without_a_restart(
    daemon_factory: Factory,
) -> None:
    d = daemon_factory(config=ONE_POOL, policy=LENIENT)
    assert d.proc is not None
    pid = d.proc.pid
    with d.client() as http:
        ready(http, {"id-a": "acct-1"})
        assert ask(http, cost=50)["decision"] == "approve"
        old = http.get("/v1/policy").json()["version"]
        (d.workdir / "policy.yaml").write_text(HARD_DENY)
        d.proc.send_signal(signal.SIGHUP)
        updated = wait_for(
            lambda: [
                e for e in events(http, type="policy_updated") if e["payload"]["version"] != old
            ],
            timeout=5,
            what="policy_updated with a new version",
        )[0]
        new = http.get("/v1/policy").json()["version"]
        denied = ask(http, cost=50)
        started = events(http, type="system_started")
    assert new == updated["payload"]["version"] != old
    assert denied["decision"] == "deny_with_reason"
    assert "caps/no-big-spends" in denied["reason"]
    assert denied["evaluation"]["policy_version"] == new
    assert d.alive() and d.proc.pid == pid and len(started) == 1


def test_a_rejected_reload_keeps_the_old_rules(daemon_factory: Factory) -> None:
    d = daemon_factory(config=ONE_POOL, policy=HARD_DENY)
    with d.client() as http:
        ready(http, {"id-a": "acct-1"})
        old = http.get("/v1/policy").json()["version"]
        (d.workdir / "policy.yaml").write_text(BROKEN)
        response = http.post("/v1/policy/reload")
        after = http.get("/v1/policy").json()["version"]
        rejected = events(http, type="policy_rejected")
        decision = ask(http, cost=50)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "policy_rejected"
    assert "policy.yaml" in error["message"] and "typo" in error["message"]
    assert old in error["message"]
    assert after == old
    assert len(rejected) == 1
    assert decision["decision"] == "deny_with_reason"
    assert "caps/no-big-spends" in decision["reason"]
    assert decision["evaluation"]["policy_version"] == old
