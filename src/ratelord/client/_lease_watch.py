"""Shrinks and revocations of this process's leases, learnt from the daemon's event stream.

While a client holds a lease it follows ``GET /v1/events?stream=true&type=lease_revised``
(one connection per client): a lease the daemon shrank, or revoked (a shrink to
what was spent, ``revoked: true``), stops serving calls beyond its new size at
once, not at its next batched report.  The stream starts at the first lease's
decision (its ``seq``) and a dropped one is resumed from the last event seen
(``after_seq``), so a revision made meanwhile is not missed.  Each message is the
daemon's own typed event (:class:`~ratelord.client.events.LeaseRevised`), decoded as such.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import msgspec

from ratelord.client._base import logger
from ratelord.client._exceptions import RatelordError
from ratelord.client._lease import Keeper
from ratelord.client._sse import SseMessage
from ratelord.client.events import LeaseRevised

if TYPE_CHECKING:
    from ratelord.client._client import AsyncClient, Client

#: Seconds before a dropped stream is opened again.
RECONNECT_AFTER = 1.0
#: The daemon pings every 15 s: a stream silent for longer than this has died.
READ_TIMEOUT = 60.0
PATH = "/v1/events"


_decode = msgspec.json.Decoder(LeaseRevised).decode


class Follower:
    """Where the stream is, and what each of its messages does to the keeper's leases."""

    def __init__(self, keeper: Keeper) -> None:
        self.keeper = keeper
        self.after: str | None = None

    def start_at(self, seq: int | None) -> None:
        """Follow from a granted lease's decision (not from when the stream opens): a
        revocation made in between is not missed."""
        if self.after is None and seq:
            self.after = str(seq)

    def params(self) -> dict[str, str]:
        params = {"stream": "true", "type": "lease_revised"}
        if self.after is not None:
            params["after_seq"] = self.after
        return params

    def apply(self, message: SseMessage) -> None:
        if message.id is not None:
            self.after = message.id
        if message.event != "lease_revised":
            return
        try:
            revision = _decode(message.data).payload
        except msgspec.ValidationError as error:
            logger.warning("ignored a lease_revised event ratelord-d sent: %s", error)
            return
        self.keeper.revise(revision.lease_id, revision.granted, revoked=revision.revoked)


def follow_sync(client: Client, follower: Follower, stop: threading.Event) -> None:
    """Follow the stream until ``stop`` (a daemon thread's body)."""
    while not stop.is_set():
        try:
            for message in client.sse(PATH, follower.params(), read_timeout=READ_TIMEOUT):
                follower.apply(message)
                if stop.is_set():
                    return
        except RatelordError as error:
            if stop.is_set():
                return
            logger.debug("lease event stream dropped: %s", error)
        stop.wait(RECONNECT_AFTER)


async def follow_async(client: AsyncClient, follower: Follower) -> None:
    """Follow the stream until cancelled (a task on the client's loop)."""
    while True:
        try:
            async with client.sse(PATH, follower.params(), read_timeout=READ_TIMEOUT) as messages:
                async for message in messages:
                    follower.apply(message)
        except RatelordError as error:
            logger.debug("lease event stream dropped: %s", error)
        await asyncio.sleep(RECONNECT_AFTER)
