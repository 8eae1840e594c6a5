"""A continuously refilling token bucket, as OpenAI's and Anthropic's limiters behave.

Holds at most ``limit``; refills at ``limit / window_seconds`` per second.  The
fake LLM servers keep one per limit; engine tests use it to produce headers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    limit: float
    window_seconds: float
    level: float
    at: float

    @classmethod
    def full(cls, limit: float, window_seconds: float, now: float) -> TokenBucket:
        return cls(limit=limit, window_seconds=window_seconds, level=limit, at=now)

    @property
    def rate(self) -> float:
        return self.limit / self.window_seconds

    def refill(self, now: float) -> float:
        if now > self.at:
            self.level = min(self.limit, self.level + self.rate * (now - self.at))
            self.at = now
        return self.level

    def fits(self, amount: float, now: float) -> bool:
        return self.refill(now) >= amount

    def take(self, amount: float, now: float) -> None:
        """Spend ``amount`` (the level may go below zero: a charge after admission)."""
        self.refill(now)
        self.level -= amount

    def remaining(self, now: float) -> int:
        return max(0, int(self.refill(now)))

    def seconds_to_full(self, now: float) -> float:
        return max(0.0, self.limit - self.refill(now)) / self.rate

    def seconds_until(self, amount: float, now: float) -> float:
        return max(0.0, amount - self.refill(now)) / self.rate


def go_duration(seconds: float) -> str:
    """``x-ratelimit-reset-*`` as OpenAI writes it: ``1m2.5s``, ``350ms``, ``0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text
