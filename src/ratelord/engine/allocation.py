"""Admission by allocation: how much of a pool an intent may have, and when.

At every decision, for one pool:

1. **remaining** — the reset-aware estimate (:func:`~ratelord.engine.state.effective_remaining`):
   once the reset has passed, the pool is full again minus what was spent since.
2. **headroom** — consumption ratelord cannot see (a cron job, a script on the
   same token) at a high quantile of its observed chunks, not at their mean,
   over the time it can go unnoticed (until the provider's next observation;
   once seen it is simply gone from the remaining): it is never handed out.
3. **reserve** — urgent work's forecast demand until the reset, sized from the
   urgent spending observed; only high-urgency intents may use it.
4. **budget** — what is left, spread over the **horizon**: demand is trusted
   to go on for as long as it has lasted so far in this window (or since the
   provider last raised the limit: that budget came then), at most until
   the reset.  Early in a window (or in a new run of demand) the budget goes
   quickly, later it is spread evenly: demand that stops mid-window, a late
   burst, a window cut short by the run or raced by a consumer ratelord cannot
   see leave little behind, and demand that lasts ends the window with the pool
   used up.  The spread is a pacing cursor (GCRA): work
   arriving slower than the pace goes at once, a burst up to a tolerance goes
   at once, the rest waits for its slot.  Work-conserving: nothing waits while
   the pace has room for it.

Everything is a pure function of the pool's projected state and ``now``.
"""

from __future__ import annotations

import math

import msgspec

from ratelord.engine import refill
from ratelord.engine.forecast import RESET_SKEW, Z_P99, chunk_quantile
from ratelord.engine.state import PoolState, State, effective_remaining, estimate_inflation

#: Quantile of unseen consumption kept as headroom (normal score) and the chance of one more
#: unseen chunk below which the headroom no longer holds a whole chunk back.
HEADROOM_Z = Z_P99
HEADROOM_TAIL = 0.005
#: Unseen consumption matters until ratelord sees it: the headroom covers what it may spend
#: over this many observation gaps (since the last one, and until the next), not until the
#: reset; once seen, it is in the remaining.
EXPOSURE_GAPS = 2.0
#: A call fits only if it fits at this quantile of what calls on the pool were seen to
#: really spend over their estimates (one call's error, not the mean's): the last calls of
#: a window, or an approval re-checked before its slot, must not overrun the pool.  Or
#: at the bound the recent calls show, when that is lower (see :func:`cost_inflation`).
COST_Z = Z_P99
#: The urgent reserve's quantile and tail.
RESERVE_Z = Z_P99
RESERVE_TAIL = 0.01
#: Urgent work nobody has seen yet may still come: this fraction of the limit is kept for
#: it from work that can be shed (background, low) and, once urgent work was ever seen on
#: the pool, from all paced work; released over the last RESERVE_FLOOR_RELEASE of the
#: window.  Normal work on a pool that never saw urgent work keeps no floor: nothing
#: is left on the table for urgency that never comes.
RESERVE_FLOOR_FRACTION = 0.02
RESERVE_FLOOR_RELEASE = 0.25
#: Urgent work that comes this close to the reset (this fraction of the window, at most
#: RESERVE_LAST_SECONDS) waits for the reset, a short wait: the reserve covers urgent work
#: until then, not until the reset, and its last units go to paced work.  Held to the
#: reset, a chunk of one urgent call is a whole unit of a small pool left at every reset
#: (multi-pool seed 13: 1 of 30).
RESERVE_LAST_FRACTION = 0.05
RESERVE_LAST_SECONDS = 30.0
#: Demand is trusted to last at least this long, at most until the reset, and for this
#: fraction of as long as it has lasted in the window so far.
MIN_HORIZON_SECONDS = 30.0
AGE_TRUST = 0.5
#: Budget left once the slots booked reach this fraction of the time to reset is spread
#: from now.
CURSOR_REACH = 0.5
#: A burst up to this fraction of the horizon's pace goes at once (GCRA tolerance).
BURST_FRACTION = 0.05
#: Work that does not fit this window asks again before the reset, in case budget comes
#: back (a raised limit, calls that cost less than estimated, approvals given back,
#: headroom or reserve not needed): after this fraction of the time to reset, no sooner
#: than MIN_RECHECK_SECONDS nor this fraction of the window (a few asks per window).
RECHECK_FRACTION = 0.25
MIN_RECHECK_SECONDS = 5.0
RECHECK_WINDOW_FRACTION = 1 / 60
#: ... and only while the reset is at least this far, or this fraction of the window when
#: that is nearer: on a one-minute window the last half minute is half its budget, and
#: budget that comes back then (a raised limit, calls that cost less than estimated, an
#: approval revoked) would wait for the reset unasked.  (Not much less: every piece of
#: work waiting asks each time, and work on leases asks per call while it waits.)
RECHECK_WITHIN_SECONDS = 30.0
RECHECK_WITHIN_WINDOW_FRACTION = 0.25


