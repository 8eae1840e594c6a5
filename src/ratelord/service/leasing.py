"""Lease and batch commands, and the upkeep that expires and shrinks leases.

Each command decides with the engine, appends its events and answers once they
are durable, like ``POST /v1/intent``.  A batch of intents is decided in order
and appended as one group, so it costs one commit.  Upkeep runs every
:data:`UPKEEP_EVERY` seconds and once at start-up, so that a lease whose time
ran out while the daemon was down expires (and its units come back) at once.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec

from ratelord.engine import leases
from ratelord.engine.batch import decide_batch
from ratelord.schema import Decision, IntentBatch, Lease, LeaseList, LeaseReport, LeaseRequest
from ratelord.service.commands import CommandService, Unavailable

log = logging.getLogger("ratelord.service")

#: Seconds between expiry/shrink passes: a dead holder's units come back within this.
UPKEEP_EVERY = 1.0


class Leasing:
    """Lease commands over the same engine, commit, clock and guard as ``commands``."""

    def __init__(self, commands: CommandService) -> None:
        self.commands = commands

    async def take(self, request: LeaseRequest) -> Lease:
        commands = self.commands
        commands.guard()
        lease, events = leases.decide_lease(commands.engine, request, commands.now())
        committed = await commands.commit(events)
        return msgspec.structs.replace(lease, seq=committed[0].seq) if committed else lease

    async def report(self, lease_id: str, body: LeaseReport) -> Lease:
        commands = self.commands
        commands.guard()
        lease, events = leases.report(commands.engine, lease_id, body, commands.now())
        await commands.commit(events)
        self._spent(lease, body)
        return lease

    async def release(self, lease_id: str, body: LeaseReport) -> Lease:
        commands = self.commands
        commands.guard()
        lease, events = leases.release(commands.engine, lease_id, body, commands.now())
        await commands.commit(events)
        self._spent(lease, body)
        return lease

    def _spent(self, lease: Lease, body: LeaseReport) -> None:
        """What a holder spent reached the provider (the mock stands for it)."""
        if body.spent and lease.pools:
            charges = {pool: body.spent * per for pool, per in lease.pools.items()}
            self.commands.charged(charges, 0.0)

    def show(self, lease_id: str) -> Lease:
        record = leases.lease_of(self.commands.engine, lease_id)
        return leases.view(record, "active")

    def live(self) -> LeaseList:
        state = self.commands.engine.state
        return LeaseList(leases=[leases.view(record, "active") for record in state.leases.values()])

    async def intents(self, batch: IntentBatch) -> list[Decision]:
        """Decide every intent of ``batch`` in order; one commit for all their events."""
        commands = self.commands
        commands.guard()
        made = decide_batch(commands.engine, batch.intents, commands.now())
        await commands.commit(made.events)
        for decided in made.outcomes:
            commands.decided(decided)
        return made.decisions

    async def upkeep(self) -> None:
        """Expire leases past their time; shrink or revoke where a forecast turned."""
        commands = self.commands
        try:
            commands.guard()
        except Unavailable:
            return
        await commands.commit(leases.maintain(commands.engine, commands.now()))

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(UPKEEP_EVERY)
            try:
                await self.upkeep()
            except Exception:  # the loop must outlive one bad pass
                log.exception("lease upkeep failed")
