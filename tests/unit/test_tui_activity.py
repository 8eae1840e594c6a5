from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratelord.schema import Decision, Modifications
from ratelord.tui.activity import (
    ActivityBuffer,
    ActivityEntry,
    ActivityFilter,
    decision_outcome,
    outcome,
)
from ratelord.tui.formatting import clock_time, epoch


def decided(
    seq: int, decision: str = "approve", agent: str = "a1", **payload: Any
) -> dict[str, Any]:
    return {
        "seq": seq,
        "event_id": f"ev_{seq}",
        "event_type": "intent_decided",
        "ts_event": 1_767_225_668.0,
        "dimensions": {
            "agent_id": agent,
            "identity_id": "id-a",
            "workload_id": "build",
            "scope_id": "sentinel:global",
        },
        "payload": {
            "intent_id": f"int_{seq}",
            "decision": decision,
            "tightest_pool": "mock:requests:acct-1",
            **payload,
        },
    }


def test_row_text_follows_the_spec_format() -> None:
    entry = ActivityEntry.from_event(
        decided(
            5, "approve_with_modifications", agent="ci-agent-2", modifications={"wait_seconds": 5}
        )
    )
    assert entry is not None
    assert entry.text == f"{clock_time(1_767_225_668.0)} [ci-agent-2] build -> MODIFIED (wait 5s)"
    assert entry.style == "yellow"
    assert entry.pool_id == "mock:requests:acct-1"


def test_other_event_types_make_no_row() -> None:
    assert ActivityEntry.from_event({"seq": 1, "event_type": "usage_observed"}) is None
    assert ActivityEntry.from_event(decided(2, decision="maybe")) is None


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"decision": "approve"}, "APPROVED"),
        (
            {"decision": "deny_with_reason", "reason": "hard/never-exhaust"},
            "DENIED (hard/never-exhaust)",
        ),
        ({"decision": "approve_with_modifications", "identity_switch": "id-b"}, "SWITCH (to id-b)"),
        ({"decision": "approve_with_modifications", "wait_seconds": 0}, "MODIFIED"),
    ],
)
def test_outcome_wording(kwargs: dict[str, Any], text: str) -> None:
    assert outcome(**kwargs) == text


def test_deferral_shows_the_local_time_it_ends() -> None:
    until = "2026-01-01T12:30:00Z"
    instant = epoch(until)
    assert instant is not None
    expected = f"DEFERRED (until {clock_time(instant)})"
    assert outcome("approve_with_modifications", defer_until=until, wait_seconds=60) == expected


def test_a_returned_decision_reads_like_its_row() -> None:
    decision = Decision(
        intent_id="i1",
        decision="approve_with_modifications",
        modifications=Modifications(wait_seconds=2),
    )
    assert decision_outcome(decision) == "MODIFIED (wait 2s)"


def test_filters_combine_and_quick_filter_is_case_insensitive() -> None:
    rows = [
        ActivityEntry.from_event(decided(1, "approve", agent="a1")),
        ActivityEntry.from_event(decided(2, "deny_with_reason", agent="a1", reason="x")),
        ActivityEntry.from_event(decided(3, "deny_with_reason", agent="b2", reason="x")),
    ]
    buffer = ActivityBuffer()
    for row in rows:
        assert row is not None and buffer.add(row)
    denied_a1 = ActivityFilter(agent="a1", decision="deny_with_reason")
    assert [r.seq for r in buffer.select(denied_a1)] == [2]
    assert [r.seq for r in buffer.select(ActivityFilter(text="[B2]"))] == [3]
    assert [r.seq for r in buffer.select(ActivityFilter(text="ACCT-1"))] == [1, 2, 3]
    assert denied_a1.describe() == "agent=a1 decision=deny_with_reason"


@given(st.lists(st.integers(1, 50), max_size=200))
def test_buffer_never_shows_a_row_twice_or_out_of_order(seqs: list[int]) -> None:
    buffer = ActivityBuffer(capacity=1000)
    for seq in seqs:
        entry = ActivityEntry.from_event(decided(seq))
        assert entry is not None
        buffer.add(entry)
    shown = [row.seq for row in buffer]
    assert shown == sorted(set(shown))
    running_max = 0
    expected = []
    for seq in seqs:
        if seq > running_max:
            expected.append(seq)
            running_max = seq
    assert shown == expected


def test_buffer_keeps_only_the_newest_rows() -> None:
    buffer = ActivityBuffer(capacity=3)
    for seq in range(1, 6):
        entry = ActivityEntry.from_event(decided(seq))
        assert entry is not None
        buffer.add(entry)
    assert [row.seq for row in buffer] == [3, 4, 5]
    assert buffer.last_seq == 5
