"""Approvals that stay true: an approval told to wait is checked again before it is spent.

An approval with ``wait_seconds`` reserved its cost at the decision, but the
pool can change before its slot: consumption ratelord cannot see lands, a
poll shows less than expected.  :func:`check` answers whether an approval
still holds (:func:`~ratelord.engine.allocation.approval_holds`) and revokes
it when it does not; :func:`revoke_broken` revokes every waiting approval a
drifted pool no longer covers.  A revocation is an ``approval_revoked`` event
(so it is on the event stream); its reservation goes back to the pools, and
the agent asks again instead of spending.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ratelord.engine.allocation import approval_holds
from ratelord.engine.events import ApprovalRevokedPayload, Event

if TYPE_CHECKING:
    from ratelord.engine.core import Engine

NO_LONGER_FITS = "the pool no longer covers it (consumption ratelord cannot see, or drift)"


def check(engine: Engine, intent_id: str, now: float) -> tuple[bool, str | None, list[Event]]:
    """Whether the approval of ``intent_id`` still holds at ``now``: (holds, why not, events).

    An approval that went at once holds (it was not told to wait), and so do
    unknown or forgotten intents: nothing of theirs is waiting any more.
    """
    state = engine.state
    revoked = state.revoked.get(intent_id)
    if revoked is not None:
        return False, revoked, []
    starts_at = state.waiting.get(intent_id)
    if starts_at is None or approval_holds(state, intent_id, starts_at, now):
        return True, None, []
    return False, NO_LONGER_FITS, [_revoke(engine, intent_id, now, NO_LONGER_FITS)]


def revoke_broken(engine: Engine, pool_ids: Iterable[str], now: float) -> list[Event]:
    """Revoke every approval still waiting on ``pool_ids`` that they no longer cover."""
    drifted = set(pool_ids)
    if not drifted:
        return []
    state = engine.state
    broken = [
        intent_id
        for intent_id, starts_at in state.waiting.items()
        if starts_at > now
        and not drifted.isdisjoint(state.charges.get(intent_id, ()))
        and not approval_holds(state, intent_id, starts_at, now)
    ]
    reason = f"{', '.join(sorted(drifted))} drifted: {NO_LONGER_FITS}"
    return [_revoke(engine, intent_id, now, reason) for intent_id in broken]


def _revoke(engine: Engine, intent_id: str, now: float, reason: str) -> Event:
    charges = engine.state.charges.get(intent_id, {})
    return engine.emit(
        ApprovalRevokedPayload(intent_id=intent_id, reason=reason, charges=dict(charges)),
        now,
        pool_id=next(iter(charges), None),
        correlation_id=intent_id,
    )
