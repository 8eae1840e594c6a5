"""Go-style durations as OpenAI sends them in ``x-ratelimit-reset-*``.

``time.Duration.String()`` writes ``1h2m3.5s``, ``6m0s``, ``20ms``, ``1.5µs``
or ``0s``; Go's parser also takes ``us``/``µs``/``μs``/``ns`` and a bare ``0``.
"""

from __future__ import annotations

import re

_UNIT_SECONDS = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC greek mu
    "ns": 1e-9,
}
# Longer units first so "ms" is not read as "m" followed by garbage.
_UNITS = "|".join(sorted(_UNIT_SECONDS, key=len, reverse=True))
_PART = re.compile(rf"(\d+(?:\.\d*)?|\.\d+)({_UNITS})")
_WHOLE = re.compile(rf"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:{_UNITS}))+")


def parse_go_duration(text: str) -> float | None:
    """Seconds in a non-negative Go duration string, or ``None`` if it is not one."""
    text = text.strip()
    if text == "0":
        return 0.0
    if not _WHOLE.fullmatch(text):
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))
