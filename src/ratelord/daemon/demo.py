"""``ratelord-d --demo``: demo identities and a little traffic, so there is something to see.

An adapter started from ``main.py`` (see :class:`~ratelord.daemon.runtime.Adapter`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

from ratelord.schema import IdentityCreate, IntentRequest, Urgency
from ratelord.service import CommandService

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


class Demo:
    async def start(self, runtime: Runtime) -> None:
        commands = runtime.commands
        for identity in DEMO_IDENTITIES:
            if identity.identity_id not in commands.engine.state.identities:
                await commands.register(identity)
        runtime.spawn(demo_traffic(commands), "demo-traffic")


async def demo_traffic(commands: CommandService, rng: random.Random | None = None) -> None:
    """A few agents asking now and then, honouring the answers they get."""
    rng = rng or random.Random()
    while True:
        await asyncio.sleep(rng.uniform(0.5, 4.0))
        agent, identity, workload, urgency = rng.choice(DEMO_AGENTS)
        resource = None if workload == "search_and_hydrate" else "core"
        cost = None if resource is None else float(rng.choice((1, 2, 5, 10)))
        try:
            await commands.intent(
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
