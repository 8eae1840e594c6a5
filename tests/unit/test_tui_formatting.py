from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratelord.tui import formatting as fmt


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "∞"),
        (math.inf, "∞"),
        (0, "0s"),
        (-3, "0s"),
        (45.4, "45s"),
        (185, "3m05s"),
        (7800, "2h10m"),
        (90_000, "1d01h"),
        (1e12, ">999d"),
    ],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


@given(st.floats(allow_nan=False))
def test_duration_never_raises_and_stays_short(seconds: float) -> None:
    assert len(fmt.duration(seconds)) <= 12


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "?"),
        (0, "0"),
        (4999.0, "4999"),
        (12.5, "12.5"),
        (250_000, "250k"),
        (3_000_000, "3.0M"),
    ],
)
def test_quantity(value: float | None, text: str) -> None:
    assert fmt.quantity(value) == text


@pytest.mark.parametrize(("per_second", "text"), [(0, "0"), (2.5, "2.5/s"), (0.05, "3.0/min")])
def test_rate_picks_a_readable_unit(per_second: float, text: str) -> None:
    assert fmt.rate(per_second) == text


def test_seconds_until_reads_rfc3339_and_never_goes_negative() -> None:
    reset = "2026-01-01T00:01:00Z"
    start = fmt.epoch("2026-01-01T00:00:00Z")
    assert start is not None
    assert fmt.seconds_until(reset, start) == 60
    assert fmt.seconds_until(reset, start + 120) == 0
    assert fmt.seconds_until(None, start) is None
    assert fmt.seconds_until("not a time", start) is None
