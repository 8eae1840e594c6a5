"""The SDK's held leases: local spending, batches, shrinking, renewal sizing (no I/O)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx2
import msgspec

from ratelord.client import AsyncClient, Client
from ratelord.client._lease import AUTO_RATE, EXPIRY_MARGIN, HeldLease, Keeper
from ratelord.client._lease_watch import Follower, follow_async, follow_sync
from ratelord.client._sse import SseMessage
from ratelord.engine.events import LeaseRevised, LeaseRevisedPayload
from ratelord.schema import Lease


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lease(granted: float = 10, status: str = "active", expires: str | None = None) -> Lease:
    return Lease(
        lease_id="l1",
        status=status,  # type: ignore[arg-type]
        holder="a",
        identity_id="i",
        pool_id="p",
        urgency="normal",
        requested=granted,
        granted=granted,
        spent=0,
        available=granted,
        expires_at=expires or "2026-01-01T00:00:10Z",
    )


WALL = 1767225600.0  # 2026-01-01T00:00:00Z


def test_a_held_lease_spends_locally_until_it_is_used_up_or_expires() -> None:
    held = HeldLease(lease(granted=3), now=0.0, wall=WALL)
    assert [held.take(1, 1.0) for _ in range(4)] == [True, True, True, False]
    fresh = HeldLease(lease(granted=100), now=0.0, wall=WALL)
    assert fresh.take(1, 10 - EXPIRY_MARGIN - 0.01)
    assert not fresh.take(1, 10 - EXPIRY_MARGIN)


def test_reports_batch_what_was_spent_since_the_last_and_failed_ones_are_resent() -> None:
    held = HeldLease(lease(granted=100), now=0.0, wall=WALL)
    for _ in range(5):
        held.take(1, 0.5)
    first = held.batch(1.0)
    assert (first.spent, first.rate) == (5, 5)
    held.unreport(first)
    held.take(2, 1.5)
    assert held.batch(2.0).spent == 7


def test_a_call_corrected_down_after_a_report_is_never_reported_negative() -> None:
    held = HeldLease(lease(granted=100), now=0.0, wall=WALL)
    held.take(10, 0.5)
    assert held.batch(1.0).spent == 10
    held.adjust(-4)  # the call cost 6, not the 10 taken, and was reported already
    assert held.batch(2.0).spent == 0
    held.take(5, 2.5)
    assert held.batch(3.0).spent == 1  # 11 spent in all, 10 reported before


def test_a_shrunk_or_ended_lease_stops_spending() -> None:
    held = HeldLease(lease(granted=100), now=0.0, wall=WALL)
    held.take(10, 0.0)
    held.update(lease(granted=12))
    assert held.take(2, 0.0) and not held.take(1, 0.0)
    held.update(lease(granted=12, status="revoked"))
    assert held.spent_up(0.0)


def test_the_keeper_leases_by_itself_only_at_a_high_rate_and_sizes_by_pace() -> None:
    clock = Clock()
    keeper = Keeper(clock=clock, wall=lambda: WALL)
    key = ("a", "i", None, None, "r", None)
    assert not any(keeper.wants_lease(key, None) for _ in range(int(AUTO_RATE) - 1))
    assert keeper.wants_lease(key, None)
    assert not keeper.wants_lease(key, False)
    held = keeper.got(key, lease(granted=50))
    assert held is not None and keeper.take(key, 1) is held
    clock.now += 0.5
    while keeper.take(key, 1):
        pass
    assert keeper.retire(key) is held
    request = keeper.request(key, {"agent_id": "a", "identity_id": "i", "resource": "r"}, 1)
    assert request.rate == 100  # 50 units in half a second
    assert request.units >= 100 * 10


def test_a_lease_is_asked_for_with_the_calls_labels() -> None:
    fields = {"agent_id": "a", "identity_id": "i", "resource": "r", "labels": {"via": "proxy"}}
    request = Keeper().request(("a", "i", None, None, "r", None), fields, 1)
    assert request.labels == {"via": "proxy"}  # rules and budgets that match labels apply


def test_calls_with_other_labels_do_not_spend_a_lease_taken_with_these() -> None:
    from ratelord.client._guard import GuardOptions
    from ratelord.client._leased_guard import held_for

    base = {"agent_id": "a", "identity_id": "i", "resource": "r"}
    proxy = Keeper.key_of(base | {"labels": {"via": "proxy", "model": "m"}})
    assert proxy == Keeper.key_of(base | {"labels": {"model": "m", "via": "proxy"}})
    assert proxy != Keeper.key_of(base | {"labels": {"via": "sdk", "model": "m"}})
    assert Keeper.key_of(base) != proxy
    # The guard's two key builders (options, and the fast path's raw arguments) agree.
    options = GuardOptions(identity="i", agent="a", resource="r", labels={"via": "proxy"})
    keeper = Keeper(clock=Clock(), wall=lambda: WALL)
    held = keeper.got(options.lease_key(), lease(granted=10))
    args = {"identity": "i", "agent": "a", "resource": "r", "labels": {"via": "proxy"}}
    assert held is not None and held_for(keeper, args) is held
    assert held_for(keeper, args | {"labels": {"via": "other"}}) is None


def revision(seq: int, granted: float, revoked: bool = False, lease_id: str = "l1") -> str:
    """A ``lease_revised`` event's JSON, as the daemon's stream carries it."""
    payload = LeaseRevisedPayload(lease_id=lease_id, granted=granted, from_=100, revoked=revoked)
    event = LeaseRevised(event_id=f"ev_{seq}", ts_event=WALL, seq=seq, payload=payload)
    return msgspec.json.encode(event).decode()


def test_the_event_stream_is_followed_from_the_first_leases_decision() -> None:
    follower = Follower(Keeper())
    follower.start_at(41)  # a revocation logged before the stream opens is still seen
    assert follower.params()["after_seq"] == "41"
    follower.start_at(90)  # already following: a later lease is on the same stream
    assert follower.params()["after_seq"] == "41"


def test_after_a_refusal_the_keeper_asks_per_call_for_a_while() -> None:
    clock = Clock()
    keeper = Keeper(clock=clock, wall=lambda: WALL)
    key = ("a",)
    assert keeper.got(key, lease(granted=0, status="refused")) is None
    assert not keeper.wants_lease(key, True)
    clock.now += 3
    assert keeper.wants_lease(key, True)


def test_a_shrink_or_revocation_on_the_event_stream_reaches_the_held_lease() -> None:
    keeper = Keeper(clock=Clock(), wall=lambda: WALL)
    held = keeper.got(("a", "i", None, None, "requests", None), lease(granted=100))
    assert held is not None and held.take(30, 100.0)
    follower = Follower(keeper)

    def revised(seq: int, granted: float, revoked: bool = False, lease_id: str = "l1") -> None:
        data = revision(seq, granted, revoked, lease_id)
        follower.apply(SseMessage("lease_revised", data, str(seq)))

    revised(7, 40, lease_id="someone-else")
    assert held.granted == 100
    revised(8, 40)
    assert held.granted == 40 and not held.ended
    assert held.take(10, 100.0) and not held.take(1, 100.0)
    follower.apply(SseMessage("lease_revised", '{"payload": {}}', "9"))  # logged, ignored
    revised(10, 30, revoked=True)
    assert held.ended and not held.take(1, 100.0)
    assert follower.params()["after_seq"] == "10"  # a dropped stream resumes after it


def _stream(request: httpx2.Request) -> httpx2.Response:
    """A daemon whose event stream carries one revocation of lease l1."""
    if request.url.path != "/v1/events":  # the ended lease's release, on close
        return httpx2.Response(410, json={"error": "lease_ended", "message": "revoked"})
    assert request.url.params["type"] == "lease_revised"
    body = f"id: 5\nevent: lease_revised\ndata: {revision(5, 0, revoked=True)}\n\n"
    return httpx2.Response(200, text=body, headers={"content-type": "text/event-stream"})


def test_both_clients_follow_the_stream_of_revisions() -> None:
    sync = Client("http://ratelord.test", transport=httpx2.MockTransport(_stream))
    held = HeldLease(lease(granted=10), now=0.0, wall=WALL)
    sync._leases.keeper.held[("k",)] = held
    stop = threading.Event()
    follower = Follower(sync._leases.keeper)
    thread = threading.Thread(target=follow_sync, args=(sync, follower, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not held.ended and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=5)
    sync.close()
    assert held.ended and follower.after == "5"

    async def main() -> bool:
        transport = httpx2.MockTransport(_stream)
        async with AsyncClient("http://ratelord.test", transport=transport) as aio:
            held = HeldLease(lease(granted=10), now=0.0, wall=WALL)
            aio._leases.keeper.held[("k",)] = held
            task = asyncio.create_task(follow_async(aio, Follower(aio._leases.keeper)))
            for _ in range(500):
                if held.ended:
                    break
                await asyncio.sleep(0.01)
            task.cancel()
            return held.ended

    assert asyncio.run(main())
