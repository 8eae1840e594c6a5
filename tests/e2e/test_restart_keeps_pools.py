"""A restart, graceful or ``kill -9``, changes no pool's remaining (issue 15, item 4).

Intents told to wait have not reached the provider yet; the mock provider resumes
from the log, so it must resume from what the provider has seen (not ratelord's
own estimate, which already subtracts them) and still spend them when their time
comes.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.daemon import RunningDaemon, events, pool, register, wait_for

pytestmark = pytest.mark.e2e

POOL = "mock:requests:acct-1"
CONFIG = {
    "providers": {
        "mock": {
            "poll_interval_seconds": 0.5,
            "principals": {
                "acct-1": {"pools": {"requests": {"limit": 1000, "window_seconds": 3600}}}
            },
        }
    }
}

#: Calls of the workload "later" wait two minutes: still pending across the restart.
LATER = """
policies:
  - id: later
    target: global
    kind: soft
    rules:
      - name: wait-two-minutes
        when: 'intent.workload_id == "later"'
        action: shape
        params: {wait_seconds: 120}
"""


def polled_since(http: httpx.Client, seq: int) -> dict[str, Any]:
    """The pool after a poll logged past ``seq``."""
    wait_for(
        lambda: any(e["seq"] > seq for e in events(http, type="usage_observed", pool_id=POOL)),
        10,
        "a poll",
    )
    found = pool(http, POOL)
    assert found is not None
    return found


def high_water(http: httpx.Client) -> int:
    return int(http.get("/v1/health").json()["high_water_seq"])


@pytest.mark.parametrize("stop", ["graceful", "kill -9"])
def test_a_restart_changes_no_pools_remaining(
    daemon_factory: Callable[..., RunningDaemon], stop: str
) -> None:
    d = daemon_factory(config=CONFIG, policy=LATER)
    with d.client() as http:
        register(http, "id-a", "acct-1")
        polled_since(http, 0)
        intent = {"agent_id": "a", "identity_id": "id-a", "resource": "requests", "cost": 100}
        decisions = [
            http.post("/v1/intent", json={**intent, "workload_id": workload}).json()
            for workload in ("now", "later", "later")
        ]
        waits = [x["modifications"]["wait_seconds"] for x in decisions]
        assert waits[0] < 5 and min(waits[1:]) > 100, decisions
        before = polled_since(http, high_water(http))
        assert before["remaining"] == 700
    if stop == "graceful":
        d.stop(signal.SIGTERM)
    else:
        d.kill()
    d.start()
    with d.client() as http:
        after = polled_since(http, high_water(http))
        assert after["remaining"] == 700, after
        assert after["status"] == before["status"]
        assert not events(http, type="drift_detected"), "the restart looked like drift"
