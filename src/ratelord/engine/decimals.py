"""``round(value, digits)``, exactly, at half its cost.

Every decision rounds a few figures for its explanation (seconds to reset, P99
time to exhaustion, an allocation's budget), and CPython's ``round`` with
digits formats the float as a decimal string and parses it back (~3,000
instructions, as much as a third of a forecast).  The rounders here get the
same double from arithmetic: scaled by ``10**digits``, a positive value below
:data:`FAST_BELOW` is within ``2**-11`` of the exact product, so unless it
lies within :data:`TIE_MARGIN` of a half it rounds to the same whole number
``k``, and ``k / 10**digits`` (one correctly rounded division of two exact
doubles) is the double nearest that decimal, which is what ``round`` returns.
Anything else (a near tie, a negative or huge value, a zero whose sign
matters, NaN, an int) goes to ``round`` itself.
"""

from __future__ import annotations

from collections.abc import Callable

#: Scaled values below ``2**42`` are within ``2**-11`` of the exact product.
FAST_BELOW = 2.0**42
#: How far from a half the scaled value must be to round like the exact product.
TIE_MARGIN = 1e-3


def rounder(digits: int) -> Callable[[float], float]:
    """A function that returns ``round(value, digits)`` (see the module doc)."""
    scale = 10.0**digits
    below, above = 0.5 - TIE_MARGIN, 0.5 + TIE_MARGIN

    def rounded(value: float) -> float:
        scaled = value * scale
        if 0.0 < scaled < FAST_BELOW and type(value) is float:  # round keeps an int an int
            whole = scaled // 1.0
            fraction = scaled - whole
            if fraction < below:
                return whole / scale
            if fraction > above:
                return (whole + 1.0) / scale
        return round(value, digits)

    return rounded


round3 = rounder(3)
round4 = rounder(4)
round6 = rounder(6)
