"""The ``:`` command language of the dashboard, parsed into small command values.

``:filter agent ID`` · ``:filter identity ID`` · ``:filter workload ID`` ·
``:filter decision approve|modify|deny`` · ``:clear`` · ``:test {json intent}`` · ``:q``
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, get_args

from ratelord.schema import DecisionKind
from ratelord.tui.activity import Dimension

DECISION_ALIASES: dict[str, DecisionKind] = {
    "approve": "approve",
    "approved": "approve",
    "modify": "approve_with_modifications",
    "modified": "approve_with_modifications",
    "approve_with_modifications": "approve_with_modifications",
    "deny": "deny_with_reason",
    "denied": "deny_with_reason",
    "deny_with_reason": "deny_with_reason",
}

USAGE = (
    ":filter agent|identity|workload ID · :filter decision approve|modify|deny · "
    ":clear · :test {json} · :q"
)


class CommandError(ValueError):
    """The command text is not one the dashboard understands; the message says how to fix it."""


@dataclass(frozen=True)
class FilterDimension:
    dimension: Dimension
    value: str


@dataclass(frozen=True)
class FilterDecision:
    decision: DecisionKind


@dataclass(frozen=True)
class Clear:
    pass


@dataclass(frozen=True)
class SubmitIntent:
    intent: dict[str, Any]


@dataclass(frozen=True)
class Quit:
    pass


Command = FilterDimension | FilterDecision | Clear | SubmitIntent | Quit


def parse(text: str) -> Command:
    """Parse one command line (the leading ``:`` is optional)."""
    verb, _, rest = text.strip().removeprefix(":").strip().partition(" ")
    rest = rest.strip()
    if verb in ("q", "quit") and not rest:
        return Quit()
    if verb == "clear" and not rest:
        return Clear()
    if verb == "filter":
        return _parse_filter(rest)
    if verb == "test":
        return SubmitIntent(_parse_intent(rest))
    raise CommandError(f"unknown command {text.strip()!r}; try {USAGE}")


def _parse_filter(rest: str) -> Command:
    key, _, value = rest.partition(" ")
    value = value.strip()
    if not value or " " in value:
        raise CommandError(f"':filter {rest}' needs one key and one value, e.g. ':filter agent a1'")
    if key == "decision":
        try:
            return FilterDecision(DECISION_ALIASES[value.lower()])
        except KeyError:
            raise CommandError(f"unknown decision {value!r}; use approve, modify or deny") from None
    if key in get_args(Dimension):
        return FilterDimension(key, value)  # type: ignore[arg-type]  # checked just above
    raise CommandError(f"cannot filter by {key!r}; use agent, identity, workload or decision")


def _parse_intent(rest: str) -> dict[str, Any]:
    try:
        intent = json.loads(rest)
    except ValueError as exc:
        raise CommandError(f":test needs a JSON intent object: {exc}") from None
    if not isinstance(intent, dict):
        raise CommandError(':test needs a JSON object, e.g. :test {"agent_id": "a1", ...}')
    return intent