class Allocation(msgspec.Struct, frozen=True, gc=False):
    """One pool's allocation for one intent; every figure is in the pool's units or seconds."""

    pool_id: str
    remaining: float
    headroom: float
    reserve: float
    budget: float  # remaining − headroom − reserve (before this intent)
    horizon: float  # seconds over which the budget is spread
    rate: float  # the pace: budget / horizon, units per second
    wait: float  # seconds until this intent's slot (0: go now)
    cursor: float  # the pacing cursor once this intent is booked
    fits: bool  # the intent fits this window's budget and its slot comes before the reset
    recheck_at: float  # when an intent that does not fit should ask again
    #: Seconds from the decision to the pool's reset (infinite when none is known).
    to_reset: float = math.inf

    def explain(self) -> str:
        if not self.fits:
            return (
                f"{self.pool_id}: {self.remaining:,.0f} left − headroom {self.headroom:,.0f} "
                f"for unseen use − reserve {self.reserve:,.0f} for urgent work leaves "
                f"{max(self.budget, 0.0):,.0f}: not enough in this window"
            )
        return (
            f"{self.pool_id}: {self.remaining:,.0f} left − headroom {self.headroom:,.0f} − "
            f"reserve {self.reserve:,.0f} = {self.budget:,.0f} spread over "
            f"{self.horizon:,.0f}s ({self.rate:,.2f}/s): wait {self.wait:,.1f}s"
        )


