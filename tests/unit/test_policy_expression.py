"""Condition compilation: the token rewrite (numbers, flat names) and what it must not touch."""

from __future__ import annotations

import cel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratelord.engine.policy import PolicyError
from ratelord.engine.policy.activation import ContextPlan
from ratelord.engine.policy.expression import analyse, compile_condition, tokenize
from ratelord.engine.policy.variables import example_context


def rewritten(text: str) -> str:
    return analyse(tokenize(text)).text


@pytest.mark.parametrize(
    ("written", "compiled"),
    [
        ("pool.remaining < 100", "pool__remaining < 100.0"),
        ("pool . remaining<100", "pool__remaining<100.0"),
        ("tte.p99 < 1e3 && tte.p90 > 0.5", "tte__p99 < 1e3 && tte__p90 > 0.5"),
        ("0x10 < 3u", "0x10 < 3u"),
        ("int(time.weekday) % 2 == 0", "int(time__weekday) % 2 == 0.0"),
        ('intent.agent_id == "pool.remaining 10"', 'intent__agent_id == "pool.remaining 10"'),
        ("r'a\\' == 'a 1'", "r'a\\' == 'a 1'"),
        ("'''x 1''' == \"\"\"y\"\"\"", "'''x 1''' == \"\"\"y\"\"\""),
        ("identity.labels.team == 'x'", "identity__labels.team == 'x'"),
        ("has(pool.id)", "has(pool.id)"),
        ("has(identity.labels.team)", "has(identity__labels.team)"),
        ("intent.urgency.startsWith('b')", "intent__urgency.startsWith('b')"),
        ("intent['cost'] > 1", "intent['cost'] > 1.0"),
        ("{'pool': 1}.pool == 1", "{'pool': 1.0}.pool == 1.0"),
    ],
)
def test_rewrite(written: str, compiled: str) -> None:
    assert rewritten(written) == compiled


def test_reads_are_split_into_flat_and_nested() -> None:
    found = analyse(
        tokenize(
            "has(pool.id) && pool.remaining > 1 && intent['x'] == 1 && identity.labels.a == 'b'"
        )
    )
    assert found.flat == [("pool", "remaining"), ("identity", "labels")]
    assert found.nested == [("pool", "id"), ("intent",)]
    assert found.map_keys == [("identity", "labels", "a")]


def test_macro_variables_are_bound_names() -> None:
    found = analyse(tokenize("identity.labels.exists(k, k == 'a') && agent.labels.all(v, v != '')"))
    assert found.bound == {"k", "v"}


PRINTABLE = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\\\"'"), max_size=30
)


@given(PRINTABLE)
def test_string_literals_survive_the_rewrite(value: str) -> None:
    condition = compile_condition(f'intent.agent_id == "{value}"')
    plan = ContextPlan.of(condition.flat, condition.nested)
    ctx = example_context({"intent.agent_id": value})
    assert condition.program.execute(cel.Context(plan.build(ctx))) is True


@given(st.integers(0, 10**9), st.integers(0, 10**6))
def test_integer_arithmetic_on_doubles_matches_python(remaining: int, literal: int) -> None:
    condition = compile_condition(f"pool.remaining - {literal} < {literal}")
    plan = ContextPlan.of(condition.flat, condition.nested)
    ctx = example_context({"pool.remaining": remaining})
    result = condition.program.execute(cel.Context(plan.build(ctx)))
    assert result is (float(remaining) - literal < literal)


def test_user_cannot_name_the_flat_variables() -> None:
    with pytest.raises(PolicyError, match="unknown variable 'pool__remaining'"):
        compile_condition("pool__remaining < 1")
