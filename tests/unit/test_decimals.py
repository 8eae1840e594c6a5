"""The engine's rounders give exactly what ``round(value, digits)`` gives."""

from __future__ import annotations

import math
import struct

from hypothesis import given
from hypothesis import strategies as st

from ratelord.engine.decimals import round3, round4, round6

ROUNDERS = {3: round3, 4: round4, 6: round6}


def same(a: float, b: float) -> bool:
    """Bit for bit (so that 0.0 and -0.0, or 5 and 5.0, differ)."""
    return type(a) is type(b) and (
        struct.pack("d", a) == struct.pack("d", b) if isinstance(a, float) else a == b
    )


@given(st.floats(allow_nan=False), st.sampled_from(sorted(ROUNDERS)))
def test_any_float_rounds_as_round_does(value: float, digits: int) -> None:
    assert same(ROUNDERS[digits](value), round(value, digits))


@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from(sorted(ROUNDERS)),
)
def test_values_next_to_a_tie_round_as_round_does(whole: int, steps: int, digits: int) -> None:
    """A decimal tie (k + 0.5 units of the last digit) and its nearest doubles either side."""
    value = (whole + 0.5) / 10**digits
    for _ in range(abs(steps)):
        value = math.nextafter(value, math.copysign(math.inf, steps))
    assert same(ROUNDERS[digits](value), round(value, digits))


def test_what_round_keeps() -> None:
    for value in (0.0, -0.0, 3600, -1.23456, math.inf, -math.inf, 2.0**60, 5e-324):
        assert same(round3(value), round(value, 3))
    assert math.isnan(round3(math.nan))
