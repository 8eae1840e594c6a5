"""OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens,…}`` headers."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ratelord.headers._durations import parse_go_duration
from ratelord.headers._model import (
    RateLimitObservation,
    logger,
    read_number,
    unit_of,
    warn_malformed,
)

_NAME = re.compile(r"x-ratelimit-(limit|remaining|reset)-(.+)")


def parse_openai(headers: Mapping[str, str], *, now: float) -> list[RateLimitObservation]:
    """One observation per bucket that sent a ``remaining`` (unknown buckets are kept).

    Negative numbers mean "unknown" (Azure has sent ``-1``), so they are
    dropped quietly rather than warned about.  The reset is the time until
    the bucket is full again, turned into an instant with ``now``.
    """
    fields: dict[str, dict[str, str]] = {}
    for name, value in headers.items():
        match = _NAME.fullmatch(name)
        if match:
            fields.setdefault(match.group(2), {})[match.group(1)] = value
    observations = []
    for bucket, values in fields.items():
        remaining = _known(f"x-ratelimit-remaining-{bucket}", values.get("remaining"))
        if remaining is None:
            continue
        observations.append(
            RateLimitObservation(
                family="openai",
                bucket=bucket,
                limit=_known(f"x-ratelimit-limit-{bucket}", values.get("limit")),
                remaining=remaining,
                reset_at=_reset_at(f"x-ratelimit-reset-{bucket}", values.get("reset"), now),
                unit=unit_of(bucket),
            )
        )
    return observations


def _known(name: str, value: str | None) -> float | None:
    number = None if value is None else read_number(name, value)
    if number is not None and number < 0:
        logger.debug("%s=%s means unknown", name, value)
        return None
    return number


def _reset_at(name: str, value: str | None, now: float) -> float | None:
    if value is None:
        return None
    seconds = parse_go_duration(value)
    if seconds is None:
        warn_malformed(name, value, "not a Go duration such as 6m0s or 20ms")
        return None
    return now + seconds
