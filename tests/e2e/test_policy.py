"""Policies in the real ``ratelord-d``: Pol-01, Pol-02, Pol-03 (docs/acceptance.md)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ratelord.engine.policy import load_policy_text
from tests.support.daemon import RunningDaemon, events, github_headers, register, wait_for

pytestmark = pytest.mark.e2e

Factory = Callable[..., RunningDaemon]

GUARD = """
policies:
  - id: guard
    kind: hard
    rules:
      - name: deny-low-remaining
        when: 'pool.remaining < {floor}'
        action: deny
"""


def intent(http: httpx.Client, identity: str, urgency: str = "normal") -> dict[str, Any]:
    body = {"agent_id": "agent-1", "identity_id": identity, "resource": "core", "cost": 1}
    response = http.post("/v1/intent", json={**body, "urgency": urgency})
    assert response.status_code == 200, response.text
    return dict(response.json())


def github_pool(http: httpx.Client, identity: str, principal: str, remaining: int) -> None:
    """An identity whose ``core`` pool comes from reported GitHub headers (no poller)."""
    register(http, identity, principal, provider_id="github")
    report = {"identity_id": identity, "headers": github_headers(remaining)}
    assert http.post("/v1/usage", json=report).status_code == 200


@pytest.mark.acceptance("Pol-01")
def test_deny_if_remaining_below_100_denies_at_90_and_names_the_rule(
    daemon_factory: Factory,
) -> None:
    daemon = daemon_factory(policy=GUARD.format(floor=100))
    with daemon.client() as http:
        github_pool(http, "pat:low", "low", remaining=90)
        github_pool(http, "pat:high", "high", remaining=4000)
        denied = intent(http, "pat:low")
        assert denied["decision"] == "deny_with_reason"
        assert denied["reason"].startswith("rule guard/deny-low-remaining: ")
        assert "pool.remaining=90" in denied["reason"]
        assert denied["evaluation"]["rules_fired"] == ["guard/deny-low-remaining"]
        assert intent(http, "pat:high")["decision"] == "approve"
        triggered = events(http, type="policy_triggered")
        assert [e["payload"]["rule"] for e in triggered] == ["deny-low-remaining"]


@pytest.mark.acceptance("Pol-02")
def test_under_high_risk_background_is_denied_and_high_urgency_approved(
    daemon_factory: Factory,
) -> None:
    daemon = daemon_factory()  # the built-in policy
    with daemon.client() as http:
        register(http, "pat:busy", "busy", provider_id="github")
        for remaining in range(5000, 999, -250):  # 4000 calls in a moment, an hour to the reset
            report = {"identity_id": "pat:busy", "headers": github_headers(remaining)}
            assert http.post("/v1/usage", json=report).status_code == 200
        background = intent(http, "pat:busy", urgency="background")
        assert background["decision"] == "deny_with_reason", background
        assert "builtin-shaping/deny-background-when-critical" in background["reason"]
        assert background["evaluation"]["p_exhaustion"] > 0.9  # measured, not the fail-safe
        high = intent(http, "pat:busy", urgency="high")
        assert high["decision"] == "approve", high


@pytest.mark.acceptance("Pol-03")
def test_sighup_reloads_the_edited_file_and_keeps_the_old_one_when_invalid(
    daemon_factory: Factory,
) -> None:
    daemon = daemon_factory(policy=GUARD.format(floor=100))
    policy_file = daemon.workdir / "policy.yaml"
    assert daemon.proc is not None
    with daemon.client() as http:
        github_pool(http, "pat:a", "alice", remaining=90)
        assert intent(http, "pat:a")["decision"] == "deny_with_reason"

        edited = GUARD.format(floor=50)
        policy_file.write_text(edited)
        daemon.proc.send_signal(signal.SIGHUP)
        version = load_policy_text(edited).version
        wait_for(
            lambda: [e for e in events(http, type="policy_updated") if version in str(e)],
            what=f"policy_updated with {version}",
        )
        assert http.get("/v1/policy").json()["version"] == version
        assert intent(http, "pat:a")["decision"] == "approve"

        policy_file.write_text(GUARD.format(floor=100).replace("action: deny", "action: slow"))
        daemon.proc.send_signal(signal.SIGHUP)
        rejected = wait_for(lambda: events(http, type="policy_rejected"), what="policy_rejected")
        assert "rule 'deny-low-remaining': unknown action 'slow'" in str(rejected[-1])
        assert http.get("/v1/policy").json()["version"] == version
        assert intent(http, "pat:a")["decision"] == "approve"
