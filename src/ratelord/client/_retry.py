"""When to ask ratelord-d again: 503 and 429 only, honouring ``Retry-After``; when to reconnect."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ratelord.headers import parse_retry_after

#: Statuses the daemon uses for "not now": initializing, overloaded, read-only store.
RETRYABLE_STATUS = frozenset({429, 503})


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, overridden by the daemon's ``Retry-After``.

    ``max_delay`` also caps a ``Retry-After``: an agent asking before an API
    call should not hang for minutes because the daemon said so.
    """

    retries: int = 3
    base: float = 0.2
    max_delay: float = 10.0
    #: each pause is drawn from ``[1 - jitter, 1]`` times the exponential step
    jitter: float = 0.5

    def pause(self, attempt: int) -> float:
        """The exponential pause before attempt ``attempt + 1`` (also between reconnects)."""
        step = min(self.max_delay, self.base * 2.0**attempt)
        return random.uniform(1.0 - self.jitter, 1.0) * step

    def delay(
        self, status_code: int, attempt: int, retry_after: str | None, *, now: float
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to stop retrying."""
        if status_code not in RETRYABLE_STATUS or attempt >= self.retries:
            return None
        if retry_after is not None:
            hinted = parse_retry_after(retry_after, now=now, cap=self.max_delay)
            if hinted is not None:
                return hinted
        return self.pause(attempt)
