"""While the log is being replayed, reads answer ``initializing`` and writes 503 + Retry-After.

Replay of even a large log takes well under a second here, too short to hit
reliably from another process; so this drives the daemon's real ASGI app and
runtime in-process and holds it in the state between opening the store and
the end of replay (the lifespan, which starts the replay, has not run yet).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ratelord.daemon.app import DaemonApp
from ratelord.daemon.config import load_settings
from ratelord.daemon.runtime import Runtime
from ratelord.store import SQLiteStore

WRITES = [
    ("/v1/intent", {"agent_id": "a", "identity_id": "pat:a", "resource": "core"}),
    ("/v1/identities", {"identity_id": "pat:a", "provider_id": "github", "principal": "a"}),
    ("/v1/usage", {"identity_id": "pat:a", "cost": 1}),
]


@pytest.fixture
async def booting(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings, _ = load_settings(["--db", str(tmp_path / "r.db")], environ={})
    runtime = Runtime(settings, SQLiteStore(settings.db))
    yield runtime
    await runtime.shutdown()


async def test_writes_get_503_with_retry_after_until_replay_ends(booting: Runtime) -> None:
    transport = httpx.ASGITransport(app=DaemonApp(booting))
    async with httpx.AsyncClient(transport=transport, base_url="http://ratelord") as http:
        health = (await http.get("/v1/health")).json()
        assert health["status"] == "initializing"
        for path, body in WRITES:
            response = await http.post(path, json=body)
            assert response.status_code == 503, (path, response.text)
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"]["code"] == "unavailable"
        await booting.boot()
        assert (await http.get("/v1/health")).json()["status"] == "ok"
        decided = await http.post("/v1/intent", json=WRITES[0][1])
        assert decided.status_code == 200
        assert decided.json()["decision"] == "deny_with_reason"  # unknown identity, but answered
