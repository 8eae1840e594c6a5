"""How long a decision says to wait, and whether the caller will wait that long."""

from __future__ import annotations

from dataclasses import dataclass

from ratelord.engine.clock import parse_iso
from ratelord.schema import Decision

#: How many deferrals in a row a caller follows before it gives up (and denies).
MAX_DEFERRALS = 3


def waited_approval(decision: Decision) -> bool:
    """An approval the daemon told to wait: check it again before spending (see ``valid_until``)."""
    return (
        decision.allowed
        and decision.valid_until is not None
        and decision.modifications.defer_until is None
    )


def expired(decision: Decision, now: float) -> bool:
    """Past the approval's ``valid_until`` (an unreadable one counts as past: ask again)."""
    if decision.valid_until is None:
        return False
    try:
        return now > parse_iso(decision.valid_until)
    except ValueError:
        return True


def is_deferral(decision: Decision) -> bool:
    """An approval for later: nothing is reserved, so ask again once the wait is over."""
    return decision.allowed and decision.modifications.defer_until is not None


@dataclass(frozen=True)
class Admission:
    """``allowed`` after sleeping ``wait_seconds``; otherwise ``reason`` says why not."""

    allowed: bool
    wait_seconds: float
    reason: str | None


def admit(
    decision: Decision, *, now: float, can_wait: bool = True, max_wait: float | None = None
) -> Admission:
    """Read ``decision`` for a caller that can (or cannot) wait, at most ``max_wait`` s.

    The wait is the larger of ``wait_seconds`` and the time until
    ``defer_until``.  A wait the caller will not take turns the decision into
    a denial whose reason says so.
    """
    if not decision.allowed:
        return Admission(False, 0.0, decision.reason or "denied by ratelord-d (no reason given)")
    wait = max(0.0, decision.modifications.wait_seconds)
    defer_until = decision.modifications.defer_until
    if defer_until is not None:
        try:
            wait = max(wait, parse_iso(defer_until) - now)
        except ValueError:
            return Admission(
                False, 0.0, f"ratelord-d deferred to an unreadable time {defer_until!r}"
            )
    told = f"ratelord-d asked to wait {wait:.1f} s" + (
        f" ({decision.reason})" if decision.reason else ""
    )
    if wait > 0 and not can_wait:
        return Admission(False, 0.0, f"{told}, but this caller cannot wait")
    if max_wait is not None and wait > max_wait:
        return Admission(False, 0.0, f"{told}, more than max_wait={max_wait:g} s")
    return Admission(True, wait, decision.reason)
