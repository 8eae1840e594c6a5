"""Native conditions: which conditions run without CEL, and that they agree with CEL."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import cel
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratelord.engine.policy import (
    Action,
    CompiledPolicy,
    PolicyError,
    default_policy,
    load_policy_text,
)
from ratelord.engine.policy import compiled as compiled_module
from ratelord.engine.policy.activation import ContextPlan
from ratelord.engine.policy.expression import Condition, compile_condition
from ratelord.engine.policy.native import EvaluationError, NativeCondition, translate
from ratelord.engine.policy.variables import example_context

INF = float("inf")
NAN = float("nan")
BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_policy.py"


def native(source: str) -> NativeCondition | None:
    return translate(compile_condition(source))


def policy(*rules: tuple[str, str]) -> CompiledPolicy:
    """One soft global policy ``p`` of (name, when) rules that deny."""
    written = [{"name": name, "when": when, "action": "deny"} for name, when in rules]
    return load_policy_text(yaml.safe_dump({"policies": [{"id": "p", "rules": written}]}))


# --------------------------------------------------------------------------- what is translated

NATIVE = [
    "true",
    "pool.remaining < 100",
    "pool . remaining<100",
    "pool.remaining <= 1e3 && tte.p90 >= .5",
    "pool.remaining - intent.cost < pool.limit * 0.05",
    "tte.p99 < pool.seconds_to_reset / 2",
    "-pool.remaining > -10 || !(margin.seconds < 0)",
    "(risk.p_exhaustion > 0.5 ? 1 : 2) == 1",
    'intent.urgency in ["background", "low"]',
    "time.weekday in [5, 6]",
    "intent.cost in []",
    'intent.urgency == "high" || intent.urgency != "low"',
    "intent.agent_id < 'm'",
    "intent.agent_id + '/' + intent.workload_id == 'a/b'",
    "has(identity.labels.team) && identity.labels.team == 'infra'",
    "has(pool.id)",
    'agent.labels["env"] == "staging"',
    '"env" in agent.labels',
    "intent.agent_id.startsWith('crawler-') && pool.id.endsWith('/alice')",
    "('x' + pool.id).contains(identity.labels.team)",
    "(pool.remaining < 1) == (intent.cost > 1) == true",
    "system.status == 'degraded' && provider.status == 'ok'",
]

FALLBACK = [
    "int(time.weekday) % 2 == 0",  # int(), %
    "size(identity.labels) > 0",  # size()
    "intent.agent_id.size() > 3",
    "intent.agent_id.matches('^crawler-[0-9]+$')",
    "identity.labels.exists(k, k.startsWith('cost'))",  # macros
    "{'a': 1}.a == 1",  # map literals
    'intent["urgency"] == "low"',  # a whole variable
    "intent.urgency == 'a\\'b'",  # escapes
    "intent.urgency == r'low'",  # raw strings
    "intent.urgency == '''low'''",
    "pool.remaining < 0x10",  # an int literal
    "pool.remaining < 100u",  # a uint literal
    "pool.remaining == 'x'",  # mixed types: false in CEL, left to it
    "pool.remaining in [1, 'a']",
    "(pool.remaining < 1) < true",  # ordering bools
    "pool.remaining in [intent.cost, 1]",  # a list of more than literals
    "identity.labels[intent.urgency] == 'x'",
    "double(pool.remaining) > 1",
    "identity.labels == {}",
]


@pytest.mark.parametrize("source", NATIVE)
def test_translated(source: str) -> None:
    assert native(source) is not None


@pytest.mark.parametrize("source", FALLBACK)
def test_left_to_cel(source: str) -> None:
    assert native(source) is None


def test_reads_are_the_fields_in_order() -> None:
    translated = native("has(pool.id) && pool.remaining - intent.cost < pool.remaining")
    assert translated is not None
    assert translated.reads == (("pool", "id"), ("pool", "remaining"), ("intent", "cost"))


@functools.cache
def bench() -> Any:
    """bench/bench_policy.py, which is not a package."""
    spec = importlib.util.spec_from_file_location("bench_policy", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_built_in_policy_is_all_native() -> None:
    assert default_policy().cel_rules == ()


def test_the_benchmarked_20_rules_are_all_native() -> None:
    compiled = load_policy_text(bench().TWENTY_RULES)
    assert (len(compiled.rules), compiled.cel_rules) == (21, ())


def test_cel_rules_are_only_the_untranslatable_ones() -> None:
    compiled = policy(("a", "pool.remaining < 100"), ("b", "int(time.minute) % 2 == 0"))
    assert [rule.name for rule in compiled.cel_rules] == ["b"]


# --------------------------------------------------------------------------- mixed policies


def test_native_and_cel_rules_together_keep_the_order_and_errors() -> None:
    compiled = policy(
        ("cel-low", "int(pool.remaining) < 100"),
        ("native-low", "pool.remaining < 100"),
        ("cel-label", 'identity.labels["team"].size() == 5'),
        ("native-label", "identity.labels.tier == 'gold'"),
        ("cel-even", "int(time.minute) % 2 == 1"),
    )
    outcome = compiled.evaluate(example_context({"pool.remaining": 50.0}))
    assert [fired.rule for fired in outcome.fired] == [
        "cel-low",
        "native-low",
        "cel-label",
        "cel-even",
    ]
    assert outcome.errors == ["rule p/native-label: no such key 'tier' in identity.labels"]
    outcome = compiled.evaluate(example_context({"identity.labels": {}}))
    assert outcome.fired[0].rule == "cel-even"
    assert [error.split(":")[0] for error in outcome.errors] == [
        "rule p/cel-label",
        "rule p/native-label",
    ]


def test_all_cel_and_native_outcomes_agree_on_the_bench_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = load_policy_text(bench().TWENTY_RULES)
    monkeypatch.setattr(compiled_module, "translate", lambda condition: None)
    slow = load_policy_text(bench().TWENTY_RULES)
    assert len(slow.cel_rules) == len(slow.rules)
    contexts = [*bench().stream(200, seed=3), bench().CALM, bench().HOT]
    contexts.append(example_context({"agent.labels": {"env": "staging"}, "pool.remaining": 10}))
    for ctx in contexts:
        assert fast.evaluate(ctx) == slow.evaluate(ctx)


# --------------------------------------------------------------------------- run-time errors


def test_missing_label_names_the_key_and_the_map() -> None:
    outcome = policy(("team", 'identity.labels.team == "x"')).evaluate(
        example_context({"identity.labels": {}})
    )
    assert outcome.errors == ["rule p/team: no such key 'team' in identity.labels"]
    assert outcome.action is Action.APPROVE


def test_missing_field_and_variable_are_errors() -> None:
    compiled = policy(("r", "pool.limit > 1"))
    ctx = example_context()
    del ctx["pool"]["limit"]
    assert compiled.evaluate(ctx).errors == ["rule p/r: no value for pool.limit"]
    del ctx["pool"]
    assert compiled.evaluate(ctx).errors == [
        "rule builtin/physical-floor: no value for pool.remaining: pool is not in the context",
        "rule p/r: no value for pool.limit: pool is not in the context",
    ]


def test_a_value_of_the_wrong_type_is_an_error() -> None:
    compiled = policy(("r", "pool.limit > 1"), ("s", "intent.urgency == 'low'"))
    outcome = compiled.evaluate(example_context({"pool.limit": True, "intent.urgency": 3.0}))
    assert outcome.errors == [
        "rule p/r: pool.limit is a bool, not a double",
        "rule p/s: intent.urgency is a double, not a string",
    ]


def test_division_by_zero_is_ieee_and_nan_ordering_is_an_error() -> None:
    compiled = policy(("r", "pool.remaining / pool.limit > 1"))
    outcome = compiled.evaluate(example_context({"pool.limit": 0.0}))
    assert (outcome.action, outcome.errors) == (Action.DENY, [])  # 4200 / 0 is inf
    outcome = compiled.evaluate(example_context({"pool.limit": -0.0, "pool.remaining": 1}))
    assert (outcome.action, outcome.errors) == (Action.APPROVE, [])  # -inf
    outcome = compiled.evaluate(example_context({"pool.limit": 0.0, "pool.remaining": 0.0}))
    assert outcome.errors == [
        "rule p/r: 'pool.remaining / pool.limit > 1' compares a NaN (not a number has no order)"
    ]


@pytest.mark.parametrize(
    ("when", "fires"),
    [
        ("identity.labels.x == 'a' && false", False),
        ("false && identity.labels.x == 'a'", False),
        ("identity.labels.x == 'a' || true", True),
        ("true || identity.labels.x == 'a'", True),
        ("identity.labels.x == 'a' || pool.remaining > 0 || identity.labels.y == 'b'", True),
        ("identity.labels.x == 'a' && pool.remaining < 0 && identity.labels.y == 'b'", False),
        ("identity.labels.x == 'a' && true", None),
        ("identity.labels.x == 'a' || false", None),
        ("identity.labels.x == 'a' || pool.remaining < 0 || identity.labels.y == 'b'", None),
        ("pool.remaining > 0 && identity.labels.x == 'a' && true", None),
        ("pool.remaining > 0 ? true : identity.labels.x == 'a'", True),
        ("identity.labels.x == 'a' ? true : true", None),
    ],
)
def test_and_or_are_commutative_over_errors(when: str, fires: bool | None) -> None:
    outcome = policy(("r", when)).evaluate(example_context({"identity.labels": {}}))
    if fires is None:
        assert outcome.errors == ["rule p/r: no such key 'x' in identity.labels"]
    else:
        assert (outcome.action is Action.DENY, outcome.errors) == (fires, [])


class LazyContext(Mapping[str, Any]):
    """A context that builds variables on demand and refuses to be iterated."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        self.ctx = ctx
        self.read: list[str] = []

    def __getitem__(self, var: str) -> Any:
        self.read.append(var)
        return self.ctx[var]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the context must not be iterated")

    def __len__(self) -> int:
        raise AssertionError("the context must not be measured")


