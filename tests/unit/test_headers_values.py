"""Retry-After, Go durations and the structured-field reader behind the header parsers."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratelord.headers import parse_go_duration, parse_retry_after
from ratelord.headers._sf import SFError, Token, parse_dictionary, parse_list

NOW = 1_767_225_600.0  # Thu, 01 Jan 2026 00:00:00 GMT

# --------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("Thu, 01 Jan 2026 00:02:00 GMT", 120.0),  # IMF-fixdate
        ("Thursday, 01-Jan-26 00:02:00 GMT", 120.0),  # RFC 850
        ("Thu Jan  1 00:02:00 2026", 120.0),  # asctime
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),  # the past means now
    ],
)
def test_retry_after_forms(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(expected)


def test_retry_after_date_is_measured_against_the_date_header() -> None:
    # The server's clock is 10 minutes behind ours: the wait is still 60 s.
    wait = parse_retry_after(
        "Wed, 31 Dec 2025 23:51:00 GMT", now=NOW, date="Wed, 31 Dec 2025 23:50:00 GMT"
    )
    assert wait == pytest.approx(60.0)


@pytest.mark.parametrize("value", ["-5", "soon", "", "1e3", "inf", "12 s"])
def test_retry_after_garbage_is_none_with_a_warning(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ratelord.headers"):
        assert parse_retry_after(value, now=NOW) is None
    assert "retry-after" in caplog.text


def test_retry_after_is_capped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ratelord.headers"):
        assert parse_retry_after("999999", now=NOW, cap=30) == 30
    assert "implausible" in caplog.text


# --------------------------------------------------------------------------- Go durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("4m12.172s", 252.172),
        ("23h18m29.144s", 83909.144),
        ("1.5µs", 1.5e-6),
        ("3us", 3e-6),
        ("7μs", 7e-6),
        ("250ns", 2.5e-7),
        ("0s", 0.0),
        ("0", 0.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "-1s", "1x", "s", "1h 2m", "1.2.3s", "ms"])
def test_not_go_durations(text: str) -> None:
    assert parse_go_duration(text) is None


@given(
    hours=st.integers(0, 10_000),
    minutes=st.integers(0, 59),
    millis=st.integers(0, 59_999),
)
def test_go_duration_round_trip(hours: int, minutes: int, millis: int) -> None:
    """Durations written the way Go's ``Duration.String()`` writes them read back exactly."""
    seconds = f"{millis // 1000}.{millis % 1000:03d}".rstrip("0").rstrip(".")
    text = f"{hours}h{minutes}m{seconds}s" if hours else f"{minutes}m{seconds}s"
    assert parse_go_duration(text) == pytest.approx(hours * 3600 + minutes * 60 + millis / 1000)


@given(millis=st.integers(1, 999))
def test_go_sub_second_round_trip(millis: int) -> None:
    assert parse_go_duration(f"{millis}ms") == pytest.approx(millis / 1000)


# --------------------------------------------------------------------------- structured fields


def test_sf_list_items_and_params() -> None:
    items = parse_list('"a";q=1;w=2.5, tok;flag, :aGk=:, ?0, -3')
    assert items == [
        ("a", {"q": 1, "w": 2.5}),
        ("tok", {"flag": True}),
        (b"hi", {}),
        (False, {}),
        (-3, {}),
    ]
    assert isinstance(items[1][0], Token)
    assert not isinstance(items[0][0], Token)


def test_sf_string_escapes() -> None:
    assert parse_list(r'"say \"hi\" \\ bye"') == [('say "hi" \\ bye', {})]


def test_sf_dictionary_with_bare_keys() -> None:
    assert parse_dictionary("limit=100, remaining=50, fresh") == {
        "limit": (100, {}),
        "remaining": (50, {}),
        "fresh": (True, {}),
    }


@pytest.mark.parametrize(
    "text",
    ['"a" "b"', "1234567890123456", "1.2345", r'"\x"', ":not base64!:", "?2", "a,", "Upper=1"],
)
def test_sf_syntax_errors(text: str) -> None:
    with pytest.raises(SFError):
        parse_dictionary(text) if "=" in text else parse_list(text)


@given(
    name=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    quota=st.integers(0, 10**15 - 1),
)
def test_sf_string_and_integer_round_trip(name: str, quota: int) -> None:
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert parse_list(f"{quoted};q={quota}") == [(name, {"q": quota})]
