"""``examples/agent.py`` against ``examples/fake_api.py`` and the demo daemon, as its
docstring says to run them (issue 15, item 15): ratelord tracks the API, it does not
fight it — no drift on the pools the agent spends, none of them critical."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support.daemon import RunningDaemon, events, free_port, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REQUESTS = 15


def test_the_agent_example_shows_ratelord_tracking_the_api(
    daemon_factory: Callable[..., RunningDaemon],
):
    daemon = daemon_factory(args=["--demo"])
    with daemon.client() as http:
        # The demo after a while: its mock budgets are partly spent (the demo agents and
        # the mock's own burn), while the fake API starts full.
        spend = {"principal": "demo-team", "resource": "core", "amount": 1000}
        assert http.post("/v1/admin/mock/external-usage", json=spend).status_code == 200
    wait_for(lambda: _polled_after_spend(daemon), what="a poll after the spend")
    with daemon.client() as http:
        wait_for(lambda: events(http, type="drift_detected"), what="the spend seen as drift")
        before = http.get("/v1/health").json()["high_water_seq"]
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "fake_api.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert api.stdout is not None
        assert "fake GitHub API on" in api.stdout.readline()
        agent = subprocess.run(
            [sys.executable, str(EXAMPLES / "agent.py"), "--ratelord", daemon.url,
             "--api", f"http://127.0.0.1:{port}", "--requests", str(REQUESTS)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        api.terminate()
        api.wait(timeout=10)
        if api.stdout is not None:
            api.stdout.close()
    assert agent.returncode == 0, agent.stderr
    assert f"done: {REQUESTS} sent, 0 denied" in agent.stdout, agent.stdout

    with daemon.client() as http:
        decided = events(http, type="intent_decided", agent_id="example-agent")
        spent = {p["pool_id"] for e in decided for p in e["payload"].get("pools") or []}
        spent |= {e["pool_id"] for e in decided if e.get("pool_id")}
        assert spent, decided[:1]
        drift = [
            e
            for e in events(http, type="drift_detected")
            if e["seq"] > before and e["pool_id"] in spent
        ]
        assert not drift, drift[:3]
        core = wait_for(
            lambda: next(
                (p for p in http.get("/v1/pools").json()["pools"] if p["resource"] == "core"
                 and p["pool_id"] in spent), None,
            ),
            what="the agent's core pool",
        )  # fmt: skip
    # what the fake API says is left: 5,000 less the non-search calls
    assert core["remaining"] == 5000 - (REQUESTS - REQUESTS // 5)
    assert core["status"] == "OK"


def _polled_after_spend(daemon: RunningDaemon) -> bool:
    """The demo's mock has been polled since the spend: its pools show it."""
    with daemon.client() as http:
        pools = http.get("/v1/pools").json()["pools"]
    return any(p["pool_id"] == "mock:core:demo-team" and p["remaining"] < 4100 for p in pools)