def test_only_the_variables_rules_read_are_built() -> None:
    lazy = LazyContext(example_context())
    assert default_policy().evaluate(lazy).action is Action.APPROVE
    assert set(lazy.read) == {"pool", "intent", "risk", "margin"}


# --------------------------------------------------------------------------- native == CEL


DOUBLE_FIELDS = ["pool.remaining", "intent.cost", "tte.p99", "margin.seconds"]
STRING_FIELDS = ["intent.urgency", "pool.id", "agent.role"]
LABELS = ["identity.labels.team", 'agent.labels["env"]', "identity.labels['tier']"]
NUMBERS = ["0", "1", "2.5", "100", "0.0", ".5", "1e3", "-3"]
STRINGS = ["'infra'", '"gold"', "''", "'github'", '"background"', "'é'"]
HAS = ["has(identity.labels.team)", "has(agent.labels.env)", "has(pool.id)", "has(tte.p99)"]
IN_MAP = ["('team' in identity.labels)", '("env" in agent.labels)']


def join(parts: tuple[str, ...], template: str) -> str:
    return template.format(*parts)


@functools.cache
def doubles(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(DOUBLE_FIELDS + NUMBERS)
    if depth == 0:
        return leaves
    sub = doubles(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from("+-*/"), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda s: f"-({s})"),
        st.tuples(bools(depth - 1), sub, sub).map(lambda t: join(t, "({} ? {} : {})")),
    )


