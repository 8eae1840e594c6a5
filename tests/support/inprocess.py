"""The daemon's real app and runtime in this process, on a manual clock.

Nothing runs by itself: the clock moves when a test says ``advance``, and a
provider is polled when it says ``poll``; requests go through the real ASGI app
(``httpx.ASGITransport``) into the real store.  Tests of resets, forecasts and
drift take milliseconds here instead of seconds of real waiting; what needs a
process (signals, crash recovery, the port) stays in ``tests/e2e`` with
:mod:`tests.support.daemon`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from ratelord.daemon.app import DaemonApp
from ratelord.daemon.config import load_settings
from ratelord.daemon.mock_spending import MockSpending
from ratelord.daemon.runtime import Runtime
from ratelord.engine.clock import ManualClock
from ratelord.store import SQLiteStore


@dataclass
class InProcessDaemon:
    runtime: Runtime
    clock: ManualClock
    http: httpx.AsyncClient

    async def poll(self, identity_id: str) -> float:
        """Poll ``identity_id``'s provider now; the seconds the poller would wait."""
        return await self.runtime.pollers[identity_id].poll_once()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def events(self, **filters: Any) -> list[dict[str, Any]]:
        """Events in log order (oldest first), filtered like ``GET /v1/events``."""
        response = await self.http.get("/v1/events", params={"limit": 1000, **filters})
        response.raise_for_status()
        return sorted(response.json()["events"], key=lambda e: e["seq"])

    async def pool(self, pool_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/pools/{pool_id}")
        response.raise_for_status()
        return dict(response.json())

    async def high_water(self) -> int:
        return int((await self.http.get("/v1/health")).json()["high_water_seq"])


@asynccontextmanager
async def in_process(
    workdir: Path,
    *,
    config: dict[str, Any] | None = None,
    policy: str | None = None,
    clock: ManualClock | None = None,
) -> AsyncIterator[InProcessDaemon]:
    """The daemon on ``workdir``'s database; pass the same ``clock`` to restart it later."""
    argv = ["--db", str(workdir / "ratelord.db")]
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        argv += ["--config", str(workdir / "config.yaml")]
    if policy is not None:
        (workdir / "policy.yaml").write_text(policy)
        argv += ["--policy", str(workdir / "policy.yaml")]
    settings, _ = load_settings(argv, environ={})
    clock = clock or ManualClock()
    runtime = Runtime(
        settings,
        SQLiteStore(settings.db),
        adapters=[MockSpending()],
        wall_clock=clock.now,
        background=False,
    )
    app = DaemonApp(runtime)
    await runtime.boot()
    assert runtime.boot_error is None, runtime.boot_error
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ratelord") as http:
            yield InProcessDaemon(runtime, clock, http)
    finally:
        await runtime.shutdown()