def allocate(
    pool: PoolState,
    now: float,
    cost: float,
    seconds_to_reset: float | None,
    *,
    window_seconds: float | None = None,
    urgent: bool = False,
    book: bool = True,
    floor: bool = True,
) -> Allocation:
    """The allocation of ``cost`` from ``pool`` at ``now``.

    ``urgent`` intents may use the reserve; ``book`` False asks where the slot
    would be without booking ahead (background work, which must not queue in
    front of later normal work: it is told to come back at its slot instead).
    ``floor`` keeps the reserve's floor for urgent work not seen yet (see
    :data:`RESERVE_FLOOR_FRACTION`).
    """
    remaining = effective_remaining(pool, now)
    # What the call may really spend: it must fit this.
    worst = cost * cost_inflation(pool)
    # Calls that cost more than their estimate: each booked unit takes this many.
    cost = cost * max(1.0, pool.estimate_ratio or 1.0)
    horizon_to_reset = math.inf if seconds_to_reset is None else max(seconds_to_reset, 0.0)
    exposure = min(horizon_to_reset, EXPOSURE_GAPS * pool.observation_gap)
    headroom = min(remaining, chunk_quantile(pool.unseen, now, exposure, HEADROOM_Z, HEADROOM_TAIL))
    reserve = 0.0
    released = math.inf  # when the reserve is no longer kept (the last stretch of a window)
    if not urgent and seconds_to_reset is not None:
        until = horizon_to_reset
        if window_seconds:
            until -= min(RESERVE_LAST_SECONDS, RESERVE_LAST_FRACTION * window_seconds)
            released = now + until
        reserve = chunk_quantile(pool.urgent, now, until, RESERVE_Z, RESERVE_TAIL)
        if floor:
            reserve = max(reserve, _reserve_floor(pool, horizon_to_reset, window_seconds))
    reserve = min(reserve, remaining - headroom)
    budget = remaining - headroom - reserve
    reset_at = now + horizon_to_reset
    need = max(cost, worst)
    if budget < need <= (pool.limit or 0.0) - headroom - reserve and refill.refills(pool):
        # A token bucket does not wait for a reset: it refills what the call lacks.
        wait = (need - budget) / pool.refill_rate
        return Allocation(
            pool_id=pool.pool_id,
            remaining=remaining,
            headroom=headroom,
            reserve=reserve,
            budget=budget,
            horizon=horizon_to_reset,
            rate=pool.refill_rate,
            wait=wait,
            cursor=pool.paced_until,
            fits=True,
            recheck_at=now + wait,
        )
    if need > budget:
        recheck = reset_at
        if pool.limit is None or cost <= pool.limit:
            recheck = recheck_at(now, horizon_to_reset, window_seconds)
            if need <= remaining - headroom and now < released < recheck:
                recheck = released  # only the reserve holds it back: ask when it goes
        return Allocation(
            pool_id=pool.pool_id,
            remaining=remaining,
            headroom=headroom,
            reserve=reserve,
            budget=budget,
            horizon=0.0,
            rate=0.0,
            wait=0.0,
            cursor=pool.paced_until,
            fits=False,
            recheck_at=recheck if math.isfinite(recheck) else now + MIN_RECHECK_SECONDS,
        )
    if seconds_to_reset is None:
        # No reset known: nothing to spread over; the budget is all there is.
        return Allocation(
            pool_id=pool.pool_id,
            remaining=remaining,
            headroom=headroom,
            reserve=reserve,
            budget=budget,
            horizon=math.inf,
            rate=math.inf,
            wait=0.0,
            cursor=pool.paced_until,
            fits=True,
            recheck_at=now,
        )
    age = now - pool.demand_since if pool.demand_since is not None else 0.0
    if window_seconds:
        age = min(age, max(0.0, window_seconds - horizon_to_reset))
    if pool.raised_at is not None:
        # A raised limit is budget that came since, like a window's: spread from then.
        age = min(age, now - pool.raised_at)
    trusted = max(MIN_HORIZON_SECONDS, AGE_TRUST * age)
    booked_until = pool.paced_until
    if booked_until - now >= CURSOR_REACH * (reset_at - now):
        # The slots booked reach (nearly) to the reset, yet budget is left (a raised limit,
        # calls that cost less than booked, approvals given back): spread it from now,
        # beside them, not crammed into the window's last moments.
        booked_until = now
    elif booked_until - now > (spread := min(horizon_to_reset, trusted)):
        booked_until = _fresh_cursor(pool, now, booked_until, budget / spread)
    start = max(now, booked_until)
    horizon = min(max(reset_at - start, 0.0), trusted)
    rate = budget / horizon if horizon > 0 else math.inf
    interval = cost / rate if rate > 0 else math.inf
    tolerance = BURST_FRACTION * horizon
    slot = max(now, booked_until - tolerance)
    cursor = start + interval
    fits = slot < reset_at and math.isfinite(interval)
    wait = max(slot - now, interval) if book else slot - now
    if book and now + wait >= reset_at - RESET_SKEW:
        # Its slot runs to the announced reset (the last budget of the window): it goes
        # when the slot begins, not at its end, which is already the next window.
        wait = max(slot, start) - now
    return Allocation(
        pool_id=pool.pool_id,
        remaining=remaining,
        headroom=headroom,
        reserve=reserve,
        budget=budget,
        horizon=horizon,
        rate=rate,
        # Paced work waits at least its own slot's length (a few ms when the pace is fast).
        wait=wait,
        cursor=cursor if book else pool.paced_until,
        fits=fits,
        recheck_at=slot if fits else recheck_at(now, horizon_to_reset, window_seconds),
        to_reset=horizon_to_reset,
    )


def before_resets(allocations: list[Allocation], wait: float) -> float:
    """The wait of an intent over several pools, brought before a pool's reset if its
    window's budget would otherwise be lost.

    Each pool paces the intent to its own slot and the intent waits for the latest.
    When that comes after the reset of another pool the intent draws on, whose own
    slot is before it, the units it would have spent of that window are left unspent
    at its reset (a search paced by the core API: multi-pool seed 19, a window of 30
    searches ended 86 % used).  Every pool's budget fits the intent: it goes before
    that reset, ahead of the slower pools' pace (their budget is spent in their window
    either way; their cursor still books it at its slot).
    """
    if len(allocations) < 2 or not all(a.fits for a in allocations):
        return wait
    # ``to_reset`` counts the skew after the announced reset: land a skew before it.
    lost = [a for a in allocations if a.wait < a.to_reset - 2 * RESET_SKEW < wait]
    if not lost:
        return wait
    return min(a.to_reset for a in lost) - 2 * RESET_SKEW


