"""GitHub's ``x-ratelimit-*`` headers (also the generic vendor form of them)."""

from __future__ import annotations

from collections.abc import Mapping

from ratelord.headers._model import RateLimitObservation, read_count, read_number

#: Window lengths GitHub documents per bucket; the headers do not say.
_WINDOWS = {"core": 3600.0, "graphql": 3600.0, "search": 60.0, "code_search": 60.0}
#: Below this an ``x-ratelimit-reset`` is a delay in seconds, above it an epoch.
_EPOCH_THRESHOLD = 1e9


def bucket_for_path(path: str | None) -> str:
    """The bucket a request path draws from when ``x-ratelimit-resource`` is absent."""
    path = (path or "").split("?", 1)[0].rstrip("/")
    if path == "/search/code" or path.startswith("/search/code/"):
        return "code_search"
    if path.startswith("/search/"):
        return "search"
    if path == "/graphql":
        return "graphql"
    return "core"


def parse_github(
    headers: Mapping[str, str], *, now: float, path: str | None
) -> list[RateLimitObservation]:
    """At most one observation: the bucket this response was charged to."""
    raw_remaining = headers.get("x-ratelimit-remaining")
    if raw_remaining is None:
        return []
    remaining = read_number("x-ratelimit-remaining", raw_remaining)
    if remaining is None:
        return []
    bucket = headers.get("x-ratelimit-resource", "").strip() or bucket_for_path(path)
    return [
        RateLimitObservation(
            family="github",
            bucket=bucket,
            limit=_optional_count(headers, "x-ratelimit-limit"),
            remaining=max(0.0, remaining),  # GitHub: use as sent, clamped at 0
            used=_optional_count(headers, "x-ratelimit-used"),
            reset_at=_reset_at(headers.get("x-ratelimit-reset"), now),
            window_seconds=_WINDOWS.get(bucket),
            unit="points" if bucket == "graphql" else "requests",
        )
    ]


def _optional_count(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    return None if value is None else read_count(name, value)


def _reset_at(value: str | None, now: float) -> float | None:
    """GitHub sends epoch seconds; vendors copying the header sometimes send a delay."""
    if value is None:
        return None
    reset = read_count("x-ratelimit-reset", value)
    if reset is None:
        return None
    return reset if reset >= _EPOCH_THRESHOLD else now + reset
