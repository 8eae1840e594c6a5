"""``ratelord-d --demo``: demo identities and a little traffic, so there is something to see."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

from ratelord.schema import IdentityCreate, IntentRequest, Urgency

if TYPE_CHECKING:
    from ratelord.daemon.runtime import Runtime

log = logging.getLogger("ratelord.demo")

DEMO_IDENTITIES = (
    IdentityCreate(
        identity_id="pat:alice",
        provider_id="mock",
        principal="demo-team",
        kind="pat",
        scope_id="org:acme",
        labels={"team": "platform"},
    ),
    IdentityCreate(
        identity_id="pat:alice-ci",
        provider_id="mock",
        principal="demo-team",
        kind="pat",
        scope_id="repo:acme/api",
        labels={"team": "platform"},
    ),
    IdentityCreate(
        identity_id="app:release-bot",
        provider_id="mock",
        principal="demo-bot",
        kind="app_installation",
        scope_id="org:acme",
        labels={"team": "release"},
    ),
)
#: (agent, identity, workload, urgency) of the demo's agents.
DEMO_AGENTS: tuple[tuple[str, str, str, Urgency], ...] = (
    ("crawler-01", "pat:alice", "search_and_hydrate", "normal"),
    ("ci-agent-2", "pat:alice-ci", "build", "high"),
    ("triage-bot", "app:release-bot", "triage", "background"),
)


async def register_demo_identities(runtime: Runtime) -> None:
    for identity in DEMO_IDENTITIES:
        if identity.identity_id not in runtime.engine.state.identities:
            await runtime.register(identity)


async def demo_traffic(runtime: Runtime, rng: random.Random | None = None) -> None:
    """A few agents asking now and then, honouring the answers they get."""
    rng = rng or random.Random()
    while True:
        await asyncio.sleep(rng.uniform(0.5, 4.0))
        agent, identity, workload, urgency = rng.choice(DEMO_AGENTS)
        resource = None if workload == "search_and_hydrate" else "core"
        cost = None if resource is None else float(rng.choice((1, 2, 5, 10)))
        try:
            await runtime.intent(
                IntentRequest(
                    agent_id=agent,
                    identity_id=identity,
                    workload_id=workload,
                    urgency=urgency,
                    resource=resource,
                    cost=cost,
                )
            )
        except Exception as exc:  # the demo must never take the daemon down
            log.debug("demo intent failed: %s", exc)
