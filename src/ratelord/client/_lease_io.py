"""The I/O of a client's leases: take, report, release (sync thread or asyncio task).

:class:`SyncLeases` serves :class:`~ratelord.client.Client`: reports go out from
one daemon thread every :data:`~ratelord.client._lease.REPORT_EVERY` seconds.
:class:`AsyncLeases` serves :class:`~ratelord.client.AsyncClient` with a task on
the client's event loop.  Both spend locally first; only a miss costs a round
trip, and only when the key runs on leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ratelord.client._base import logger
from ratelord.client._exceptions import RatelordError, RatelordRequestError
from ratelord.client._lease import REPORT_EVERY, HeldLease, Keeper, Key
from ratelord.client._lease_watch import Follower, follow_async, follow_sync
from ratelord.schema import Lease, LeaseReport

if TYPE_CHECKING:
    from ratelord.client._client import AsyncClient, Client

Fields = Callable[[], Mapping[str, Any]]


def _path(lease: HeldLease, release: bool) -> str:
    return f"/v1/leases/{lease.lease_id}/{'release' if release else 'report'}"


def _failed(lease: HeldLease, report: LeaseReport, error: RatelordError) -> None:
    if isinstance(error, RatelordRequestError) and error.status_code in (404, 410):
        lease.ended = True  # the daemon ended it (expired, revoked): nothing to resend
        return
    lease.unreport(report)
    logger.warning("could not report lease %s to ratelord-d: %s", lease.lease_id, error)


class SyncLeases:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.keeper = Keeper()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._follower = Follower(self.keeper)

    def spend(
        self, key: Key, cost: float, requested: bool | None, fields: Fields
    ) -> HeldLease | None:
        """The key's lease ``cost`` was spent from (taking one if due), or None: ask per call."""
        keeper = self.keeper
        held = keeper.take(key, cost)
        if held is not None or not keeper.wants_lease(key, requested):
            return held
        old = keeper.retire(key)
        if old is not None:
            self._send(old, old.batch(keeper.clock()), release=True)
        try:
            lease = self.client._call(
                "POST", "/v1/leases", keeper.request(key, fields(), cost), Lease
            )
        except RatelordError as error:
            logger.warning("no lease from ratelord-d, asking per call: %s", error)
            keeper.back_off(key)
            return None
        held = keeper.got(key, lease)
        if held is None:
            return None
        self._follower.start_at(lease.seq)
        self._start()
        return held if held.take(cost, keeper.clock()) else None

    def _send(self, lease: HeldLease, report: LeaseReport, *, release: bool) -> None:
        try:
            answer = self.client._call("POST", _path(lease, release), report, Lease)
        except RatelordError as error:
            _failed(lease, report, error)
            return
        lease.update(answer)

    def flush(self) -> None:
        for lease, report, release in self.keeper.due():
            self._send(lease, report, release=release)

    def _start(self) -> None:
        """Report in batches and follow the event stream, from the first lease on."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ratelord-leases", daemon=True)
            self._thread.start()
            threading.Thread(
                target=follow_sync,
                args=(self.client, self._follower, self._stop),
                name="ratelord-lease-events",
                daemon=True,
            ).start()

    def _run(self) -> None:
        while not self._stop.wait(REPORT_EVERY / 2):
            self.flush()

    def close(self) -> None:
        """Stop reporting and release every lease (its unspent units go back)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for lease, report, _ in self.keeper.drain():
            self._send(lease, report, release=True)


class AsyncLeases:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.keeper = Keeper()
        self._task: asyncio.Task[None] | None = None
        self._follow: asyncio.Task[None] | None = None
        self._follower = Follower(self.keeper)
        #: Keys whose new lease is being asked for: concurrent calls wait for it instead of
        #: each retiring the lease just taken and asking for another.
        self._taking: dict[Key, asyncio.Future[None]] = {}

    async def spend(
        self, key: Key, cost: float, requested: bool | None, fields: Fields
    ) -> HeldLease | None:
        keeper = self.keeper
        held = keeper.take(key, cost)
        if held is not None:
            return held
        taking = self._taking.get(key)
        if taking is not None:
            await asyncio.shield(taking)
            return keeper.take(key, cost)  # None: the new lease is short too, ask per call
        if not keeper.wants_lease(key, requested):
            return None
        taking = self._taking[key] = asyncio.get_running_loop().create_future()
        try:
            return await self._renew(key, cost, fields)
        finally:
            del self._taking[key]
            taking.set_result(None)

    async def _renew(self, key: Key, cost: float, fields: Fields) -> HeldLease | None:
        keeper = self.keeper
        old = keeper.retire(key)
        if old is not None:
            await self._send(old, old.batch(keeper.clock()), release=True)
        request = keeper.request(key, fields(), cost)
        try:
            lease = await self.client._call("POST", "/v1/leases", request, Lease)
        except RatelordError as error:
            logger.warning("no lease from ratelord-d, asking per call: %s", error)
            keeper.back_off(key)
            return None
        held = keeper.got(key, lease)
        if held is None:
            return None
        self._follower.start_at(lease.seq)
        if self._task is None:  # report in batches and follow the event stream
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run())
            self._follow = loop.create_task(follow_async(self.client, self._follower))
        return held if held.take(cost, keeper.clock()) else None

    async def _send(self, lease: HeldLease, report: LeaseReport, *, release: bool) -> None:
        try:
            answer = await self.client._call("POST", _path(lease, release), report, Lease)
        except RatelordError as error:
            _failed(lease, report, error)
            return
        lease.update(answer)

    async def flush(self) -> None:
        for lease, report, release in self.keeper.due():
            await self._send(lease, report, release=release)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY / 2)
            await self.flush()

    async def close(self) -> None:
        for task in (self._task, self._follow):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for lease, report, _ in self.keeper.drain():
            await self._send(lease, report, release=True)
