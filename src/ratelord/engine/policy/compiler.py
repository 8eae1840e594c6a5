"""From a parsed policy document to a :class:`CompiledPolicy`, checking everything on the way.

The document is what :mod:`.loader` made of the YAML: dicts, lists and
scalars, the dicts carrying the ``line`` they start on.  Every problem is a
:class:`PolicyError` naming the source, line, policy and rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .compiled import CompiledPolicy, CompiledRule
from .expression import compile_condition
from .floor import FLOOR_POLICY_HEADER, FLOOR_POLICY_ID, PHYSICAL_FLOOR_RULE
from .model import Action, Kind, PolicyError
from .params import parse_params
from .target import GLOBAL, Target, parse_target
from .template import literal_and_values, parse_template

TOP_FIELDS = frozenset({"policies"})
POLICY_FIELDS = frozenset({"id", "target", "kind", "mode", "description", "rules"})
RULE_FIELDS = frozenset(
    {"name", "when", "action", "priority", "reason", "params", "mode", "description"}
)
#: ``enforce`` (the default) decides; ``shadow`` is evaluated and logged, and decides nothing.
MODES = ("enforce", "shadow")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_ACTIONS = ", ".join(action.value for action in Action)
_KINDS = ", ".join(kind.value for kind in Kind)


def line_of(node: Any) -> int | None:
    """The line a YAML mapping started on (set by the loader), if known."""
    return getattr(node, "line", None)


class _Compiler:
    """One compilation: knows the source name, so every error says where it is."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(
        self, message: str, node: Any = None, policy: str | None = None, rule: str | None = None
    ) -> PolicyError:
        return PolicyError(
            message, source=self.source, line=line_of(node), policy=policy, rule=rule
        )

    def document(self, data: Any, version: str) -> CompiledPolicy:
        if not isinstance(data, Mapping):
            raise self.fail(
                f"the file must be a mapping with a 'policies' list, not a {_type(data)}", data
            )
        self.known_fields(data, TOP_FIELDS, "at the top level")
        if "policies" not in data:
            raise self.fail("missing 'policies' (a list of policies)", data)
        policies = data["policies"]
        if not isinstance(policies, list):
            raise self.fail(f"'policies' must be a list, not a {_type(policies)}", data)
        rules: list[CompiledRule] = [PHYSICAL_FLOOR_RULE]
        headers: list[dict[str, Any]] = [dict(FLOOR_POLICY_HEADER)]
        seen_ids: set[str] = set()
        for index, node in enumerate(policies, start=1):
            header, policy_rules = self.policy(node, f"#{index}", seen_ids, len(rules))
            headers.append(header)
            rules.extend(policy_rules)
        variables = frozenset(
            ".".join(path[:2])
            for rule in rules
            for path in (*rule.condition.paths, *rule.reason.paths)
        )
        return CompiledPolicy(
            version=version, source=self.source, rules=rules, policies=headers, variables=variables
        )

    def policy(
        self, node: Any, position: str, seen_ids: set[str], first_order: int
    ) -> tuple[dict[str, Any], list[CompiledRule]]:
        if not isinstance(node, Mapping):
            raise self.fail(f"a policy must be a mapping, not a {_type(node)}", None, position)
        policy_id = self.name(node, "id", position, seen_ids, "policy ids", policy=position)
        if policy_id == FLOOR_POLICY_ID:
            raise self.fail("the id 'builtin' is reserved", node, policy_id)
        self.known_fields(node, POLICY_FIELDS, "in a policy", policy_id)
        try:
            target = parse_target(node.get("target", GLOBAL))
        except PolicyError as exc:
            raise self.fail(exc.message, node, policy_id) from None
        kind_text = node.get("kind", Kind.SOFT.value)
        if not isinstance(kind_text, str) or kind_text not in {kind.value for kind in Kind}:
            raise self.fail(f"unknown kind {kind_text!r} (use {_KINDS})", node, policy_id)
        kind = Kind(kind_text)
        shadow = self.mode(node, "enforce", policy_id) == "shadow"
        description = self.optional_text(node, "description", policy_id)
        rule_nodes = node.get("rules")
        if rule_nodes is None:
            raise self.fail("missing 'rules' (a list of rules)", node, policy_id)
        if not isinstance(rule_nodes, list) or not rule_nodes:
            raise self.fail("'rules' must be a non-empty list", node, policy_id)
        seen_names: set[str] = set()
        rules = [
            self.rule(
                rule_node,
                f"#{index + 1}",
                policy_id,
                kind,
                target,
                seen_names,
                first_order + index,
                shadow,
            )
            for index, rule_node in enumerate(rule_nodes)
        ]
        header = {
            "id": policy_id,
            "target": target.text,
            "kind": kind.value,
            "mode": "shadow" if shadow else "enforce",
            "description": description,
        }
        return header, rules

    def mode(self, node: Mapping[str, Any], default: str, *where: str) -> str:
        mode = node.get("mode", default)
        if mode not in MODES:
            raise self.fail(f"unknown mode {mode!r} (use enforce or shadow)", node, *where)
        return str(mode)

    def rule(
        self,
        node: Any,
        position: str,
        policy_id: str,
        kind: Kind,
        target: Target,
        seen_names: set[str],
        order: int,
        shadow: bool = False,
    ) -> CompiledRule:
        if not isinstance(node, Mapping):
            raise self.fail(
                f"a rule must be a mapping, not a {_type(node)}", None, policy_id, position
            )
        name = self.name(node, "name", position, seen_names, "rule names in a policy", policy_id)
        self.known_fields(node, RULE_FIELDS, "in a rule", policy_id, name)

        def fail(message: str) -> PolicyError:
            return self.fail(message, node, policy_id, name)

        when = node.get("when")
        if when is None:
            raise fail("missing 'when' (a CEL condition)")
        if not isinstance(when, str):
            raise fail(f"'when' must be a CEL expression in a string, not {when!r}")
        action_text = node.get("action")
        if action_text is None:
            raise fail(f"missing 'action' (use {_ACTIONS})")
        if not isinstance(action_text, str) or action_text not in {a.value for a in Action}:
            raise fail(f"unknown action {action_text!r} (use {_ACTIONS})")
        action = Action(action_text)
        priority = node.get("priority", 0)
        if type(priority) is not int:
            raise fail(f"priority must be an integer, not {priority!r}")
        mode = self.mode(node, "shadow" if shadow else "enforce", policy_id, name)
        reason_text = self.optional_text(node, "reason", policy_id, name)
        prefix = f"rule {policy_id}/{name}: "
        try:
            params = parse_params(node.get("params", {}), action)
            condition = compile_condition(when)
            if reason_text is None:
                reason = literal_and_values(prefix, f"{when.strip()} held", condition.paths)
            else:
                reason = parse_template(reason_text, prefix)
        except PolicyError as exc:
            raise fail(exc.message) from None
        return CompiledRule(
            policy_id=policy_id,
            name=name,
            kind=kind,
            action=action,
            priority=priority,
            condition=condition,
            reason=reason,
            target=target,
            order=order,
            params=params,
            reason_source=reason_text,
            description=self.optional_text(node, "description", policy_id, name),
            shadow=mode == "shadow",
        )

    def name(
        self,
        node: Mapping[str, Any],
        key: str,
        position: str,
        seen: set[str],
        what: str,
        policy: str | None,
    ) -> str:
        value = node.get(key)
        rule = None if key == "id" else position
        if value is None:
            raise self.fail(f"missing '{key}'", node, policy, rule)
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise self.fail(
                f"bad {key} {value!r}: use up to 100 letters, digits, '-', '_' and '.'",
                node,
                policy,
                rule,
            )
        if value in seen:
            duplicate_of = (value, None) if key == "id" else (policy, value)
            raise self.fail(
                f"duplicate {key} {value!r} ({what} must be unique)", node, *duplicate_of
            )
        seen.add(value)
        return value

    def optional_text(
        self, node: Mapping[str, Any], key: str, policy: str, rule: str | None = None
    ) -> str | None:
        value = node.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"'{key}' must be a string, not {value!r}", node, policy, rule)
        return value

    def known_fields(
        self,
        node: Mapping[str, Any],
        allowed: frozenset[str],
        where: str,
        policy: str | None = None,
        rule: str | None = None,
    ) -> None:
        unknown = [str(key) for key in node if key not in allowed]
        if unknown:
            raise self.fail(
                f"unknown field '{unknown[0]}' {where} (allowed: {', '.join(sorted(allowed))})",
                node,
                policy,
                rule,
            )


def compile_document(data: Any, *, source: str, version: str) -> CompiledPolicy:
    """Validate and compile a parsed policy document; raises :class:`PolicyError`."""
    return _Compiler(source).document(data, version)


def _type(value: Any) -> str:
    if value is None:
        return "empty value"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return "string" if isinstance(value, str) else type(value).__name__
