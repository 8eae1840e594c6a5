"""Loading policies: what is accepted, and the one-line message for everything that is not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ratelord.engine.policy import (
    PHYSICAL_FLOOR_RULE,
    Action,
    Kind,
    PolicyError,
    default_policy,
    load_policy_file,
    load_policy_text,
)

GOOD = """\
policies:
  - id: global-safety
    target: global
    kind: hard
    rules:
      - name: never-exhaust-before-reset
        when: 'risk.p_exhaustion_with_intent > 0.99 || pool.remaining < intent.cost'
        action: defer
        priority: 100
  - id: shed-background
    target: pool:github:*
    kind: soft
    rules:
      - name: background-yields
        when: 'risk.p_exhaustion > 0.2 && intent.urgency == "background"'
        action: deny
        reason: "shedding background work: P(exhaustion before reset) is {risk.p_exhaustion:.0%}"
      - name: smooth
        when: 'pool.utilization > 0.5'
        action: shape
        params: {wait_seconds: 2}
"""


ONE_RULE = "rules: [{name: x, when: 'true', action: deny}]"


def rule_yaml(**fields: str) -> str:
    """A one-policy, one-rule document; ``fields`` replace or add rule lines (YAML text)."""
    rule = {"name": "r", "when": "'pool.remaining < 100'", "action": "deny", **fields}
    lines = "\n".join(f"        {key}: {value}" for key, value in rule.items() if value)
    return f"policies:\n  - id: p\n    rules:\n      - {lines.lstrip()}\n"


def error_of(text: str, source: str = "policy.yaml") -> str:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, source)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(source)
    return message


# --------------------------------------------------------------------------- accepted


def test_good_policy_loads_with_hash_version_and_source() -> None:
    policy = load_policy_text(GOOD, "policy.yaml")
    assert re.fullmatch(r"sha256:[0-9a-f]{12}", policy.version)
    assert policy.source == "policy.yaml"
    assert load_policy_text(GOOD).version == policy.version
    assert load_policy_text(GOOD + "\n# edited\n").version != policy.version


def test_describe_is_json_and_lists_rules_in_file_order() -> None:
    view = load_policy_text(GOOD, "policy.yaml").describe()
    json.dumps(view)
    assert [p["id"] for p in view["policies"]] == ["builtin", "global-safety", "shed-background"]
    shed = view["policies"][2]
    assert shed["target"] == "pool:github:*"
    assert [r["name"] for r in shed["rules"]] == ["background-yields", "smooth"]
    assert shed["rules"][1]["params"] == {"wait_seconds": 2.0}
    assert view["evaluation_order"][0] == "builtin/physical-floor"


def test_defaults_target_global_kind_soft_priority_zero() -> None:
    policy = load_policy_text(rule_yaml())
    rule = policy.rules[1]
    assert (rule.target.text, rule.kind, rule.priority) == ("global", Kind.SOFT, 0)


def test_variables_lists_what_conditions_and_reasons_read() -> None:
    policy = load_policy_text(GOOD)
    assert policy.variables == {
        "risk.p_exhaustion_with_intent",
        "risk.p_exhaustion",
        "pool.remaining",
        "pool.utilization",
        "pool.id",  # the physical floor's reason
        "intent.cost",
        "intent.urgency",
    }


def test_empty_policy_list_keeps_only_the_physical_floor() -> None:
    assert load_policy_text("policies: []").rules == (PHYSICAL_FLOOR_RULE,)


def test_load_policy_file_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    policy = load_policy_file(path)
    assert policy.source == str(path)
    assert policy.version == load_policy_text(GOOD).version


def test_default_policy_keeps_the_documented_names() -> None:
    policy = default_policy()
    assert policy.source == "built-in"
    assert [rule.label for rule in policy.rules] == [
        "builtin/physical-floor",
        "builtin-shaping/deny-background-when-critical",
        "builtin-shaping/pace-when-p99-before-reset",
    ]
    assert [rule.action for rule in policy.rules[1:]] == [Action.DENY, Action.SHAPE]
    assert default_policy() is policy


# --------------------------------------------------------------------------- files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such file"):
        load_policy_file(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match="empty"):
        load_policy_file(path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"policies: [\xff]")
    with pytest.raises(PolicyError, match="UTF-8"):
        load_policy_file(path)


# --------------------------------------------------------------------------- structure


def test_yaml_syntax_error_names_the_line() -> None:
    message = error_of("policies:\n  - id: p\n    rules: [\n      {name: a\n")
    assert "YAML syntax error" in message
    assert re.match(r"policy\.yaml:\d+: ", message)


def test_duplicate_yaml_key_is_an_error() -> None:
    message = error_of(rule_yaml() + "        action: shape\n")
    assert message == "policy.yaml:7: YAML: duplicate key 'action'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "must be a mapping with a 'policies' list, not a list"),
        ("rules: []\n", "unknown field 'rules' at the top level"),
        ("{}\n", "missing 'policies'"),
        ("policies: {id: x}\n", "'policies' must be a list"),
        ("policies: [3]\n", "policy #1: a policy must be a mapping, not a int"),
    ],
)
def test_top_level_shape(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_unknown_policy_field_lists_the_allowed_ones() -> None:
    message = error_of("policies:\n  - id: p\n    taget: global\n    rules: []\n")
    assert message == (
        "policy.yaml:2: policy 'p': unknown field 'taget' in a policy "
        "(allowed: description, id, kind, mode, rules, target)"
    )


def test_unknown_rule_field() -> None:
    message = error_of(rule_yaml(wen="'true'"))
    assert "policy 'p', rule 'r': unknown field 'wen' in a rule" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("policies:\n  - rules: []\n", "policy #1: missing 'id'"),
        ("policies:\n  - id: p\n", "policy 'p': missing 'rules'"),
        ("policies:\n  - id: p\n    rules: []\n", "policy 'p': 'rules' must be a non-empty list"),
        (rule_yaml(name=""), "policy 'p', rule #1: missing 'name'"),
        (rule_yaml(when=""), "rule 'r': missing 'when'"),
        (rule_yaml(action=""), "rule 'r': missing 'action' (use approve, shape,"),
        (rule_yaml(when="''"), "rule 'r': 'when' is empty"),
        (rule_yaml(when="true"), "'when' must be a CEL expression in a string, not True"),
    ],
)
def test_missing_or_empty_required_fields(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_duplicate_policy_ids_and_rule_names() -> None:
    doubled = rule_yaml() + f"  - id: p\n    {ONE_RULE}\n"
    assert "policy 'p': duplicate id 'p' (policy ids must be unique)" in error_of(doubled)
    two_rules = rule_yaml() + "      - {name: r, when: 'true', action: shape}\n"
    assert "policy 'p', rule 'r': duplicate name 'r'" in error_of(two_rules)


@pytest.mark.parametrize("name", ["'has space'", "a/b", "'-lead'", "x" * 101, "5"])
def test_bad_names(name: str) -> None:
    assert "bad name" in error_of(rule_yaml(name=name))


def test_builtin_id_is_reserved() -> None:
    text = f"policies:\n  - id: builtin\n    {ONE_RULE}\n"
    assert "the id 'builtin' is reserved" in error_of(text)


@pytest.mark.parametrize("target", ["pools:x", "'pool:'", "global:x", "everything", "3", "'pool'"])
def test_bad_targets(target: str) -> None:
    text = f"policies:\n  - id: p\n    target: {target}\n    {ONE_RULE}\n"
    message = error_of(text)
    assert "policy 'p'" in message
    assert (
        "global, pool:<glob>, identity:<glob>, agent:<glob>, workload:<glob>, scope:<glob>"
        in message
    )


def test_bad_kind() -> None:
    text = f"policies:\n  - id: p\n    kind: firm\n    {ONE_RULE}\n"
    assert "policy 'p': unknown kind 'firm' (use hard, soft)" in error_of(text)


def test_unknown_action_message_names_file_policy_rule_and_choices() -> None:
    text = (
        "policies:\n  - id: shed-background\n    rules:\n      - name: smooth\n"
        "        when: 'pool.utilization > 0.5'\n        action: slow\n"
    )
    assert error_of(text) == (
        "policy.yaml:4: policy 'shed-background', rule 'smooth': unknown action 'slow' "
        "(use approve, shape, switch_identity, defer, deny)"
    )


@pytest.mark.parametrize("priority", ["high", "1.5", "true", "[1]"])
def test_priority_must_be_an_integer(priority: str) -> None:
    assert "priority must be an integer" in error_of(rule_yaml(priority=priority))


@pytest.mark.parametrize(
    ("action", "params", "expected"),
    [
        ("shape", "[1]", "params must be a mapping"),
        ("shape", "{wait: 1}", "unknown param 'wait' (known: wait_seconds, min_wait_seconds,"),
        ("shape", "{wait_seconds: -1}", "must be a number of seconds >= 0, not -1"),
        ("shape", "{wait_seconds: '2'}", "must be a number of seconds >= 0, not '2'"),
        ("shape", "{wait_seconds: .inf}", "must be a number of seconds >= 0"),
        ("deny", "{wait_seconds: 1}", "param 'wait_seconds' only applies to action 'shape'"),
        ("shape", "{min_wait_seconds: 5, max_wait_seconds: 1}", "min_wait_seconds (5) is above"),
        ("shape", "{wait_seconds: 1, max_wait_seconds: 3}", "do not combine it"),
        (
            "shape",
            "{identities: ['pat:*']}",
            "'identities' only applies to action 'switch_identity'",
        ),
        ("switch_identity", "{identities: []}", "must be a non-empty list of identity globs"),
        ("switch_identity", "{identities: 'pat:*'}", "must be a non-empty list of identity globs"),
    ],
)
def test_bad_params(action: str, params: str, expected: str) -> None:
    message = error_of(rule_yaml(action=action, params=params))
    assert "policy 'p', rule 'r': " in message
    assert expected in message


def test_switch_identity_takes_identity_globs() -> None:
    text = rule_yaml(action="switch_identity", params="{identities: ['pat:bob', 'app:*']}")
    rule = load_policy_text(text).rules[1]
    assert rule.params == {"identities": ("pat:bob", "app:*")}
    assert rule.describe()["params"] == {"identities": ["pat:bob", "app:*"]}


def test_good_params_become_floats() -> None:
    policy = load_policy_text(
        rule_yaml(action="shape", params="{min_wait_seconds: 1, max_wait_seconds: 30}")
    )
    assert policy.rules[1].params == {"min_wait_seconds": 1.0, "max_wait_seconds": 30.0}


# --------------------------------------------------------------------------- conditions


def test_cel_syntax_error_carries_cels_position_and_message() -> None:
    message = error_of(rule_yaml(when="'pool.remaining <'"))
    assert "rule 'r': CEL syntax error in 'when' at 1:17: " in message
    assert "mismatched input" in message


def test_unknown_variable() -> None:
    message = error_of(rule_yaml(when="'poll.remaining < 1'"))
    assert "unknown variable 'poll' (did you mean 'pool'?)" in message
    assert (
        "(use agent, budget, identity, intent, margin, pool, provider, risk, system, time, tte)"
        in message
    )


def test_unknown_field_suggests_the_closest() -> None:
    message = error_of(rule_yaml(when="'pool.remainig < 1'"))
    assert "unknown field 'remainig' of 'pool' (did you mean 'remaining'?)" in message
    assert "fields of pool: id, limit, provider, remaining," in message


def test_fields_of_scalars_are_refused() -> None:
    message = error_of(rule_yaml(when="'pool.remaining.value < 1'"))
    assert "'pool.remaining' is a double, it has no field 'value'" in message


def test_type_error_found_by_probing() -> None:
    message = error_of(rule_yaml(when="'intent.urgency > 5'"))
    assert "rule 'r': condition cannot be evaluated:" in message


def test_condition_must_give_a_bool() -> None:
    message = error_of(rule_yaml(when="'pool.remaining + 1'"))
    assert "condition must be true or false, but gives a double (2.0)" in message


def test_probe_covers_every_urgency() -> None:
    # Only the sample with urgency "high" reaches the bad comparison.
    message = error_of(rule_yaml(when="'intent.urgency == \"high\" && pool.id > 1'"))
    assert "condition cannot be evaluated" in message


def test_comprehension_variables_are_not_unknown_variables() -> None:
    load_policy_text(rule_yaml(when="'identity.labels.exists(k, k.startsWith(\"team\"))'"))


# --------------------------------------------------------------------------- reasons


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("'{pool.nope}'", "reason template: unknown field 'nope' of 'pool'"),
        ("'{intent.urgency:.0%}'", "format '.0%' does not fit intent.urgency, a string"),
        ("'{pool.id!r}'", "write fields as {var.field}"),
        ("'{pool[id]}'", "write fields as {var.field}"),
        ("'{}'", "write fields as {var.field}"),
        ("'50% {risk.p_exhaustion'", "bad reason template"),
        ("'{intent}'", None),
    ],
)
def test_bad_reason_templates(reason: str, expected: str | None) -> None:
    if expected is None:
        load_policy_text(rule_yaml(reason=reason))
        return
    assert expected in error_of(rule_yaml(reason=reason))


# --------------------------------------------------------------------------- security


@pytest.mark.parametrize(
    "when",
    [
        'open("/etc/passwd") == ""',
        '__import__("os") == null',
        "intent.__class__ == null",
        "intent.__class__.__name__ == 'dict'",
        "pool.id.__len__() > 0",
        "exec('import os') == null",
        "globals() == null",
    ],
)
def test_no_way_to_python_objects_or_files(when: str) -> None:
    with pytest.raises(PolicyError):
        load_policy_text(rule_yaml(when=repr(when)))


def test_yaml_python_tags_are_refused() -> None:
    text = "policies: !!python/object/apply:os.system ['true']\n"
    assert "YAML" in error_of(text)


def test_public_surface_is_the_contract() -> None:
    import ratelord.engine.policy as policy_package

    contract = {
        "CompiledPolicy",
        "PolicyError",
        "PolicyOutcome",
        "FiredRule",
        "Action",
        "load_policy_file",
        "load_policy_text",
        "default_policy",
        "PHYSICAL_FLOOR_RULE",
    }
    assert contract <= set(policy_package.__all__)
    assert policy_package.__all__ == sorted(
        policy_package.__all__, key=lambda n: (not n.isupper(), n)
    )
    assert [str(action) for action in Action] == [
        "approve",
        "shape",
        "switch_identity",
        "defer",
        "deny",
    ]
