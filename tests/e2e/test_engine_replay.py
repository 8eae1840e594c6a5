"""Replay is deterministic: a log the real daemon wrote rebuilds byte-identical projections.

The daemon writes a snapshot of its live projections as it stops; replaying
the log up to the snapshot's seq (twice, into fresh states) must give exactly
those bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ratelord.engine.state import State
from ratelord.store import SQLiteStore
from ratelord.store.replay import replay_into
from tests.support.daemon import RunningDaemon, pool, register, wait_for
from tests.unit.test_engine_forecasting import PERMISSIVE, mock_config

pytestmark = pytest.mark.e2e


def test_replaying_the_log_twice_gives_the_live_projections_byte_for_byte(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    d = daemon_factory(config=mock_config(), policy=PERMISSIVE)
    with d.client() as http:
        register(http, "id-a", "acct-1")
        register(http, "id-b", "acct-2")
        wait_for(lambda: pool(http, "mock:requests:acct-1"), timeout=5, what="the first poll")
        for n in range(12):
            identity = "id-a" if n % 3 else "id-b"
            body = {"agent_id": f"agent-{n % 2}", "identity_id": identity, "cost": 5 + n}
            decision = http.post("/v1/intent", json={**body, "resource": "requests"}).json()
            assert decision["decision"] != "deny_with_reason", decision
        http.post(
            "/v1/admin/mock/external-usage",
            json={"principal": "acct-1", "resource": "requests", "amount": 300},
        )
        http.post("/v1/identities/id-b/quarantine", json={"reason": "test"})
    assert d.stop() == 0

    store = SQLiteStore(d.db_path)
    try:
        snapshots = [s for s in store.snapshots() if not isinstance(s, str)]
        live = snapshots[0]
        replays = []
        for _ in range(2):
            state = State()
            replay_into(state, store, 0, store.high_water)
            replays.append(state.encode())
    finally:
        store.close()
    assert live.seq >= store.high_water - 2  # only snapshot_written, system_stopped after
    assert replays[0] == replays[1]
    assert replays[0] == live.state
    assert b"id-b" in live.state and b"quarantined" in live.state
