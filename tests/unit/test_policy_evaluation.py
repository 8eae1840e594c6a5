"""Evaluating policies: ordering, the winner, targets, the physical floor, the default policy."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ratelord.engine.policy import (
    Action,
    CompiledPolicy,
    Kind,
    PolicyOutcome,
    default_policy,
    load_policy_text,
)
from ratelord.engine.policy.variables import example_context

INF = float("inf")


def rule(name: str, action: str, when: str = "true", **fields: Any) -> dict[str, Any]:
    return {"name": name, "when": when, "action": action, **fields}


def pol(policy_id: str, *rules: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": policy_id, **fields, "rules": list(rules)}


def policy(*policies: dict[str, Any]) -> CompiledPolicy:
    return load_policy_text(yaml.safe_dump({"policies": list(policies)}, sort_keys=False))


def evaluate(compiled: CompiledPolicy, **values: Any) -> PolicyOutcome:
    """Evaluate on the example context with ``var__field=value`` changes."""
    return compiled.evaluate(
        example_context({key.replace("__", "."): value for key, value in values.items()})
    )


def labels(outcome: PolicyOutcome) -> list[str]:
    return [f"{fired.policy_id}/{fired.rule}" for fired in outcome.fired]


# --------------------------------------------------------------------------- basics


def test_nothing_fires_approves() -> None:
    outcome = evaluate(default_policy())
    assert outcome == PolicyOutcome(action=Action.APPROVE, fired=[], winner=None, errors=[])


@pytest.mark.acceptance("Pol-01")
def test_pol01_deny_if_remaining_below_100() -> None:
    compiled = policy(
        pol("guard", rule("deny-low-remaining", "deny", "pool.remaining < 100"), kind="hard")
    )
    outcome = evaluate(compiled, pool__remaining=90.0)
    assert outcome.action is Action.DENY
    assert outcome.winner is not None
    assert outcome.winner.reason == (
        "rule guard/deny-low-remaining: pool.remaining < 100 held (pool.remaining=90)"
    )
    assert evaluate(compiled, pool__remaining=150.0).action is Action.APPROVE


@pytest.mark.acceptance("Pol-02")
def test_pol02_default_policy_sheds_background_but_serves_high_urgency() -> None:
    risky = {
        "risk__p_exhaustion": 0.8,
        "risk__p_exhaustion_with_intent": 0.995,
        "margin__seconds": -600.0,
        "margin__with_intent_seconds": -601.0,
        "tte__p99_with_intent": 1199.0,
    }
    background = evaluate(default_policy(), intent__urgency="background", **risky)
    assert background.action is Action.DENY
    assert background.winner is not None
    assert background.winner.rule == "deny-background-when-critical"
    assert "P(exhaustion before reset) is 80%" in background.winner.reason
    high = evaluate(default_policy(), intent__urgency="high", **risky)
    assert high.action is Action.APPROVE
    normal = evaluate(default_policy(), intent__urgency="normal", **risky)
    # Pacing, not deferral: arbitration defers only when the paced slot falls after the reset.
    assert normal.action is Action.SHAPE
    assert labels(normal) == ["builtin-shaping/pace-when-p99-before-reset"]


def test_default_policy_paces_when_p99_runs_out_before_reset() -> None:
    outcome = evaluate(
        default_policy(),
        margin__with_intent_seconds=-30.0,
        tte__p99_with_intent=1770.0,
        pool__seconds_to_reset=1800.0,
    )
    assert outcome.action is Action.SHAPE
    assert outcome.winner is not None
    assert outcome.winner.reason == (
        "rule builtin-shaping/pace-when-p99-before-reset: pool github:core:user/alice would run "
        "out in 1770 s at the P99 burn rate, before its reset in 1800 s: pacing"
    )


# --------------------------------------------------------------------------- physical floor


@pytest.mark.parametrize(
    "compiled", [default_policy(), load_policy_text("policies: []")], ids=["default", "empty"]
)
def test_physical_floor_defers_what_the_pool_cannot_hold(compiled: CompiledPolicy) -> None:
    outcome = evaluate(compiled, intent__cost=5.0, pool__remaining=3.0, pool__id="X")
    assert outcome.action is Action.DEFER
    assert outcome.winner is not None
    assert (outcome.winner.policy_id, outcome.winner.rule) == ("builtin", "physical-floor")
    assert outcome.winner.kind is Kind.HARD
    assert outcome.winner.reason == (
        "rule builtin/physical-floor: cost 5 exceeds the 3 remaining in pool X until its reset"
    )
    assert evaluate(compiled, intent__cost=3.0, pool__remaining=3.0).action is Action.APPROVE


def test_physical_floor_is_evaluated_first() -> None:
    compiled = policy(pol("a", rule("x", "shape", priority=5000), kind="hard"))
    outcome = evaluate(compiled, intent__cost=5.0, pool__remaining=3.0)
    assert labels(outcome) == ["builtin/physical-floor", "a/x"]


# --------------------------------------------------------------------------- ordering


def test_evaluation_order_hard_global_priority_file() -> None:
    compiled = policy(
        pol("soft-global", rule("low", "shape", priority=1), rule("high", "shape", priority=9)),
        pol("hard-local", rule("a", "shape"), kind="hard", target="pool:*"),
        pol("hard-global", rule("b", "shape"), rule("c", "shape"), kind="hard"),
        pol("soft-local", rule("d", "shape", priority=99), target="agent:*"),
    )
    assert labels(evaluate(compiled)) == [
        "hard-global/b",
        "hard-global/c",
        "hard-local/a",
        "soft-global/high",
        "soft-global/low",
        "soft-local/d",
    ]
    assert compiled.describe()["evaluation_order"] == [
        "builtin/physical-floor",
        *labels(evaluate(compiled)),
    ]


def test_most_restrictive_action_wins_whatever_the_order() -> None:
    compiled = policy(
        pol(
            "p",
            rule("shape", "shape", priority=90),
            rule("switch", "switch_identity", priority=80),
            kind="hard",
        ),
        pol("q", rule("defer", "defer"), rule("approve", "approve")),
    )
    outcome = evaluate(compiled)
    assert outcome.action is Action.DEFER
    assert outcome.winner is not None and outcome.winner.rule == "defer"
    assert len(outcome.fired) == 4


def test_tie_goes_to_higher_priority() -> None:
    compiled = policy(
        pol("p", rule("low", "shape", priority=1), kind="hard"),
        pol("q", rule("high", "shape", priority=2)),
    )
    winner = evaluate(compiled).winner
    assert winner is not None and winner.rule == "high"


def test_tie_on_priority_goes_to_hard() -> None:
    compiled = policy(
        pol("s", rule("soft", "defer")),
        pol("h", rule("hard", "defer"), kind="hard", target="pool:*"),
    )
    winner = evaluate(compiled).winner
    assert winner is not None and winner.rule == "hard"


def test_full_tie_goes_to_file_order() -> None:
    compiled = policy(pol("p", rule("first", "shape"), rule("second", "shape")))
    winner = evaluate(compiled).winner
    assert winner is not None and winner.rule == "first"


def test_approve_rule_wins_only_when_alone() -> None:
    compiled = policy(
        pol(
            "p",
            rule("ok", "approve", reason="fine"),
            rule("busy", "shape", "pool.utilization > 0.9"),
        )
    )
    calm = evaluate(compiled)
    assert calm.action is Action.APPROVE
    assert calm.winner is not None and calm.winner.reason == "rule p/ok: fine"
    assert evaluate(compiled, pool__utilization=0.95).action is Action.SHAPE


def test_hard_deny_stops_evaluation() -> None:
    compiled = policy(
        pol("h", rule("stop", "deny"), rule("later", "deny", priority=-1), kind="hard"),
        pol("s", rule("soft", "deny", priority=100)),
    )
    outcome = evaluate(compiled)
    assert labels(outcome) == ["h/stop"]
    assert outcome.action is Action.DENY


def test_soft_deny_does_not_stop_evaluation() -> None:
    compiled = policy(pol("s", rule("a", "deny"), rule("b", "shape")))
    assert labels(evaluate(compiled)) == ["s/a", "s/b"]


def test_fired_rule_carries_params_and_priority() -> None:
    compiled = policy(pol("p", rule("wait", "shape", priority=7, params={"wait_seconds": 2.5})))
    fired = evaluate(compiled).fired[0]
    assert (fired.action, fired.priority, fired.params) == (Action.SHAPE, 7, {"wait_seconds": 2.5})
    fired.params["wait_seconds"] = 99.0
    assert evaluate(compiled).fired[0].params == {"wait_seconds": 2.5}


# --------------------------------------------------------------------------- targets


@pytest.mark.parametrize(
    ("target", "matches"),
    [
        ("pool:github:*", True),
        ("pool:github:core:user/*", True),
        ("pool:openai:*", False),
        ("pool:github:core:user/alic?", True),
        ("pool:github:[cs]ore:*", True),
        ("pool:GITHUB:*", False),
        ("identity:pat:*", True),
        ("identity:app:*", False),
        ("agent:crawler-0?", True),
        ("workload:repo_scan", True),
        ("workload:search", False),
        ("scope:repo:acme/*", True),
        ("scope:repo:other/*", False),
    ],
)
def test_targets_match_ids_with_globs(target: str, matches: bool) -> None:
    compiled = policy(pol("t", rule("r", "shape"), target=target))
    assert (evaluate(compiled).action is Action.SHAPE) is matches


def test_target_on_a_missing_id_does_not_match() -> None:
    compiled = policy(pol("t", rule("r", "shape"), target="pool:*"))
    ctx = example_context()
    del ctx["pool"]["id"]
    assert compiled.evaluate(ctx).action is Action.APPROVE
    assert compiled.evaluate({}).fired == []


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "when",
    [
        "pool.remaining < 100",
        "pool.remaining < 100.0",
        "pool.remaining - 10 < 85",
        "pool.remaining < intent.cost * 100",
        "100 > pool.remaining",
        "pool.remaining / 2 == 45",
        "int(pool.remaining) % 2 == 0",
        "pool.remaining < 1e2",
        "pool.remaining < 100u",
    ],
)
def test_integer_literals_work_with_double_fields(when: str) -> None:
    compiled = policy(pol("n", rule("r", "deny", when)))
    assert evaluate(compiled, pool__remaining=90.0).action is Action.DENY
    assert evaluate(compiled, pool__remaining=90).action is Action.DENY  # an int from the caller


def test_infinite_margins_and_ttes_compare_as_expected() -> None:
    compiled = policy(
        pol("n", rule("r", "shape", "margin.with_intent_seconds < 0.0 || tte.p99 < 60"))
    )
    assert evaluate(compiled).action is Action.APPROVE  # both inf
    assert evaluate(compiled, margin__with_intent_seconds=-INF).action is Action.SHAPE
    assert evaluate(compiled, tte__p99=59.0).action is Action.SHAPE


def test_time_fields_compare_with_integers() -> None:
    office = "time.hour >= 9 && time.hour < 17 && time.weekday < 5"
    compiled = policy(pol("n", rule("office", "shape", office)))
    assert evaluate(compiled, time__hour=10, time__weekday=0).action is Action.SHAPE
    assert evaluate(compiled, time__hour=10.0, time__weekday=6.0).action is Action.APPROVE


# --------------------------------------------------------------------------- maps, whole variables


def test_labels_and_has() -> None:
    compiled = policy(
        pol(
            "l",
            rule("infra", "shape", 'has(identity.labels.team) && identity.labels.team == "infra"'),
            rule("has-pool", "defer", 'has(pool.id) && "team" in identity.labels'),
        )
    )
    assert labels(evaluate(compiled)) == ["l/infra", "l/has-pool"]
    quiet = evaluate(compiled, identity__labels={})
    assert (quiet.fired, quiet.errors) == ([], [])


def test_whole_variable_access() -> None:
    compiled = policy(pol("w", rule("r", "shape", 'intent["urgency"] == "low"')))
    assert evaluate(compiled, intent__urgency="low").action is Action.SHAPE
    assert evaluate(compiled).action is Action.APPROVE


# --------------------------------------------------------------------------- run-time failures


def test_missing_label_is_a_recorded_error_not_an_exception() -> None:
    compiled = policy(
        pol("e", rule("team", "deny", 'identity.labels.team == "x"'), rule("other", "shape"))
    )
    outcome = evaluate(compiled, identity__labels={})
    assert outcome.action is Action.SHAPE
    assert labels(outcome) == ["e/other"]
    assert len(outcome.errors) == 1
    assert outcome.errors[0].startswith("rule e/team: ")


def test_missing_field_error_uses_the_dotted_name() -> None:
    compiled = policy(pol("e", rule("r", "deny", "pool.limit > 1")))
    ctx = example_context()
    del ctx["pool"]["limit"]
    outcome = compiled.evaluate(ctx)
    assert outcome.action is Action.APPROVE
    assert "pool.limit" in outcome.errors[0]
    assert "__" not in outcome.errors[0]


@pytest.mark.parametrize(
    "ctx",
    [
        {},
        {"pool": None, "intent": "x"},
        {"pool": {"remaining": "lots"}, "intent": {"cost": object()}},
        {"pool": {"remaining": None, "id": 5}, "intent": {"cost": [1]}},
    ],
)
def test_garbage_context_never_raises(ctx: dict[str, Any]) -> None:
    outcome = default_policy().evaluate(ctx)
    assert outcome.action is Action.APPROVE
    assert outcome.errors  # the rules could not be evaluated, and say so


def test_a_value_cel_cannot_take_never_leaves_the_previous_one_behind() -> None:
    compiled = policy(pol("v", rule("low", "deny", "pool.limit < 100")))
    assert evaluate(compiled, pool__limit=50.0).action is Action.DENY
    outcome = evaluate(compiled, pool__limit=object())
    assert outcome.action is Action.APPROVE
    assert outcome.errors[0].startswith("rule v/low: ")
    assert evaluate(compiled, pool__limit=50.0).action is Action.DENY


def test_errors_only_for_rules_whose_target_matches() -> None:
    compiled = policy(
        pol("e", rule("r", "deny", 'identity.labels.team == "x"'), target="pool:openai:*")
    )
    assert evaluate(compiled, identity__labels={}).errors == []


# --------------------------------------------------------------------------- context reuse


CONTEXTS = st.fixed_dictionaries(
    {
        "pool.remaining": st.one_of(st.floats(0, 6000), st.integers(0, 6000)),
        "intent.cost": st.sampled_from([1.0, 1, 5.0, 100.0]),
        "intent.urgency": st.sampled_from(["background", "low", "normal", "high"]),
        "risk.p_exhaustion": st.floats(0, 1),
        "margin.with_intent_seconds": st.one_of(st.just(INF), st.floats(-3600, 3600)),
        "identity.labels": st.dictionaries(
            st.sampled_from(["team", "tier"]), st.sampled_from(["infra", "gold"])
        ),
        "pool.id": st.sampled_from(["github:core:a", "openai:tokens:b"]),
    }
)
REUSE_POLICY = yaml.safe_dump(
    {
        "policies": [
            pol(
                "a",
                rule("low", "defer", "pool.remaining - intent.cost < 100"),
                rule("team", "deny", 'identity.labels.team == "infra" && risk.p_exhaustion > 0.5'),
                kind="hard",
            ),
            pol(
                "b",
                rule("pace", "shape", 'margin.with_intent_seconds < 0 && intent.urgency != "high"'),
                rule("bg", "deny", 'intent.urgency == "background"', reason="{risk.p_exhaustion}"),
                target="pool:github:*",
            ),
        ]
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(CONTEXTS, min_size=1, max_size=6))
def test_reusing_the_cel_context_gives_the_same_outcomes_as_fresh(
    sequence: list[dict[str, Any]],
) -> None:
    reused = load_policy_text(REUSE_POLICY)
    for values in sequence:
        ctx = example_context(values)
        assert reused.evaluate(ctx) == load_policy_text(REUSE_POLICY).evaluate(ctx)


# ------------------------------------------------------------------------- ordering as a property

RANK = {"approve": 0, "shape": 1, "switch_identity": 2, "defer": 3, "deny": 4}
#: (action, priority, fires)
RULES = st.lists(
    st.tuples(st.sampled_from(list(RANK)), st.integers(-2, 2), st.booleans()),
    min_size=1,
    max_size=3,
)
#: (kind, target, rules); the example context's pool is github:core:user/alice
POLICIES = st.lists(
    st.tuples(
        st.sampled_from(["hard", "soft"]), st.sampled_from(["global", "pool:*", "pool:x*"]), RULES
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=40, deadline=None)
@given(POLICIES)
def test_fired_order_and_winner_follow_the_documented_rules(
    drawn: list[tuple[str, str, list[tuple[str, int, bool]]]],
) -> None:
    documents, fired = [], []
    for i, (kind, target, rules) in enumerate(drawn):
        written = []
        for j, (action, priority, fires) in enumerate(rules):
            written.append(rule(f"r{j}", action, str(fires).lower(), priority=priority))
            if fires and target != "pool:x*":
                order = len(fired)
                fired.append(
                    (kind == "hard", target == "global", priority, order, action, f"p{i}/r{j}")
                )
        documents.append(pol(f"p{i}", *written, kind=kind, target=target))

    # Hard, then global, then higher priority, then file order; a hard deny ends it.
    expected = sorted(fired, key=lambda f: (not f[0], not f[1], -f[2], f[3]))
    hard_denies = [k for k, f in enumerate(expected) if f[0] and f[4] == "deny"]
    if hard_denies:
        expected = expected[: hard_denies[0] + 1]
    outcome = evaluate(policy(*documents))
    assert labels(outcome) == [f[5] for f in expected]
    if not expected:
        assert (outcome.winner, outcome.action) == (None, Action.APPROVE)
        return
    # Most restrictive, then priority, then hard, then file order.
    best = max(expected, key=lambda f: (RANK[f[4]], f[2], f[0], -f[3]))
    assert outcome.winner is not None
    assert (f"{outcome.winner.policy_id}/{outcome.winner.rule}", outcome.action) == (
        best[5],
        best[4],
    )
