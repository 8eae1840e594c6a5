"""Rate-limit headers → observations of pools, as the daemon's ``POST /v1/usage`` reads them.

Two things depend on who sent the headers:

* **Model.** LLM limits are per model, but OpenAI's and Anthropic's headers
  do not name it: with the request's ``model`` their buckets become per-model
  resources (``tokens@gpt-4o-mini``, see :func:`ratelord.llm.model_resource`).
* **Refill.** OpenAI's and Anthropic's buckets refill continuously and their
  reset is the instant the bucket would be full again, so they are observed as
  ``refill`` windows.  OpenAI's resets are durations to the millisecond, so the
  time to refill from empty is measured, ``limit × (reset − now) ÷ (limit −
  remaining)``, when enough of the bucket is spent to measure it; Anthropic's
  are timestamps to the second (and its token counts are rounded), too coarse
  to measure a refill by, so its buckets take the documented minute (RPM,
  ITPM, OTPM), as do OpenAI's when the headers cannot tell.
"""

from __future__ import annotations

from collections.abc import Mapping

from ratelord.engine.observations import PoolObservation
from ratelord.headers._model import RateLimitObservation
from ratelord.headers._parse import parse_rate_limit_headers
from ratelord.llm import model_resource

_REFILLING = frozenset({"openai", "anthropic"})
#: RPM/TPM/ITPM/OTPM: the documented refill window when the headers cannot tell.
DEFAULT_REFILL_WINDOW = 60.0
#: The least spent fraction of a bucket its refill window is measured from.
_MEASURABLE = 0.02
_MIN_WINDOW, _MAX_WINDOW = 1.0, 86_400.0


def pool_observations(
    headers: Mapping[str, str], *, now: float, path: str | None = None, model: str | None = None
) -> list[PoolObservation]:
    """Every pool the headers describe (names matched case-insensitively)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return [
        _pool_observation(parsed, now, model)
        for parsed in parse_rate_limit_headers(
            lowered, now=now, path=path, date=lowered.get("date")
        )
    ]


def _pool_observation(
    parsed: RateLimitObservation, now: float, model: str | None
) -> PoolObservation:
    if parsed.family in _REFILLING:
        return PoolObservation(
            resource=model_resource(parsed.bucket, model),
            limit=parsed.limit,
            remaining=parsed.remaining,
            reset_at=parsed.reset_at,
            window="refill",
            window_seconds=refill_window(parsed, now),
            unit=parsed.unit,
        )
    return PoolObservation(
        resource=parsed.bucket,
        limit=parsed.limit,
        remaining=parsed.remaining,
        used=parsed.used,
        reset_at=parsed.reset_at,
        window="fixed" if parsed.reset_at is not None else "unknown",
        window_seconds=parsed.window_seconds,
        unit=parsed.unit,
    )


def refill_window(parsed: RateLimitObservation, now: float) -> float:
    """Seconds a bucket takes to refill from empty, measured where the headers allow."""
    limit, reset_at = parsed.limit, parsed.reset_at
    if parsed.family != "openai" or not limit or reset_at is None:
        return DEFAULT_REFILL_WINDOW
    spent = limit - parsed.remaining
    if spent < _MEASURABLE * limit or reset_at - now <= 0:
        return DEFAULT_REFILL_WINDOW
    return min(_MAX_WINDOW, max(_MIN_WINDOW, limit * (reset_at - now) / spent))
