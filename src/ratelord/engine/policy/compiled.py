"""A loaded policy, ready to evaluate many times per second.

Evaluation order: the physical floor first, then hard before soft, global
before local targets, higher priority first, then file order.  The winner is
the most restrictive fired action; ties go to the higher priority, then hard
over soft, then file order.  A hard ``deny`` ends the evaluation: nothing can
beat it.

Speed: handing values to CEL costs far more than running a compiled program,
so conditions in the common subset of CEL run as Python closures that read
the context directly (:mod:`.native`; the built-in policy is all native).  Only
the other rules go through CEL: when there are any, each evaluation updates one
CEL context, shared by those rules, holding only the fields they read (see
:mod:`.activation`), and runs their conditions as a single CEL list expression.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

from .activation import ContextPlan, ReusedContext, readable
from .expression import Condition, cel_type
from .model import Action, FiredRule, Kind, PolicyOutcome
from .native import EvaluationError, translate
from .params import Params
from .target import Target
from .template import Template


@dataclass(frozen=True, slots=True)
class CompiledRule:
    policy_id: str
    name: str
    kind: Kind
    action: Action
    priority: int
    condition: Condition
    reason: Template
    target: Target
    order: int  # position in the file; the built-in floor is -1
    params: Params = field(default_factory=dict)
    reason_source: str | None = None
    description: str | None = None
    #: evaluated and logged (``policy_shadowed``), never part of a decision
    shadow: bool = False

    @property
    def label(self) -> str:
        return f"{self.policy_id}/{self.name}"

    @property
    def sort_key(self) -> tuple[int, int, int, int, int]:
        """Evaluation order (ascending)."""
        return (
            0 if self.order < 0 else 1,
            0 if self.kind is Kind.HARD else 1,
            0 if self.target.is_global else 1,
            -self.priority,
            self.order,
        )

    @property
    def win_key(self) -> tuple[int, int, int, int]:
        """Larger wins: most restrictive, then priority, then hard, then earlier in the file."""
        return (self.action.rank, self.priority, self.kind is Kind.HARD, -self.order)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "when": self.condition.source,
            "action": str(self.action),
            "priority": self.priority,
            "reason": self.reason_source,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
            "description": self.description,
            "mode": "shadow" if self.shadow else "enforce",
        }


class CompiledPolicy:
    """An immutable, validated policy.  Build it with the loader functions."""

    __slots__ = (
        "_cel_conditions",
        "_cel_rules",
        "_context",
        "_plan",
        "_rules",
        "_steps",
        "policies",
        "source",
        "variables",
        "version",
    )

    def __init__(
        self,
        *,
        version: str,
        source: str,
        rules: Iterable[CompiledRule],
        policies: list[dict[str, Any]],
        variables: frozenset[str],
    ) -> None:
        self.version = version
        self.source = source
        self._rules = tuple(sorted(rules, key=lambda rule: rule.sort_key))
        self.policies = policies  # describe() view of the policy headers, in file order
        self.variables = variables
        natives = [translate(rule.condition) for rule in self._rules]
        #: Per rule, in order: its native closure, or None for a rule run through CEL.
        self._steps = tuple(
            (rule, None if native is None else native.run)
            for rule, native in zip(self._rules, natives, strict=True)
        )
        self._cel_rules = tuple(rule for rule, run in self._steps if run is None)
        self._plan = ContextPlan.of(
            (path for rule in self._cel_rules for path in rule.condition.flat),
            (path for rule in self._cel_rules for path in rule.condition.nested),
        )
        self._context = ReusedContext()
        self._cel_conditions = (
            cel.compile(
                "["
                + ", ".join(f"({rule.condition.program.source})" for rule in self._cel_rules)
                + "]"
            )
            if self._cel_rules
            else None
        )

    @property
    def rules(self) -> tuple[CompiledRule, ...]:
        """All rules, the physical floor first, in evaluation order."""
        return self._rules

    @property
    def cel_rules(self) -> tuple[CompiledRule, ...]:
        """The rules whose condition runs through CEL (outside the native subset)."""
        return self._cel_rules

    def evaluate(self, ctx: Mapping[str, Any]) -> PolicyOutcome:
        """Evaluate every rule whose target matches ``ctx``; never raises for bad data.

        ``ctx`` maps each variable to its dict of fields; it is read only through
        ``ctx[var]`` and ``ctx.get(var)``, for the variables the rules read.
        """
        cel_results = iter(self._run_cel(ctx) if self._cel_rules else ())
        matched: dict[Target, bool] = {}
        fired: list[FiredRule] = []
        shadowed: list[FiredRule] = []
        errors: list[str] = []
        winner: FiredRule | None = None
        best: tuple[int, int, int, int] | None = None
        for rule, run in self._steps:
            if run is None:
                result = next(cel_results)
            else:
                try:
                    result = run(ctx)
                except Exception as exc:  # reported per rule, never raised out of evaluate()
                    result = exc
            if result is False:
                continue
            target = rule.target
            if not target.is_global:
                hit = matched.get(target)
                if hit is None:
                    hit = matched[target] = target.matches(ctx)
                if not hit:
                    continue
            if result is not True:
                errors.append(f"rule {rule.label}: {_failure(result)}")
                continue
            hit_rule = FiredRule(
                policy_id=rule.policy_id,
                rule=rule.name,
                kind=rule.kind,
                action=rule.action,
                priority=rule.priority,
                params=dict(rule.params),
                reason=rule.reason.render(ctx),
            )
            if rule.shadow:
                shadowed.append(hit_rule)
                continue
            fired.append(hit_rule)
            key = rule.win_key
            if best is None or key > best:
                winner, best = hit_rule, key
            if rule.kind is Kind.HARD and rule.action is Action.DENY:
                break
        action = winner.action if winner is not None else Action.APPROVE
        return PolicyOutcome(
            action=action, fired=fired, winner=winner, errors=errors, shadowed=shadowed
        )

    def _run_cel(self, ctx: Mapping[str, Any]) -> list[Any]:
        """The CEL rules' results in order, each True, False, or the exception it raised."""
        return self._context.run(self._run, self._plan.build(ctx))

    def _run(self, activation: cel.Context) -> list[Any]:
        """Every CEL rule's result, or the exception it raised.

        All their conditions run as one CEL list expression (one call instead of
        one per rule); only when one of them fails are they run one by one, to
        tell which.
        """
        assert self._cel_conditions is not None  # only called when some rule needs CEL
        try:
            results = self._cel_conditions.execute(activation)
        except Exception:  # CEL raises many types; find the failing rules below
            return [_execute(rule.condition.program, activation) for rule in self._cel_rules]
        return results if isinstance(results, list) else [results]

    def describe(self) -> dict[str, Any]:
        """A JSON-able view for ``GET /v1/policy``."""
        by_policy: dict[str, list[dict[str, Any]]] = {}
        for rule in sorted(self._rules, key=lambda rule: rule.order):
            by_policy.setdefault(rule.policy_id, []).append(rule.describe())
        return {
            "version": self.version,
            "source": self.source,
            "policies": [
                {**header, "rules": by_policy.get(header["id"], [])} for header in self.policies
            ],
            "evaluation_order": [rule.label for rule in self._rules],
            "variables": sorted(self.variables),
        }


def _execute(program: cel.Program, activation: cel.Context) -> Any:
    try:
        return program.execute(activation)
    except Exception as exc:  # reported per rule, never raised out of evaluate()
        return exc


def _failure(result: Any) -> str:
    if isinstance(result, EvaluationError):
        return str(result)
    if isinstance(result, Exception):
        return f"{type(result).__name__}: {readable(str(result))}"
    return f"gave a {cel_type(result)}, not a bool"
