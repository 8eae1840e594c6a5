"""A recorded history to look at: days of agents' traffic through the real engine.

Writes a database as ``ratelord-d`` would have written it over ``days`` days
ending now: mock identities on three principals, agents whose load follows the
working day (and surges on some days, so pools run hot and the policy acts),
pools polled every minute, the provider charged for every approved call.  The
web UI's tests and the benchmarks (``bench/gen_history.py``) start the daemon
on such a database.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from random import Random

from ratelord.engine.arbitration import decide
from ratelord.engine.core import Engine, EngineConfig
from ratelord.engine.events import Event, IdFactory, SystemStartedPayload
from ratelord.engine.observe import observe_poll
from ratelord.engine.policy import default_policy
from ratelord.providers.mock import (
    MockPoolConfig,
    MockPrincipalConfig,
    MockProvider,
    MockProviderConfig,
)
from ratelord.schema import IdentityCreate, IntentRequest, Urgency
from ratelord.store import SQLiteStore

POLL_EVERY = 60.0
BATCH = 5000

PRINCIPALS = {
    "team-a": {"core": 5000.0, "search": 900.0},
    "team-b": {"core": 5000.0},
    "bots": {"core": 2000.0},
}
IDENTITIES = (
    ("pat:alice", "team-a", "org:acme"),
    ("pat:alice-ci", "team-a", "repo:acme/api"),
    ("pat:bob", "team-b", "org:acme"),
    ("app:release-bot", "bots", "org:acme"),
)


@dataclass(frozen=True, slots=True)
class Agent:
    agent_id: str
    identity_id: str
    workload_id: str
    urgency: Urgency
    resource: str
    cost: float
    per_hour: float  # at the busiest hour of an ordinary day


AGENTS = (
    Agent("crawler-01", "pat:alice", "repo_scan", "normal", "core", 10.0, 190.0),
    Agent("crawler-02", "pat:alice", "repo_scan", "background", "core", 10.0, 150.0),
    Agent("searcher", "pat:alice", "search", "normal", "search", 1.0, 500.0),
    Agent("ci-agent", "pat:alice-ci", "build", "high", "core", 5.0, 160.0),
    Agent("indexer", "pat:bob", "indexing", "background", "core", 20.0, 170.0),
    Agent("reviewer", "pat:bob", "review", "normal", "core", 2.0, 300.0),
    Agent("triage-bot", "app:release-bot", "triage", "background", "core", 4.0, 260.0),
    Agent("release-bot", "app:release-bot", "release", "high", "core", 8.0, 40.0),
)
WEIGHTS = [a.per_hour for a in AGENTS]
SCOPES = {identity: scope for identity, _, scope in IDENTITIES}


def workday(ts: float) -> float:
    """Load by time of day and week: busy 08–18 UTC on weekdays, quiet nights."""
    hour = (ts % 86400) / 3600
    weekday = int(ts // 86400 + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    shape = 0.15 + 0.85 * math.exp(-(((hour - 13.0) / 4.0) ** 2))
    return shape * (0.35 if weekday >= 5 else 1.0)


def busy_end(now: float) -> float:
    """The latest 17:00 UTC of a weekday at or before ``now``: the end of a busy day."""
    end = now - (now - 17 * 3600) % 86400
    while int(end // 86400 + 3) % 7 >= 5:
        end -= 86400
    return end


def generate(
    db: str | Path,
    *,
    days: float = 30.0,
    scale: float = 1.0,
    seed: int = 7,
    end: float | None = None,
    progress: bool = False,
) -> int:
    """Write the history into a new database ``db``; returns the number of events."""
    rng = Random(seed)
    end = time.time() if end is None else end
    start = end - days * 86400
    store = SQLiteStore(db)
    engine = Engine(EngineConfig(), default_policy(), ids=IdFactory("syn"))
    mock = MockProvider(
        MockProviderConfig(
            principals={
                principal: MockPrincipalConfig(
                    pools={r: MockPoolConfig(limit=limit) for r, limit in pools.items()}
                )
                for principal, pools in PRINCIPALS.items()
            }
        ),
        start=start,
    )
    engine.default_windows = {"mock": mock.default_window_seconds}
    pending: list[Event] = []
    written = 0

    def flush(force: bool = False) -> None:
        nonlocal pending, written
        if pending and (force or len(pending) >= BATCH):
            for i in range(0, len(pending), BATCH):
                chunk = pending[i : i + BATCH]
                store.append(chunk, chunk[-1].ts_event)
            written += len(pending)
            pending = []

    pending += engine.start(start, SystemStartedPayload(version="synth", replayed=0))
    pending += engine.set_policy(engine.policy, start)
    for identity_id, principal, scope in IDENTITIES:
        pending += engine.register_identity(
            IdentityCreate(
                identity_id=identity_id,
                provider_id="mock",
                principal=principal,
                kind="app_installation" if identity_id.startswith("app:") else "pat",
                scope_id=scope,
                labels={"team": principal},
            ),
            start,
        )
    pollers = {principal: identity for identity, principal, _ in IDENTITIES[::-1]}
    surge_days = {d for d in range(int(days) + 1) if rng.random() < 0.3}
    now = start
    next_poll = start
    while now < end:
        if now >= next_poll:
            for principal, identity_id in pollers.items():
                pending += observe_poll(engine, identity_id, mock.observe(principal, now))
            next_poll += POLL_EVERY
        day = int((now - start) // 86400)
        surge = 2.2 if day in surge_days else 1.0
        load = workday(now) * surge * scale
        total = sum(a.per_hour for a in AGENTS) * load / 3600.0
        now += rng.expovariate(total) if total > 0 else POLL_EVERY
        if now >= next_poll:
            continue
        agent = rng.choices(AGENTS, WEIGHTS)[0]
        request = IntentRequest(
            agent_id=agent.agent_id,
            identity_id=agent.identity_id,
            workload_id=agent.workload_id,
            scope_id=SCOPES[agent.identity_id],
            urgency=agent.urgency,
            resource=agent.resource,
            cost=agent.cost,
        )
        decided = decide(engine, request, now)
        pending += decided.events
        decision = decided.decision
        if decision.allowed and not decision.modifications.defer_until:
            principal = engine.state.identities[agent.identity_id].principal or ""
            mock.spend(principal, agent.resource, agent.cost, now)
        before = written
        flush()
        if progress and written // 100_000 != before // 100_000:
            print(f"{written:,} events, {100 * (now - start) / (end - start):.0f}%", flush=True)
    flush(force=True)
    store.write_snapshot(store.high_water, end, engine.state.encode())
    store.close()
    return written
