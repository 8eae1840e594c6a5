"""Rows of the activity stream, built from ``intent_decided`` events, and their filters."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

import msgspec

from ratelord.client.events import IntentDecided, event_from
from ratelord.schema import Decision, DecisionKind
from ratelord.tui.formatting import clock_time, duration, epoch

Dimension = Literal["agent", "identity", "workload"]

DECISION_STYLE: dict[DecisionKind, str] = {
    "approve": "green",
    "approve_with_modifications": "yellow",
    "deny_with_reason": "bold red",
}


def outcome(
    decision: DecisionKind,
    *,
    wait_seconds: float = 0.0,
    defer_until: str | None = None,
    identity_switch: str | None = None,
    reason: str | None = None,
) -> str:
    """``APPROVED``, ``MODIFIED (wait 5s)``, ``DEFERRED (until 12:30:00)``, ``SWITCH (to id)``
    or ``DENIED (reason)``."""
    if decision == "approve":
        return "APPROVED"
    if decision == "deny_with_reason":
        return f"DENIED ({reason or 'no reason given'})"
    if identity_switch:
        return f"SWITCH (to {identity_switch})"
    until = epoch(defer_until)
    if until is not None:
        return f"DEFERRED (until {clock_time(until)})"
    if wait_seconds > 0:
        return f"MODIFIED (wait {duration(wait_seconds)})"
    return "MODIFIED"


def decision_outcome(decision: Decision) -> str:
    """The activity-row wording of a decision returned by ``POST /v1/intent``."""
    mods = decision.modifications
    return outcome(
        decision.decision,
        wait_seconds=mods.wait_seconds,
        defer_until=mods.defer_until,
        identity_switch=mods.identity_switch,
        reason=decision.reason,
    )


@dataclass(frozen=True)
class ActivityEntry:
    seq: int
    ts: float
    agent_id: str
    identity_id: str
    workload_id: str
    pool_id: str
    decision: DecisionKind
    text: str

    @property
    def style(self) -> str:
        return DECISION_STYLE[self.decision]

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ActivityEntry | None:
        """The row for an ``intent_decided`` event; ``None`` for any other event."""
        if event.get("event_type") != "intent_decided":
            return None  # the stream's other events are not converted at all
        try:
            decided = event_from(event)
        except msgspec.ValidationError:
            return None  # not the shape this version knows: no row rather than a wrong one
        if not isinstance(decided, IntentDecided):
            return None
        p, dims = decided.payload, decided.dimensions
        kind = p.decision
        mods = p.modifications
        ts = decided.ts_event or decided.ts_ingest
        said = outcome(
            kind,
            wait_seconds=mods.wait_seconds or 0.0,
            defer_until=mods.defer_until,
            identity_switch=mods.identity_switch,
            reason=p.reason,
        )
        return cls(
            seq=decided.seq,
            ts=ts,
            agent_id=dims.agent_id,
            identity_id=dims.identity_id,
            workload_id=dims.workload_id,
            pool_id=p.tightest_pool or decided.pool_id or "",
            decision=kind,
            text=f"{clock_time(ts)} [{dims.agent_id}] {dims.workload_id} -> {said}",
        )


@dataclass(frozen=True)
class ActivityFilter:
    """Which rows show: exact dimension matches, a decision, and a quick-filter substring."""

    agent: str | None = None
    identity: str | None = None
    workload: str | None = None
    decision: DecisionKind | None = None
    text: str = ""

    def matches(self, entry: ActivityEntry) -> bool:
        return (
            (self.agent is None or entry.agent_id == self.agent)
            and (self.identity is None or entry.identity_id == self.identity)
            and (self.workload is None or entry.workload_id == self.workload)
            and (self.decision is None or entry.decision == self.decision)
            and self.text_matches(entry.text, entry.identity_id, entry.pool_id)
        )

    def text_matches(self, *fields: str) -> bool:
        """The quick filter: a case-insensitive substring of any of ``fields``."""
        needle = self.text.casefold()
        return not needle or any(needle in f.casefold() for f in fields)

    def with_dimension(self, dimension: Dimension, value: str) -> ActivityFilter:
        match dimension:
            case "agent":
                return replace(self, agent=value)
            case "identity":
                return replace(self, identity=value)
            case "workload":
                return replace(self, workload=value)

    def describe(self) -> str:
        parts = [
            f"{name}={value}"
            for name, value in (
                ("agent", self.agent),
                ("identity", self.identity),
                ("workload", self.workload),
                ("decision", self.decision),
            )
            if value is not None
        ]
        if self.text:
            parts.append(f"/{self.text}")
        return " ".join(parts)


class ActivityBuffer:
    """The newest ``capacity`` rows, in seq order.  Rows at or below the last seq are dropped,
    so replays after a reconnection never show twice."""

    def __init__(self, capacity: int = 2000) -> None:
        self._rows: deque[ActivityEntry] = deque(maxlen=capacity)
        self.last_seq = 0

    def add(self, entry: ActivityEntry) -> bool:
        if entry.seq <= self.last_seq:
            return False
        self._rows.append(entry)
        self.last_seq = entry.seq
        return True

    def __iter__(self) -> Iterator[ActivityEntry]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def select(self, flt: ActivityFilter) -> list[ActivityEntry]:
        return [row for row in self._rows if flt.matches(row)]
