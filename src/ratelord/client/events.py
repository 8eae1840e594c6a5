"""The daemon's events, typed: what ``GET /v1/events`` and its stream carry.

Each event type has its class (``IntentDecided``, ``PostureChanged``, ...) whose
``payload`` is a Struct of that type; :func:`event_from` turns a parsed event (a
dict) into it and :func:`decode_event` a raw one (bytes).  A type this version
does not know comes back as a bare :class:`Event` with a dict payload.
"""

from __future__ import annotations

from ratelord.engine.events import (
    Event,
    IntentDecided,
    IntentDecidedPayload,
    LeaseRevised,
    PostureChanged,
    decode_event,
    event_from,
)

__all__ = [
    "Event",
    "IntentDecided",
    "IntentDecidedPayload",
    "LeaseRevised",
    "PostureChanged",
    "decode_event",
    "event_from",
]