def cost_inflation(pool: PoolState) -> float:
    """How many times its estimate one call on ``pool`` may really spend (at least 1).

    The P99 of a normal fit to the recent ratios of actual ÷ estimate
    (:data:`COST_Z`), or the bound the last calls themselves show
    (``PoolState.estimate_bound``) when that is lower: errors spread evenly (a
    call costs 80-120 % of its estimate) never reach the normal fit's P99, and
    that gap is a whole call on a small pool whose calls cost 5-20 units.  Tails
    heavier than normal keep the normal fit (their largest recent ratio is
    above it).
    """
    inflation = estimate_inflation(pool, COST_Z)
    bound = pool.estimate_bound
    if bound is not None and bound < inflation:
        return bound if bound > 1.0 else 1.0
    return inflation


def _fresh_cursor(pool: PoolState, now: float, booked_until: float, rate: float) -> float:
    """The pacing cursor, no further ahead than the calls booked need at today's pace.

    Slots booked at a slower pace (the last units of a window, before its limit
    was raised) stretch the cursor far beyond the time the budget now left is
    spread over: new work would queue behind them for as long and leave the
    budget unspent.  Only calls approved and not yet due, and units leased, hold
    the queue; at the pace the budget allows now, they take ``units / rate``.
    (Checked only when the cursor reaches past the whole horizon: the queue is
    summed then alone.)
    """
    if rate <= 0 or not math.isfinite(rate):
        return booked_until
    ahead = sum(c for t, c in pool.pending if t > now) + pool.leased
    return min(booked_until, now + ahead / rate)


def recheck_at(now: float, to_reset: float, window_seconds: float | None) -> float:
    """When work that does not fit before the reset asks again (see RECHECK_FRACTION)."""
    if not math.isfinite(to_reset):
        return now + MIN_RECHECK_SECONDS
    within = RECHECK_WITHIN_SECONDS
    if window_seconds:
        within = min(within, RECHECK_WITHIN_WINDOW_FRACTION * window_seconds)
    if to_reset < within:
        return now + to_reset  # the reset is near: no point asking in between
    gap = max(
        MIN_RECHECK_SECONDS,
        RECHECK_FRACTION * to_reset,
        RECHECK_WINDOW_FRACTION * (window_seconds or 0.0),
    )
    return now + min(to_reset, gap)


def _reserve_floor(pool: PoolState, to_reset: float, window_seconds: float | None) -> float:
    """The least kept for urgent work: a little of the limit, released towards the reset."""
    if pool.limit is None or not window_seconds:
        return 0.0
    release = RESERVE_FLOOR_RELEASE * window_seconds
    return RESERVE_FLOOR_FRACTION * pool.limit * min(1.0, to_reset / release)


def approval_holds(state: State, intent_id: str, starts_at: float, now: float) -> bool:
    """Whether an approval told to wait until ``starts_at`` still fits, checked at ``now``.

    Every pool it draws on must cover, by the provider's last word, what has
    been spent since plus every approved call due up to and including this
    one (this one at what it may really spend: see :data:`COST_Z`).  Unseen
    consumption or costlier calls can break an approval between its decision
    and its slot: then the agent must ask again, not spend.
    """
    charges = state.charges.get(intent_id, {})
    for pool_id, own in charges.items():
        pool = state.pools.get(pool_id)
        if pool is None or pool.observed_remaining is None:
            continue
        if refill.refills(pool):
            # The balance already owes every booked call; those due after this one
            # have not started yet, and the bucket has refilled since it was read.
            later = sum(c for t, c in pool.pending if t > starts_at)
            if refill.balance(pool, max(now, starts_at)) + later < -1e-6:
                return False
            continue
        if pool.reset_at is not None and now >= pool.reset_at:
            continue  # a reset since the last observation: the pool is full again
        due = sum(c for t, c in pool.pending if t <= starts_at)
        due += own * (cost_inflation(pool) - 1.0)
        unseen = chunk_quantile(
            pool.unseen, now, now - (pool.last_observed_at or now), HEADROOM_Z, HEADROOM_TAIL
        )
        if pool.immediate_since_observation + due + unseen > pool.observed_remaining + 1e-6:
            return False
    return True
