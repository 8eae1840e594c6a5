"""The variables a policy may read: one pool's view of one intent.

:data:`VARIABLES` is the contract with the caller (arbitration builds a context
of exactly this shape) and the schema that rule conditions and reason templates
are checked against at load time.  Every number is a double (a Python
``float``; ``inf`` where a time is unbounded); the evaluator turns ``int``
values into floats so that arithmetic in conditions never mixes types.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, Final

DOUBLE: Final = "double"
STRING: Final = "string"
MAP: Final = "map"

#: A field's type: ``double``, ``string``, ``map`` (string keys and values) or
#: the tuple of the strings it can hold.
FieldType = str | tuple[str, ...]

URGENCIES: Final = ("background", "low", "normal", "high")
STATUSES: Final = ("ok", "degraded")

VARIABLES: Final[Mapping[str, Mapping[str, FieldType]]] = {
    "intent": {
        "agent_id": STRING,
        "identity_id": STRING,
        "workload_id": STRING,
        "scope_id": STRING,
        "urgency": URGENCIES,
        "cost": DOUBLE,
    },
    "pool": {
        "id": STRING,
        "provider": STRING,
        "resource": STRING,
        "remaining": DOUBLE,
        "limit": DOUBLE,
        "utilization": DOUBLE,
        "seconds_to_reset": DOUBLE,
    },
    "tte": {"p50": DOUBLE, "p90": DOUBLE, "p99": DOUBLE, "p99_with_intent": DOUBLE},
    "risk": {"p_exhaustion": DOUBLE, "p_exhaustion_with_intent": DOUBLE},
    "margin": {"seconds": DOUBLE, "with_intent_seconds": DOUBLE},
    "identity": {
        "id": STRING,
        "kind": STRING,
        "labels": MAP,
        "burn_share": DOUBLE,
        "principal": STRING,
    },
    "agent": {"id": STRING, "labels": MAP, "role": STRING, "burn_share": DOUBLE},
    "provider": {"id": STRING, "status": STATUSES},
    "system": {"status": STATUSES},
    "time": {"hour": DOUBLE, "minute": DOUBLE, "weekday": DOUBLE, "unix": DOUBLE},
    "budget": {
        "id": STRING,
        "period": STRING,
        "spent": DOUBLE,
        "limit": DOUBLE,
        "remaining": DOUBLE,
        "forecast_end": DOUBLE,
        "cost": DOUBLE,
        "seconds_to_end": DOUBLE,
    },
}

#: How many sample contexts :func:`sample_contexts` makes: enough to give every
#: enumerated field (urgency, status) each of its values once.
SAMPLE_VARIANTS: Final = max(len(URGENCIES), len(STATUSES))


def check_path(path: tuple[str, ...]) -> str | None:
    """Why ``var.field[.key...]`` is not something a policy can read, or ``None`` if it is."""
    var = path[0]
    fields = VARIABLES.get(var)
    if fields is None:
        return f"unknown variable '{var}'{_suggest(var, VARIABLES)} (use {_listing(VARIABLES)})"
    if len(path) == 1:
        return None
    name = path[1]
    kind = fields.get(name)
    if kind is None:
        return (
            f"unknown field '{name}' of '{var}'{_suggest(name, fields)} "
            f"(fields of {var}: {_listing(fields)})"
        )
    if len(path) > 2 and kind != MAP:
        return f"'{var}.{name}' is a {describe_type(kind)}, it has no field '{path[2]}'"
    return None


def describe_type(kind: FieldType) -> str:
    return "string" if isinstance(kind, tuple) else kind


def sample_value(kind: FieldType, variant: int = 0) -> Any:
    """A plausible value of a field's type (the ``variant``-th one for enumerations)."""
    if isinstance(kind, tuple):
        return kind[variant % len(kind)]
    return {DOUBLE: 1.0, STRING: "sample", MAP: {}}[kind]


def sample_contexts(map_keys: Iterable[tuple[str, str, str]] = ()) -> list[dict[str, Any]]:
    """Complete contexts to probe conditions with at load time.

    ``map_keys`` are ``(var, field, key)`` label lookups a condition makes; they
    are present in the samples so the probe goes on past them.
    """
    keys = list(map_keys)
    contexts = []
    for variant in range(SAMPLE_VARIANTS):
        context = {
            var: {name: sample_value(kind, variant) for name, kind in fields.items()}
            for var, fields in VARIABLES.items()
        }
        for var, name, key in keys:
            context[var][name][key] = "sample"
        contexts.append(context)
    return contexts


def example_context(updates: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A complete, calm context (for docs, tests, benchmarks), with ``{"var.field": value}`` set.

    >>> example_context({"pool.remaining": 90.0})["pool"]["remaining"]
    90.0
    """
    inf = float("inf")
    ctx: dict[str, Any] = {
        "intent": {
            "agent_id": "crawler-01",
            "identity_id": "pat:alice",
            "workload_id": "repo_scan",
            "scope_id": "repo:acme/api",
            "urgency": "normal",
            "cost": 1.0,
        },
        "pool": {
            "id": "github:core:user/alice",
            "provider": "github",
            "resource": "core",
            "remaining": 4200.0,
            "limit": 5000.0,
            "utilization": 0.16,
            "seconds_to_reset": 1800.0,
        },
        "tte": {"p50": inf, "p90": inf, "p99": inf, "p99_with_intent": inf},
        "risk": {"p_exhaustion": 0.0, "p_exhaustion_with_intent": 0.0},
        "margin": {"seconds": inf, "with_intent_seconds": inf},
        "identity": {
            "id": "pat:alice",
            "kind": "token",
            "labels": {"team": "infra"},
            "burn_share": 0.4,
            "principal": "github:user/alice",
        },
        "agent": {"id": "crawler-01", "labels": {}, "role": "crawler", "burn_share": 0.2},
        "provider": {"id": "github", "status": "ok"},
        "system": {"status": "ok"},
        "time": {"hour": 14.0, "minute": 5.0, "weekday": 2.0, "unix": 1_767_276_300.0},
        "budget": {
            "id": "",
            "period": "",
            "spent": 0.0,
            "limit": inf,
            "remaining": inf,
            "forecast_end": 0.0,
            "cost": 0.0,
            "seconds_to_end": inf,
        },
    }
    for dotted, value in (updates or {}).items():
        var, _, name = dotted.partition(".")
        ctx[var][name] = value
    return ctx


def _listing(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def _suggest(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
