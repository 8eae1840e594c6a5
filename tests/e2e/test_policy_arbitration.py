"""Intent arbitration by the real ``ratelord-d`` under declarative policy (issue 4, SPEC §6-7).

Over the socket of a real process: A-01 (decided and logged).  Every other rule
(A-03, A-04, Pol-01, Pol-02, workloads, switch_identity, metrics) is tested on the
daemon's app in process on a manual clock: ``tests/unit/test_policy_decisions.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.daemon import RunningDaemon, events, register, wait_for

pytestmark = pytest.mark.e2e

Factory = Callable[..., RunningDaemon]


def mock(principals: dict[str, dict[str, dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    """A config with the mock provider polled every second."""
    pools = {name: {"pools": spec} for name, spec in principals.items()}
    return {"providers": {"mock": {"poll_interval_seconds": 1, "principals": pools}}, **extra}


ONE_POOL = mock({"acct-1": {"requests": {"limit": 1000}}})


def ask(http: httpx.Client, **intent: Any) -> dict[str, Any]:
    body = {"agent_id": "agent", "identity_id": "id-a", "resource": "requests", "cost": 1}
    response = http.post("/v1/intent", json={**body, **intent})
    assert response.status_code == 200, response.text
    return dict(response.json())


def ready(http: httpx.Client, identities: dict[str, str]) -> None:
    """Register ``identity -> principal`` and wait until each one's pools are polled."""
    for identity, principal in identities.items():
        register(http, identity, principal)
    for identity in identities:
        wait_for(
            lambda i=identity: http.get(f"/v1/identities/{i}").json()["pools"],
            timeout=5,
            what=f"pools of {identity}",
        )


# ------------------------------------------------------------------


@pytest.mark.acceptance("A-01")
def test_a_safe_intent_is_approved_and_the_decision_logged(daemon_factory: Factory) -> None:
    d = daemon_factory(config=ONE_POOL)
    with d.client() as http:
        ready(http, {"id-a": "acct-1"})
        decision = ask(http)
        logged = {
            e["event_type"]: e for e in events(http) if e["correlation_id"] == decision["intent_id"]
        }
    assert decision["decision"] == "approve"
    assert decision["reason"] is None
    assert decision["evaluation"]["tightest_pool"] == "mock:requests:acct-1"
    assert logged["intent_decided"]["payload"]["decision"] == "approve"
    assert logged["intent_submitted"]["seq"] < logged["intent_decided"]["seq"]


#: A hard rule the in-process tests (A-04) and the reload tests share.
HARD_DENY = """
policies:
  - id: caps
    target: global
    kind: hard
    rules:
      - name: no-big-spends
        when: 'intent.cost > 10.0'
        action: deny
        reason: "intents above 10 are refused (asked {intent.cost})"
"""
