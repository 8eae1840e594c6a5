"""A circuit breaker: stop asking a daemon that is down or hung, probe it again later.

Every call that reaches no member of the cluster (refused, reset, or no answer
within the client's timeout) is a failure.  After ``threshold`` failures in a
row the circuit **opens**: for ``cooldown`` seconds every call fails at once
with :class:`~ratelord.client.RatelordTransportError`, so ``ask`` applies the
fail mode (deny, or approve with ``fail_open``) without waiting a timeout per
call.  Then it is **half-open**: one call goes through as a probe while the
others still fail at once; its answer closes the circuit, its failure opens it
again for twice as long (up to ``max_cooldown``).  Any answer, even an error
status, proves the daemon reachable.

Thread-safe (a sync client is shared between threads); the async client runs
on one loop and uses the same object.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ratelord.client._exceptions import RatelordTransportError

logger = logging.getLogger("ratelord.client")


@dataclass(frozen=True)
class BreakerSettings:
    """``threshold`` 0 turns the breaker off."""

    threshold: int = 3
    cooldown: float = 5.0
    max_cooldown: float = 60.0


DEFAULT_BREAKER = BreakerSettings()


class Breaker:
    def __init__(
        self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0
        #: when the open circuit lets a probe through (None: closed)
        self._open_until: float | None = None
        self._cooldown = settings.cooldown
        self._probing = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (for logs and tests)."""
        if self._open_until is None:
            return "closed"
        return "half-open" if self._clock() >= self._open_until else "open"

    def before(self, url: str) -> bool:
        """Raise while the circuit is open; True when this call is the half-open probe."""
        if self._open_until is None:  # closed: no lock on the hot path
            return False
        with self._lock:
            if self._open_until is None:
                return False
            now = self._clock()
            if now >= self._open_until and not self._probing:
                self._probing = True
                return True
            wait = max(0.0, self._open_until - now)
            raise RatelordTransportError(
                f"ratelord-d at {url} failed {self.failures} times in a row: not asked "
                f"(circuit open, next probe in {wait:.1f} s)"
            )

    def succeeded(self) -> None:
        with self._lock:
            if self._open_until is not None:
                logger.info("ratelord-d answers again: circuit closed")
            self.failures = 0
            self._open_until = None
            self._cooldown = self.settings.cooldown
            self._probing = False

    def failed(self, probe: bool) -> None:
        settings = self.settings
        with self._lock:
            self.failures += 1
            if probe:
                self._probing = False
                self._cooldown = min(self._cooldown * 2.0, settings.max_cooldown)
            elif self._open_until is not None or not settings.threshold:
                return  # a call that was already under way when the circuit opened
            elif self.failures < settings.threshold:
                return
            self._open_until = self._clock() + self._cooldown
            logger.warning(
                "ratelord-d failed %d times in a row: circuit open for %.1f s "
                "(calls get the fail mode at once)",
                self.failures,
                self._cooldown,
            )
