"""Reason templates: dict lookups only, format specs, missing keys."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratelord.engine.policy.template import parse_template, plain
from ratelord.engine.policy.variables import example_context


def render(text: str, values: dict[str, Any] | None = None) -> str:
    return parse_template(text).render(example_context(values))


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("{risk.p_exhaustion:.0%}", {"risk.p_exhaustion": 0.734}, "73%"),
        ("{pool.remaining:,.1f} left", {"pool.remaining": 4200.0}, "4,200.0 left"),
        ("{pool.remaining}", {"pool.remaining": 90.0}, "90"),
        ("{pool.utilization}", {"pool.utilization": 0.123456789}, "0.123457"),
        ("{tte.p99}", {}, "inf"),
        ("{pool.limit}", {"pool.limit": 5e15}, "5e+15"),
        ("{pool.id} ({intent.urgency})", {}, "github:core:user/alice (normal)"),
        ("{identity.labels.team}", {}, "infra"),
        ("{identity.labels.missing}", {}, "?"),
        ("{{literal}} {intent.cost}", {}, "{literal} 1"),
        ("{risk.p_exhaustion:.0%}", {"risk.p_exhaustion": "n/a"}, "n/a"),
    ],
)
def test_render(text: str, values: dict[str, Any], expected: str) -> None:
    assert render(text, values) == expected


def test_missing_keys_render_as_question_marks() -> None:
    template = parse_template("{pool.id}/{pool.remaining:.0f}")
    assert template.render({}) == "?/?"
    assert template.render({"pool": None}) == "?/?"


def test_prefix_is_literal() -> None:
    assert parse_template("{pool.id}", prefix="rule a/{b}: ").render(example_context()) == (
        "rule a/{b}: github:core:user/alice"
    )


def test_no_attribute_access_through_values() -> None:
    # A value with attributes is shown as a value; its attributes are never looked up.
    class Sneaky:
        secret = "token"

        def __str__(self) -> str:
            return "sneaky"

    assert parse_template("{pool.id}").render({"pool": {"id": Sneaky()}}) == "sneaky"


@pytest.mark.parametrize(
    ("value", "text"),
    [(5.0, "5"), (-3.0, "-3"), (0.5, "0.5"), (float("nan"), "nan"), ("x", "x"), (7, "7")],
)
def test_plain(value: Any, text: str) -> None:
    assert plain(value) == text


VALUES = st.one_of(
    st.none(),
    st.floats(allow_nan=True),
    st.integers(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@given(
    st.dictionaries(
        st.sampled_from(["pool", "risk", "intent"]),
        st.one_of(VALUES, st.dictionaries(st.sampled_from(["id", "p_exhaustion", "cost"]), VALUES)),
    )
)
def test_render_never_raises(ctx: dict[str, Any]) -> None:
    template = parse_template("{pool.id} {risk.p_exhaustion:.0%} {intent.cost:>8.2f}")
    assert isinstance(template.render(ctx), str)
