"""Pure pieces of the CLI: the SSE parser and value formatting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ratelord.cli._output import decision_label, fmt_duration, sparkline, worst_posture
from ratelord.client._sse import SseMessage, parse_sse

# ------------------------------------------------------------------ SSE

_line_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"),
    max_size=30,
)


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=10**9),
            st.sampled_from(["intent_decided", "usage_observed", "posture_changed"]),
            st.lists(_line_text, min_size=1, max_size=3),
        ),
        max_size=8,
    )
)
def test_sse_messages_round_trip_with_pings_between(messages: list[tuple[int, str, list[str]]]):
    lines: list[str] = []
    for seq, event, data in messages:
        lines += [": ping", f"id: {seq}", f"event: {event}", *(f"data: {d}" for d in data), ""]
    parsed = list(parse_sse(lines))
    assert parsed == [SseMessage(event=e, data="\n".join(d), id=str(s)) for s, e, d in messages]


def test_sse_follows_the_standard_on_edge_cases():
    lines = [
        "retry: 1000",  # ignored
        "data:no-space",  # the single optional space after the colon
        "",
        "event: x",
        "",  # no data: nothing is dispatched and the event name is reset
        "id: 7",
        "data:  two spaces",
        "",
        "data: keeps id",  # the last event id carries over
        "",
    ]
    assert list(parse_sse(lines)) == [
        SseMessage(event="message", data="no-space", id=None),
        SseMessage(event="message", data=" two spaces", id="7"),
        SseMessage(event="message", data="keeps id", id="7"),
    ]


def test_sse_drops_an_unterminated_last_message():
    assert list(parse_sse(["id: 1", "data: half"])) == []


# ------------------------------------------------------------------ values


def test_durations_read_like_a_person_would_say_them():
    assert fmt_duration(None) == "∞"
    assert fmt_duration(0.004) == "4ms"
    assert fmt_duration(2.5) == "2.5s"
    assert fmt_duration(5.0) == "5s"
    assert fmt_duration(59.6) == "1m 00s"
    assert fmt_duration(3725) == "1h 02m"
    assert fmt_duration(2 * 86400 + 3 * 3600) == "2d 03h"
    assert fmt_duration(-90) == "-1m 30s"


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_durations_use_at_most_two_units(seconds: float):
    text = fmt_duration(seconds)
    assert 1 <= len(text.split()) <= 2
    assert text[0].isdigit()


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), max_size=50))
def test_sparkline_has_one_bar_per_value_and_peaks_at_the_maximum(values: list[float]):
    line = sparkline(values)
    assert len(line) == len(values)
    if values:
        assert line[values.index(max(values))] == "█"


def test_worst_posture_wins():
    assert worst_posture([]) == "OK"
    assert worst_posture(["OK", "CRIT", "WARN"]) == "CRIT"
    assert worst_posture(["OK", "WARN"]) == "WARN"


def test_decision_labels_match_the_activity_stream_words():
    mods = {"wait_seconds": 0.0, "defer_until": None, "identity_switch": None}
    assert decision_label("approve", mods, None).plain == "APPROVED"
    assert decision_label(
        "approve_with_modifications", {**mods, "wait_seconds": 5}, None
    ).plain == ("MODIFIED (wait 5s)")
    deferred = {**mods, "defer_until": "2026-01-01T12:30:00Z"}
    assert decision_label("approve_with_modifications", deferred, None).plain == (
        "DEFERRED (until 12:30:00)"
    )
    switched = {**mods, "identity_switch": "id-b"}
    assert decision_label("approve_with_modifications", switched, None).plain == "SWITCH (to id-b)"
    assert decision_label("deny_with_reason", mods, "rule x").plain == "DENIED (rule x)"
