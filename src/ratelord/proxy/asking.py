"""Ask ratelord-d for one proxied request, and sit out the wait it decides.

A wait up to the proxy's ``max_wait_seconds`` is held here, inside the proxy,
so the client sees only a slower answer; a longer one, or a denial, becomes a
429 whose ``Retry-After`` says when asking again makes sense.  A deferral
(approve later) is slept out and asked again, so the charge lands in the
window the call really runs in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ratelord.client import AsyncClient, RatelordError, admit
from ratelord.client._admission import MAX_DEFERRALS, is_deferral
from ratelord.client._base import is_local
from ratelord.engine.clock import parse_iso
from ratelord.proxy import refusals
from ratelord.proxy.refusals import Refusal
from ratelord.schema import Decision

log = logging.getLogger("ratelord.proxy")

#: Retry-After of a denial that names no better time.
DEFAULT_RETRY_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class Admitted:
    """The request may go; ``decision`` is what ratelord-d said (its intent id is reported)."""

    decision: Decision
    waited: float


async def ask(
    client: AsyncClient,
    fields: dict[str, Any],
    *,
    max_wait: float,
    sleep: Callable[[float], Awaitable[None]],
) -> Admitted | Refusal:
    """Ask until approved for now (after any wait), or refused."""
    waited = 0.0
    for _ in range(MAX_DEFERRALS + 1):
        decision = await client.ask(**fields)
        if is_local(decision) and not decision.allowed:
            return refusals.unavailable(decision.reason or "ratelord-d could not be asked")
        if decision.modifications.identity_switch is not None:
            await release(client, decision, decision.modifications.identity_switch)
            return refusals.rate_limited(
                f"ratelord suggests identity {decision.modifications.identity_switch!r} "
                f"instead ({decision.reason}); a proxy cannot switch the caller's credential",
                retry_after_of(decision, time.time()),
            )
        admission = admit(decision, now=time.time(), max_wait=max(0.0, max_wait - waited))
        if not admission.allowed:
            reason = admission.reason or "denied by ratelord-d"
            return refusals.rate_limited(reason, retry_after_of(decision, time.time()))
        if admission.wait_seconds > 0:
            await sleep(admission.wait_seconds)
            waited += admission.wait_seconds
        if not is_deferral(decision):
            return Admitted(decision, waited)
    return refusals.rate_limited(
        f"deferred {MAX_DEFERRALS + 1} times in a row by ratelord-d", DEFAULT_RETRY_AFTER
    )


async def release(client: AsyncClient, decision: Decision, identity_id: str) -> None:
    """Give back what an intent reserved for a call that was never made (best effort)."""
    try:
        await client.report_usage(identity_id=identity_id, intent_id=decision.intent_id, cost=0.0)
    except RatelordError as error:
        log.warning("could not release intent %s: %s", decision.intent_id, error)


def retry_after_of(decision: Decision, now: float) -> float:
    """When asking again makes sense: the wait or deferral asked for, else the tightest
    pool's reset, else :data:`DEFAULT_RETRY_AFTER`."""
    mods = decision.modifications
    if mods.defer_until is not None:
        try:
            return max(0.0, parse_iso(mods.defer_until) - now)
        except ValueError:
            pass
    if mods.wait_seconds > 0:
        return mods.wait_seconds
    evaluation = decision.evaluation
    if evaluation is not None:
        resets = [
            p.seconds_to_reset
            for p in evaluation.pools
            if p.pool_id == evaluation.tightest_pool and p.seconds_to_reset is not None
        ]
        if resets:
            return max(DEFAULT_RETRY_AFTER, resets[0])
    return DEFAULT_RETRY_AFTER
