"""RFC 3339 formatting of epoch seconds: the cached fast path agrees with datetime."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from ratelord.engine.clock import iso, parse_iso


def by_datetime(ts: float) -> str:
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@given(st.floats(min_value=0, max_value=4e9))
def test_iso_matches_datetime(ts: float) -> None:
    assert iso(ts) == by_datetime(ts)


def test_iso_edges() -> None:
    assert iso(None) is None
    assert iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso(1_767_225_599.9999996) == "2026-01-01T00:00:00.000Z"  # rounds up a second
    assert iso(1_767_225_600.9996) == "2026-01-01T00:00:00.999Z"  # milliseconds truncate
    assert abs(parse_iso(iso(1_767_225_600.25) or "") - 1_767_225_600.25) < 1e-9
