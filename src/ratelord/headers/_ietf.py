"""IETF ``RateLimit`` / ``RateLimit-Policy`` fields (draft-ietf-httpapi-ratelimit-headers).

Three generations are still served:

* current (rev. 10): two Structured-Field lists joined by policy name,
  ``RateLimit-Policy: "burst";q=100;w=60`` and ``RateLimit: "burst";r=37;t=22``;
* draft 07: one dictionary, ``RateLimit: limit=100, remaining=50, reset=5``;
* drafts ≤ 06: ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (delay seconds),
  optionally with an unnamed ``RateLimit-Policy: 10;w=1``.

Policies without a name are reported under the bucket ``default``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ratelord.headers._model import RateLimitObservation, read_count, warn_malformed
from ratelord.headers._sf import BareItem, Item, Params, SFError, parse_dictionary, parse_list

DEFAULT_BUCKET = "default"


def parse_ietf(
    headers: Mapping[str, str], *, now: float, retry_after: float | None
) -> list[RateLimitObservation]:
    """Observations from whichever generation the response used.

    ``retry_after`` (seconds, already parsed) wins over a policy's own ``t``.
    """
    raw = headers.get("ratelimit")
    if raw is not None:
        try:
            return _current(parse_list(raw), headers.get("ratelimit-policy"), now, retry_after)
        except SFError:
            pass  # not a list: maybe the draft-07 dictionary
        try:
            return _draft07(parse_dictionary(raw), now, retry_after)
        except SFError as exc:
            warn_malformed("ratelimit", raw, f"not a structured list or dictionary ({exc})")
            return []
    if "ratelimit-remaining" in headers:
        return _separate_fields(headers, now, retry_after)
    return []


def _current(
    items: list[Item], raw_policy: str | None, now: float, retry_after: float | None
) -> list[RateLimitObservation]:
    policies = _named_policies(raw_policy)
    observations = []
    for name, params in items:
        if not isinstance(name, str):
            warn_malformed("ratelimit", str(name), "a policy name must be a string or token")
            continue
        if "r" not in params:
            warn_malformed("ratelimit", name, "policy has no remaining (r) parameter")
            continue
        remaining = _number("ratelimit", params["r"], f"{name}: r")
        if remaining is None:
            continue
        policy = policies.get(name, {})
        observations.append(
            RateLimitObservation(
                family="ietf",
                bucket=name,
                limit=_number("ratelimit-policy", policy.get("q"), f"{name}: q"),
                remaining=remaining,
                reset_at=_reset_at(params.get("t"), now, retry_after, remaining, f"{name}: t"),
                window_seconds=_number("ratelimit-policy", policy.get("w"), f"{name}: w"),
                unit=str(policy.get("qu", "requests")),
            )
        )
    return observations


def _named_policies(raw: str | None) -> dict[str, Params]:
    if raw is None:
        return {}
    try:
        items = parse_list(raw)
    except SFError as exc:
        warn_malformed("ratelimit-policy", raw, str(exc))
        return {}
    return {name: params for name, params in items if isinstance(name, str)}


def _draft07(
    members: dict[str, Item], now: float, retry_after: float | None
) -> list[RateLimitObservation]:
    def value(key: str) -> BareItem | None:
        return members[key][0] if key in members else None

    remaining = _number("ratelimit", value("remaining"), "remaining")
    if remaining is None:
        return []
    return [
        RateLimitObservation(
            family="ietf",
            bucket=DEFAULT_BUCKET,
            limit=_number("ratelimit", value("limit"), "limit"),
            remaining=remaining,
            reset_at=_reset_at(value("reset"), now, retry_after, remaining, "reset"),
        )
    ]


def _separate_fields(
    headers: Mapping[str, str], now: float, retry_after: float | None
) -> list[RateLimitObservation]:
    remaining = read_count("ratelimit-remaining", headers["ratelimit-remaining"])
    if remaining is None:
        return []
    limit, window = _quota_with_window("ratelimit-limit", headers.get("ratelimit-limit"))
    policy_limit, policy_window = _quota_with_window(
        "ratelimit-policy", headers.get("ratelimit-policy")
    )
    raw_reset = headers.get("ratelimit-reset")
    reset = None if raw_reset is None else read_count("ratelimit-reset", raw_reset)
    return [
        RateLimitObservation(
            family="ietf",
            bucket=DEFAULT_BUCKET,
            limit=limit if limit is not None else policy_limit,
            remaining=remaining,
            reset_at=_reset_at(reset, now, retry_after, remaining, "reset"),
            window_seconds=window if window is not None else policy_window,
        )
    ]


def _quota_with_window(field: str, raw: str | None) -> tuple[float | None, float | None]:
    """The first member of ``10, 10;w=1, 50;w=60``: its quota and its ``w``."""
    if raw is None:
        return None, None
    try:
        items = parse_list(raw)
    except SFError as exc:
        warn_malformed(field, raw, str(exc))
        return None, None
    if not items:
        return None, None
    quota, params = items[0]
    return _number(field, quota, "quota"), _number(field, params.get("w"), "w")


def _reset_at(
    seconds: BareItem | float | None,
    now: float,
    retry_after: float | None,
    remaining: float,
    what: str,
) -> float | None:
    """``now + t``; ``Retry-After`` replaces ``t``, and stands in for it when exhausted."""
    if retry_after is not None and (seconds is not None or remaining == 0):
        return now + retry_after
    delay = _number("ratelimit", seconds, what)
    return None if delay is None else now + delay


def _number(field: str, value: BareItem | float | None, what: str) -> float | None:
    """A non-negative SF Integer/Decimal; ``None`` (warned) for anything else but absence."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        warn_malformed(field, f"{what}={value!r}", "expected a non-negative number")
        return None
    return float(value)
