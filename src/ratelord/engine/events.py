"""The event envelope (SPEC §3) and the vocabulary of event types.

An :class:`Event` is immutable once created.  ``seq`` and ``ts_ingest`` are
assigned by the store when it appends the event; everything else is decided
by whoever creates it.  Payloads are plain JSON-able dicts keyed by
``event_type`` + ``schema_version``.
"""

from __future__ import annotations

import itertools
import os
from enum import StrEnum
from typing import Any, Literal

import msgspec

from ratelord.schema import SENTINEL_GLOBAL, SENTINEL_SYSTEM, SENTINEL_UNKNOWN

__all__ = [
    "SENTINEL_GLOBAL",
    "SENTINEL_SYSTEM",
    "SENTINEL_UNKNOWN",
    "Dimensions",
    "Event",
    "EventType",
    "IdFactory",
    "Source",
]

SCHEMA_VERSION = 1
WRITER_ID = "ratelord-d"
OriginKind = Literal["daemon", "provider", "client", "operator"]


class EventType(StrEnum):
    SYSTEM_STARTED = "system_started"
    SYSTEM_STOPPED = "system_stopped"
    IDENTITY_REGISTERED = "identity_registered"
    IDENTITY_ROTATED = "identity_rotated"
    IDENTITY_REVOKED = "identity_revoked"
    IDENTITY_QUARANTINED = "identity_quarantined"
    PRINCIPAL_DISCOVERED = "principal_discovered"
    PROVIDER_POLL_OBSERVED = "provider_poll_observed"
    PROVIDER_ERROR = "provider_error"
    CONSTRAINT_OBSERVED = "constraint_observed"
    USAGE_OBSERVED = "usage_observed"
    RESET_OBSERVED = "reset_observed"
    DRIFT_DETECTED = "drift_detected"
    FORECAST_COMPUTED = "forecast_computed"
    INTENT_SUBMITTED = "intent_submitted"
    INTENT_DECIDED = "intent_decided"
    USAGE_REPORTED = "usage_reported"
    POLICY_UPDATED = "policy_updated"
    POLICY_REJECTED = "policy_rejected"
    POLICY_TRIGGERED = "policy_triggered"
    POLICY_SHADOWED = "policy_shadowed"
    THROTTLE_ADVISED = "throttle_advised"
    POSTURE_CHANGED = "posture_changed"
    SNAPSHOT_WRITTEN = "snapshot_written"
    INTENTS_DECIDED = "intents_decided"
    APPROVAL_REVOKED = "approval_revoked"
    LEASE_DECIDED = "lease_decided"
    LEASE_REPORTED = "lease_reported"
    LEASE_REVISED = "lease_revised"
    LEASE_ENDED = "lease_ended"


class Source(msgspec.Struct, frozen=True):
    origin_kind: OriginKind = "daemon"
    origin_id: str = SENTINEL_SYSTEM
    writer_id: str = WRITER_ID


class Dimensions(msgspec.Struct, frozen=True):
    agent_id: str = SENTINEL_SYSTEM
    identity_id: str = SENTINEL_SYSTEM
    workload_id: str = SENTINEL_SYSTEM
    scope_id: str = SENTINEL_GLOBAL


SYSTEM_DIMENSIONS = Dimensions()
DAEMON_SOURCE = Source()


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One immutable fact.  ``seq == 0`` until the store has appended it."""

    event_id: str
    event_type: str
    ts_event: float
    dimensions: Dimensions = SYSTEM_DIMENSIONS
    source: Source = DAEMON_SOURCE
    payload: dict[str, Any] = {}
    provider_id: str | None = None
    pool_id: str | None = None
    constraint_id: str | None = None
    correlation_id: str | None = None
    causation_id: str = SENTINEL_UNKNOWN
    dedupe_key: str | None = None
    schema_version: int = SCHEMA_VERSION
    seq: int = 0
    ts_ingest: float = 0.0


class IdFactory:
    """Makes unique, roughly time-ordered ids without reading the clock.

    A per-process random prefix plus a counter: unique across restarts of the
    daemon (new prefix) and cheap (no uuid4 syscall per event).  Tests and
    the simulator pass a fixed ``prefix`` for reproducible ids.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self._prefix = prefix if prefix is not None else os.urandom(6).hex()
        self._counter = itertools.count(1)

    def __call__(self, kind: str = "ev") -> str:
        return f"{kind}_{self._prefix}{next(self._counter):08x}"

    def many(self, kind: str, n: int) -> list[str]:
        """``n`` ids, as ``n`` calls would make them (a batch's group of intents)."""
        head = f"{kind}_{self._prefix}"
        return [f"{head}{i:08x}" for i in itertools.islice(self._counter, n)]
