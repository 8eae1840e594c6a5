"""``parse_rate_limit_headers``: every family's parser over one response's headers."""

from __future__ import annotations

from collections.abc import Mapping

from ratelord.headers._anthropic import parse_anthropic
from ratelord.headers._github import parse_github
from ratelord.headers._ietf import parse_ietf
from ratelord.headers._model import RateLimitObservation
from ratelord.headers._openai import parse_openai
from ratelord.headers._retry_after import parse_retry_after


def parse_rate_limit_headers(
    headers: Mapping[str, str],
    *,
    now: float,
    path: str | None = None,
    date: str | None = None,
) -> list[RateLimitObservation]:
    """All rate-limit observations in one response's headers (GitHub, OpenAI, Anthropic, IETF).

    ``now`` is the local time the response was received; relative resets
    become absolute instants with it.  ``path`` is the request path (GitHub's
    bucket when ``x-ratelimit-resource`` is absent); ``date`` is the
    response's ``Date`` header, against which an HTTP-date ``Retry-After`` is
    measured.  Names are matched case-insensitively; malformed values are
    logged on ``ratelord.headers`` and skipped, never raised.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    raw_retry_after = lowered.get("retry-after")
    retry_after = (
        None
        if raw_retry_after is None
        else parse_retry_after(raw_retry_after, now=now, date=date or lowered.get("date"))
    )
    return [
        *parse_github(lowered, now=now, path=path),
        *parse_openai(lowered, now=now),
        *parse_anthropic(lowered),
        *parse_ietf(lowered, now=now, retry_after=retry_after),
    ]
