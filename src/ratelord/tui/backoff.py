"""Jittered exponential backoff for reconnecting to the daemon."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays grow ``first, first*factor, ...`` up to ``cap``, each with ±``jitter`` spread.

    ``reset()`` after a success so the next outage starts again from ``first``.
    """

    first: float = 0.25
    cap: float = 5.0
    factor: float = 2.0
    jitter: float = 0.2
    _attempt: int = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.first * self.factor**self._attempt)
        self._attempt += 1
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        self._attempt = 0
