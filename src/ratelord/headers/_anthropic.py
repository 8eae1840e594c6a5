"""Anthropic's ``anthropic-ratelimit-*`` (and Priority Tier ``anthropic-priority-*``) headers."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from ratelord.headers._model import (
    RateLimitObservation,
    read_count,
    read_rfc3339,
    unit_of,
)

# Bucket names contain dashes (input-tokens), so the field is taken from the end.
_NAME = re.compile(r"anthropic-(ratelimit|priority)-(.+)-(limit|remaining|reset)")


def parse_anthropic(headers: Mapping[str, str]) -> list[RateLimitObservation]:
    """One observation per bucket that sent a ``remaining``; resets are RFC 3339 instants.

    Priority Tier buckets are named ``priority-<bucket>`` so they stay apart
    from the standard ones.  ``tokens-*`` repeats whichever of the input and
    output buckets binds now, so it is dropped when those two are sent: as a
    pool of its own it would jump between two budgets.
    """
    fields: dict[str, dict[str, tuple[str, str]]] = {}
    for name, value in headers.items():
        match = _NAME.fullmatch(name)
        if match:
            kind, bucket, field = match.groups()
            key = bucket if kind == "ratelimit" else f"priority-{bucket}"
            fields.setdefault(key, {})[field] = (name, value)
    for prefix in ("", "priority-"):
        if f"{prefix}input-tokens" in fields and f"{prefix}output-tokens" in fields:
            fields.pop(f"{prefix}tokens", None)
    observations = []
    for bucket, values in fields.items():
        remaining = _read(values, "remaining", read_count)
        if remaining is None:
            continue
        observations.append(
            RateLimitObservation(
                family="anthropic",
                bucket=bucket,
                limit=_read(values, "limit", read_count),
                remaining=remaining,
                reset_at=_read(values, "reset", read_rfc3339),
                unit=unit_of(bucket),
            )
        )
    return observations


def _read(
    values: Mapping[str, tuple[str, str]], field: str, reader: Callable[[str, str], float | None]
) -> float | None:
    if field not in values:
        return None
    name, value = values[field]
    return reader(name, value)
