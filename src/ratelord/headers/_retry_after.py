"""``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date."""

from __future__ import annotations

import math
import re
from datetime import UTC
from email.utils import parsedate_to_datetime

from ratelord.headers._model import logger, warn_malformed

# Digits with an optional fraction: RFC 9110 says integer, servers send "1.5".
_DELAY = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(
    value: str, *, now: float, date: str | None = None, cap: float = 86400
) -> float | None:
    """Seconds to wait, from ``now``; ``None`` when the value is not usable.

    An HTTP-date is measured against the response's ``Date`` header when
    given (both come from the server's clock, so local skew cancels out), else
    against ``now``.  A date in the past means 0.  A wait longer than ``cap``
    is cut to ``cap`` with a warning rather than sleeping for days.
    """
    text = value.strip()
    if _DELAY.fullmatch(text):
        delay = float(text)
    else:
        target = _http_date(text)
        if target is None:
            warn_malformed("retry-after", value, "neither delay-seconds nor an HTTP-date")
            return None
        reference = _http_date(date) if date else None
        delay = max(0.0, target - (now if reference is None else reference))
    if not math.isfinite(delay):
        warn_malformed("retry-after", value, "not a finite delay")
        return None
    if delay > cap:
        logger.warning("retry-after of %.0f s is implausible; waiting %.0f s instead", delay, cap)
        return float(cap)
    return delay


def _http_date(text: str) -> float | None:
    """IMF-fixdate, RFC 850 or asctime as epoch seconds (asctime carries no zone: UTC)."""
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