@functools.cache
def strings(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(STRING_FIELDS + LABELS + STRINGS)
    if depth == 0:
        return leaves
    sub = strings(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, sub).map(lambda t: join(t, "({} + {})")),
        st.tuples(bools(depth - 1), sub, sub).map(lambda t: join(t, "({} ? {} : {})")),
    )


@functools.cache
def bools(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(["true", "false", *HAS, *IN_MAP])
    if depth == 0:
        return leaves
    sub, ds, ss = bools(depth - 1), doubles(depth - 1), strings(depth - 1)
    relations = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    return st.one_of(
        leaves,
        st.tuples(ds, relations, ds).map(lambda t: join(t, "({} {} {})")),
        st.tuples(ss, relations, ss).map(lambda t: join(t, "({} {} {})")),
        st.tuples(ss, st.sampled_from(["startsWith", "endsWith", "contains"]), ss).map(
            lambda t: f"({t[0]}).{t[1]}({t[2]})"
        ),
        ds.map(lambda s: f"({s} in [0, 1, 2.5, -3])"),
        ss.map(lambda s: f"({s} in ['infra', 'gold', ''])"),
        st.tuples(sub, st.sampled_from(["&&", "||", "==", "!="]), sub).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        sub.map(lambda s: f"!({s})"),
        st.tuples(sub, sub, sub).map(lambda t: join(t, "({} ? {} : {})")),
    )


VALUES = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, 100.0, INF, -INF, NAN, 0, 3, -1]),
    st.floats(allow_nan=False),
)
WORDS = st.sampled_from(["infra", "gold", "", "github", "background", "é", "inf"])
LABEL_MAPS = st.dictionaries(st.sampled_from(["team", "tier", "env"]), WORDS, max_size=3)
CONTEXTS = st.fixed_dictionaries(
    {
        **dict.fromkeys(DOUBLE_FIELDS, VALUES),
        **dict.fromkeys(STRING_FIELDS, WORDS),
        "identity.labels": LABEL_MAPS,
        "agent.labels": LABEL_MAPS,
    }
)
ABSENT = st.sets(st.sampled_from([*DOUBLE_FIELDS, *STRING_FIELDS, "identity.labels"]), max_size=2)

