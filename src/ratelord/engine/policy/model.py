"""What a policy evaluation answers, and the one error a policy load raises."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgspec


class Action(StrEnum):
    """What a rule asks for, from least to most restrictive (definition order is the rank)."""

    APPROVE = "approve"
    SHAPE = "shape"
    SWITCH_IDENTITY = "switch_identity"
    DEFER = "defer"
    DENY = "deny"

    @property
    def rank(self) -> int:
        """0 for ``approve`` up to 4 for ``deny``: the most restrictive action wins."""
        return _RANK[self]


_RANK = {action: index for index, action in enumerate(Action)}


class Kind(StrEnum):
    """Hard rules are evaluated before soft ones and win ties against them."""

    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True, slots=True)
class FiredRule:
    """One rule whose condition was true for the context it was evaluated on."""

    policy_id: str
    rule: str
    kind: Kind
    action: Action
    priority: int
    params: dict[str, Any]  # seconds as floats; identity globs as a tuple of strings
    reason: str


class PolicyOutcome(msgspec.Struct, frozen=True):
    """The answer of :meth:`CompiledPolicy.evaluate` for one pool's view of one intent.

    ``fired`` lists every rule that fired, in evaluation order; ``winner`` is the
    most restrictive of them (``None`` and ``action == approve`` when none fired).
    ``errors`` records rules whose condition failed at run time or was not a bool;
    such a rule counts as not fired.  (A frozen Struct: one is made per pool of every
    intent, and a frozen dataclass costs several times more to make.)
    """

    action: Action
    fired: list[FiredRule] = []
    winner: FiredRule | None = None
    errors: list[str] = []
    #: rules in shadow mode whose condition held: what they would have decided
    shadowed: list[FiredRule] = []


class PolicyError(Exception):
    """A policy file or text that cannot be loaded.

    ``str()`` is one line naming where the problem is, e.g.
    ``policy.yaml:12: policy 'shed-background', rule 'smooth': unknown action 'slow' (...)``.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "<string>",
        line: int | None = None,
        policy: str | None = None,
        rule: str | None = None,
    ) -> None:
        self.message = " ".join(message.split())
        self.source = source
        self.line = line
        self.policy = policy
        self.rule = rule
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        context = [
            f"{label} {_quoted(value)}"
            for label, value in (("policy", self.policy), ("rule", self.rule))
            if value is not None
        ]
        if context:
            return f"{where}: {', '.join(context)}: {self.message}"
        return f"{where}: {self.message}"


def _quoted(name: str) -> str:
    """``'id'`` for a real name, ``#3`` (the position) as is for an unnamed entry."""
    return name if name.startswith("#") else f"'{name}'"