ERROR = "error"


def run_cel(condition: Condition, ctx: dict[str, Any]) -> Any:
    plan = ContextPlan.of(condition.flat, condition.nested)
    try:
        return condition.program.execute(cel.Context(plan.build(ctx)))
    except Exception:  # any CEL failure: the rule errs
        return ERROR


def run_native(translated: NativeCondition, ctx: dict[str, Any]) -> Any:
    try:
        return translated.run(ctx)
    except EvaluationError:  # anything else would be a bug, and fails the test
        return ERROR


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(bools(3), st.lists(st.tuples(CONTEXTS, ABSENT), min_size=1, max_size=4))
def test_native_gives_what_cel_gives(
    source: str, contexts: list[tuple[dict[str, Any], set[str]]]
) -> None:
    try:
        condition = compile_condition(source)
    except PolicyError:
        return  # the load-time probe rejects it (a NaN ordered on the sample values)
    translated = translate(condition)
    assert translated is not None, source
    for values, absent in contexts:
        ctx = example_context(values)
        for dotted in absent:
            var, _, name = dotted.partition(".")
            del ctx[var][name]
        expected, got = run_cel(condition, ctx), run_native(translated, ctx)
        assert got == expected, (source, ctx)
        assert type(got) is type(expected)


def test_nan_and_signed_zero_agree_with_cel() -> None:
    for source in [
        "pool.remaining == pool.remaining",
        "pool.remaining != pool.remaining",
        "pool.remaining < 1",
        "1 >= pool.remaining",
        "pool.remaining in [0]",
        "(pool.remaining < 1) || true",
        "(pool.remaining < 1) && false",
        "pool.remaining / 0 == 0",
        "1 / pool.remaining < 0",
    ]:
        condition = compile_condition(source)
        translated = translate(condition)
        assert translated is not None
        for value in (NAN, 0.0, -0.0, INF, -INF):
            ctx = example_context({"pool.remaining": value})
            got, expected = run_native(translated, ctx), run_cel(condition, ctx)
            assert got == expected, (source, value)
