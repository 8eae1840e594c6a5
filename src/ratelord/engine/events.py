"""The event envelope (SPEC §3) and the vocabulary of event types.

An :class:`Event` is immutable once created.  ``seq`` and ``ts_ingest`` are
assigned by the store when it appends the event; everything else is decided
by whoever creates it.  Each event type the engine produces has its class
here, with a typed ``payload`` Struct: producers cannot build a payload of the
wrong shape, consumers read attributes, and :func:`typed` / :func:`decode_event`
give back the right class from stored bytes.  The JSON is the one the dicts
made before (same keys, absent ones still absent), so old logs replay alike.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from ratelord.engine.forecast import ForecastSnapshot
from ratelord.engine.observations import Window
from ratelord.schema import SENTINEL_GLOBAL, SENTINEL_SYSTEM, SENTINEL_UNKNOWN, DecisionKind

__all__ = [
    "SENTINEL_GLOBAL",
    "SENTINEL_SYSTEM",
    "SENTINEL_UNKNOWN",
    "Dimensions",
    "Event",
    "IdFactory",
    "Source",
]

SCHEMA_VERSION = 1
WRITER_ID = "ratelord-d"
OriginKind = Literal["daemon", "provider", "client", "operator"]


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
    """One immutable fact.  ``seq == 0`` until the store has appended it.

    Every type the engine produces is a subclass below with a typed ``payload``
    (build one with ``Engine.emit(payload, ...)``, which picks the class from the
    payload's type); a bare :class:`Event` carries a type this version does not
    know, its payload as decoded JSON.
    """

    event_id: str
    event_type: str
    ts_event: float
    dimensions: Dimensions = SYSTEM_DIMENSIONS
    source: Source = DAEMON_SOURCE
    payload: Any = {}
    provider_id: str | None = None
    pool_id: str | None = None
    constraint_id: str | None = None
    correlation_id: str | None = None
    causation_id: str = SENTINEL_UNKNOWN
    dedupe_key: str | None = None
    schema_version: int = SCHEMA_VERSION
    seq: int = 0
    ts_ingest: float = 0.0


# ---------------------------------------------------------------------- payloads
#
# One Struct per event type.  A field that is sometimes left out of the JSON
# (it always was) defaults to ``UNSET``; defaults elsewhere are what a log
# written before the field existed means.  Decoding ignores unknown fields (a
# newer writer may add some); the contract test forbids them for what the
# engine itself produces.


class Payload(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of every typed payload."""


class SystemStartedPayload(Payload, frozen=True, kw_only=True, gc=False):
    version: str | UnsetType = UNSET
    pid: int | UnsetType = UNSET
    db: str | UnsetType = UNSET
    replayed: int | UnsetType = UNSET
    snapshot_seq: int | UnsetType | None = UNSET
    from_seq: int | UnsetType = UNSET
    #: the scenario, when the simulator started the engine
    simulator: str | UnsetType = UNSET
    restart: bool | UnsetType = UNSET


class SystemStoppedPayload(Payload, frozen=True, kw_only=True, gc=False):
    reason: str = ""


class PolicyUpdatedPayload(Payload, frozen=True, kw_only=True, gc=False):
    version: str | None = None
    source: str = ""
    previous: str | None = None


class PolicyRejectedPayload(Payload, frozen=True, kw_only=True, gc=False):
    source: str = ""
    error: str = ""
    kept_version: str | None = None


class IdentityRegisteredPayload(Payload, frozen=True, kw_only=True, gc=False):
    identity_id: str
    provider_id: str
    principal: str | None = None
    kind: str = "token"
    #: absent: the event's ``dimensions.scope_id``
    scope_id: str | UnsetType = UNSET
    labels: dict[str, str] = {}
    secret_ref: str | None = None
    token_fingerprint: str | None = None


class IdentityChangedPayload(Payload, frozen=True, kw_only=True, gc=False):
    """Rotated, revoked or quarantined: the operator's (or the engine's) reason."""

    #: a rotation's new reference (absent: revocation and quarantine leave it)
    secret_ref: str | UnsetType | None = UNSET
    reason: str | UnsetType | None = UNSET
    token_fingerprint: str | UnsetType | None = UNSET


class IdentityRotatedPayload(IdentityChangedPayload, frozen=True, kw_only=True, gc=False):
    pass


class IdentityRevokedPayload(IdentityChangedPayload, frozen=True, kw_only=True, gc=False):
    pass


class IdentityQuarantinedPayload(IdentityChangedPayload, frozen=True, kw_only=True, gc=False):
    pass


class PrincipalDiscoveredPayload(Payload, frozen=True, kw_only=True, gc=False):
    principal: str
    previous: str | None = None


class ProviderPollObservedPayload(Payload, frozen=True, kw_only=True, gc=False):
    resources: list[str] = []
    principal: str | None = None
    status_code: int | None = None


class ProviderErrorPayload(Payload, frozen=True, kw_only=True, gc=False):
    kind: str = "unknown"
    message: str | None = None
    retry_after: float | None = None
    status_code: int | None = None


class ConstraintObservedPayload(Payload, frozen=True, kw_only=True, gc=False):
    resource: str
    principal: str
    limit: float | None = None
    #: absent: the pool keeps what it had
    unit: str | UnsetType = UNSET
    window: Window | UnsetType = UNSET
    window_seconds: float | UnsetType | None = UNSET
    reset_at: float | None = None


class ResetObservedPayload(Payload, frozen=True, kw_only=True, gc=False):
    resource: str
    principal: str
    previous_reset_at: float | None = None
    #: absent: the pool keeps its reset
    reset_at: float | UnsetType | None = UNSET
    remaining_before: float | None = None
    remaining_after: float | None = None


class DriftDetectedPayload(Payload, frozen=True, kw_only=True, gc=False):
    resource: str
    principal: str
    expected: float
    observed: float
    difference: float
    threshold: float
    origin: str = "poll"


class UsageObservedPayload(Payload, frozen=True, kw_only=True, gc=False):
    resource: str
    principal: str
    remaining: float
    used: float | None = None
    limit: float | None = None
    reset_at: float | None = None
    #: spent behind ratelord's back since the last observation
    unaccounted: float = 0.0
    origin: str = "poll"
    #: a response's headers: what its own call spent of the pool (it is in them, even if
    #: approved or due at this very instant)
    own_call: float | UnsetType = UNSET


class PostureChangedPayload(Payload, frozen=True, kw_only=True, gc=False):
    from_: str = msgspec.field(default="OK", name="from")
    to: str
    p_exhaustion: float | None = None
    remaining: float | None = None


class ThrottleAdvisedPayload(Payload, frozen=True, kw_only=True, gc=False):
    posture: str
    max_rate_per_second: float
    burn_rate: float


class IntentSubmittedPayload(Payload, frozen=True, kw_only=True, gc=False):
    intent_id: str
    urgency: str = "normal"
    resource: str | None = None
    cost: float | None = None
    costs: dict[str, float] | UnsetType = UNSET
    labels: dict[str, str] = {}


class PolicyTriggeredPayload(Payload, frozen=True, kw_only=True, gc=False):
    intent_id: str
    policy_id: str
    rule: str
    kind: str
    action: str
    priority: int
    reason: str
    policy_version: str | None = None


class DecidedModifications(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The modifications as ``intent_decided`` logs them (always all three keys)."""

    wait_seconds: float | None = None
    defer_until: str | None = None
    identity_switch: str | None = None


class IntentDecidedPayload(Payload, frozen=True, kw_only=True, gc=False):
    intent_id: str
    decision: DecisionKind
    modifications: DecidedModifications = DecidedModifications()
    reason: str | None = None
    rules_fired: list[str] = []
    tightest_pool: str | None = None
    p_exhaustion: float | None = None
    #: pool id → cost reserved (empty: nothing was)
    charges: dict[str, float] = {}
    urgency: str = "normal"
    paced: bool = False
    #: pool id → the pacing cursor once booked (only when the allocation paced it)
    pacing: dict[str, float] | UnsetType = UNSET
    policy_errors: list[str] | UnsetType = UNSET
    #: pools not observed yet this call is the first on
    probes: list[str] | UnsetType = UNSET
    #: money budget ledger key → the estimate reserved
    money: dict[str, float] | UnsetType = UNSET


class ShadowedRule(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    policy_id: str
    rule: str
    action: str
    reason: str
    pool_id: str


class PolicyShadowedPayload(Payload, frozen=True, kw_only=True, gc=False):
    intent_id: str
    decision: str
    would_decide: str
    changes_answer: bool
    rules: list[ShadowedRule] = []
    policy_version: str | None = None


class IntentsDecidedPayload(Payload, frozen=True, kw_only=True, gc=False):
    """Identical intents of a batch, approved as one."""

    intent_ids: list[str]
    decision: str
    charges: dict[str, float]
    urgency: str = "normal"
    resource: str | None = None
    tightest_pool: str | None = None
    p_exhaustion: float | None = None


class UsageReportedPayload(Payload, frozen=True, kw_only=True, gc=False):
    intent_id: str | None = None
    cost: float | None = None
    resource: str | None = None
    costs: dict[str, float] | UnsetType = UNSET
    #: pool id → what to debit (or credit back) so local state matches the report
    corrections: dict[str, float] = {}
    #: ledger key → how much the call's real cost moves each money budget
    money: dict[str, float] | UnsetType = UNSET


class ApprovalRevokedPayload(Payload, frozen=True, kw_only=True, gc=False):
    intent_id: str
    reason: str = ""
    charges: dict[str, float] = {}


class SnapshotWrittenPayload(Payload, frozen=True, kw_only=True, gc=False):
    seq: int
    bytes: int


class LeaseDecidedPayload(Payload, frozen=True, kw_only=True, gc=False):
    lease_id: str
    status: str
    #: its one pool (None: a lease over several pools, or none)
    pool_id: str | None = None
    #: pool id → units of it each lease unit holds (absent: logged before workload
    #: leases, one unit of ``pool_id``; see :meth:`pool_shares`)
    pools: dict[str, float] | UnsetType = UNSET
    requested: float
    granted: float
    urgency: str
    weight: float
    rate: float | None = None
    expires_at: float
    reason: str | None = None
    defer_until: str | None = None
    identity_switch: str | None = None
    #: pool id → until when it is paced (absent: logged before workload leases)
    paced: dict[str, float] | UnsetType = UNSET
    #: logged before workload leases: until when its one pool is paced
    paced_until: float | UnsetType | None = UNSET
    rules_fired: list[str] = []
    p_exhaustion: float | None = None

    def pool_shares(self) -> dict[str, float]:
        """Its pools (units of each per lease unit); an older lease held one unit of one pool."""
        if self.pools:
            return {pool_id: float(per) for pool_id, per in self.pools.items()}
        return {self.pool_id: 1.0} if self.pool_id else {}

    def paced_pools(self) -> dict[str, float]:
        """Pool id → until when the lease paces it."""
        if self.paced:
            return self.paced
        shares = self.pool_shares()
        if isinstance(self.paced_until, float | int) and shares:  # before workload leases
            return {next(iter(shares)): float(self.paced_until)}
        return {}


class LeaseReportedPayload(Payload, frozen=True, kw_only=True, gc=False):
    lease_id: str
    spent: float = 0.0
    rate: float | None = None


class LeaseRevisedPayload(Payload, frozen=True, kw_only=True, gc=False):
    lease_id: str
    granted: float
    from_: float | None = msgspec.field(default=None, name="from")
    revoked: bool = False
    reason: str = ""


class LeaseEndedPayload(Payload, frozen=True, kw_only=True, gc=False):
    lease_id: str
    status: str
    returned: float = 0.0
    spent: float = 0.0
    reason: str = ""


# ---------------------------------------------------------------------- typed events


class SystemStarted(Event, frozen=True, kw_only=True):
    event_type: Literal["system_started"] = "system_started"
    payload: SystemStartedPayload


class SystemStopped(Event, frozen=True, kw_only=True):
    event_type: Literal["system_stopped"] = "system_stopped"
    payload: SystemStoppedPayload


class PolicyUpdated(Event, frozen=True, kw_only=True):
    event_type: Literal["policy_updated"] = "policy_updated"
    payload: PolicyUpdatedPayload


class PolicyRejected(Event, frozen=True, kw_only=True):
    event_type: Literal["policy_rejected"] = "policy_rejected"
    payload: PolicyRejectedPayload


class IdentityRegistered(Event, frozen=True, kw_only=True):
    event_type: Literal["identity_registered"] = "identity_registered"
    payload: IdentityRegisteredPayload


class IdentityRotated(Event, frozen=True, kw_only=True):
    event_type: Literal["identity_rotated"] = "identity_rotated"
    payload: IdentityRotatedPayload


class IdentityRevoked(Event, frozen=True, kw_only=True):
    event_type: Literal["identity_revoked"] = "identity_revoked"
    payload: IdentityRevokedPayload


class IdentityQuarantined(Event, frozen=True, kw_only=True):
    event_type: Literal["identity_quarantined"] = "identity_quarantined"
    payload: IdentityQuarantinedPayload


class PrincipalDiscovered(Event, frozen=True, kw_only=True):
    event_type: Literal["principal_discovered"] = "principal_discovered"
    payload: PrincipalDiscoveredPayload


class ProviderPollObserved(Event, frozen=True, kw_only=True):
    event_type: Literal["provider_poll_observed"] = "provider_poll_observed"
    payload: ProviderPollObservedPayload


class ProviderError(Event, frozen=True, kw_only=True):
    event_type: Literal["provider_error"] = "provider_error"
    payload: ProviderErrorPayload


class ConstraintObserved(Event, frozen=True, kw_only=True):
    event_type: Literal["constraint_observed"] = "constraint_observed"
    payload: ConstraintObservedPayload


class UsageObserved(Event, frozen=True, kw_only=True):
    event_type: Literal["usage_observed"] = "usage_observed"
    payload: UsageObservedPayload


class ResetObserved(Event, frozen=True, kw_only=True):
    event_type: Literal["reset_observed"] = "reset_observed"
    payload: ResetObservedPayload


class DriftDetected(Event, frozen=True, kw_only=True):
    event_type: Literal["drift_detected"] = "drift_detected"
    payload: DriftDetectedPayload


class ForecastComputed(Event, frozen=True, kw_only=True):
    event_type: Literal["forecast_computed"] = "forecast_computed"
    payload: ForecastSnapshot


class PostureChanged(Event, frozen=True, kw_only=True):
    event_type: Literal["posture_changed"] = "posture_changed"
    payload: PostureChangedPayload


class ThrottleAdvised(Event, frozen=True, kw_only=True):
    event_type: Literal["throttle_advised"] = "throttle_advised"
    payload: ThrottleAdvisedPayload


class IntentSubmitted(Event, frozen=True, kw_only=True):
    event_type: Literal["intent_submitted"] = "intent_submitted"
    payload: IntentSubmittedPayload


class PolicyTriggered(Event, frozen=True, kw_only=True):
    event_type: Literal["policy_triggered"] = "policy_triggered"
    payload: PolicyTriggeredPayload


class IntentDecided(Event, frozen=True, kw_only=True):
    event_type: Literal["intent_decided"] = "intent_decided"
    payload: IntentDecidedPayload


class PolicyShadowed(Event, frozen=True, kw_only=True):
    event_type: Literal["policy_shadowed"] = "policy_shadowed"
    payload: PolicyShadowedPayload


class IntentsDecided(Event, frozen=True, kw_only=True):
    event_type: Literal["intents_decided"] = "intents_decided"
    payload: IntentsDecidedPayload


class UsageReported(Event, frozen=True, kw_only=True):
    event_type: Literal["usage_reported"] = "usage_reported"
    payload: UsageReportedPayload


class ApprovalRevoked(Event, frozen=True, kw_only=True):
    event_type: Literal["approval_revoked"] = "approval_revoked"
    payload: ApprovalRevokedPayload


class SnapshotWritten(Event, frozen=True, kw_only=True):
    event_type: Literal["snapshot_written"] = "snapshot_written"
    payload: SnapshotWrittenPayload


class LeaseDecided(Event, frozen=True, kw_only=True):
    event_type: Literal["lease_decided"] = "lease_decided"
    payload: LeaseDecidedPayload


class LeaseReported(Event, frozen=True, kw_only=True):
    event_type: Literal["lease_reported"] = "lease_reported"
    payload: LeaseReportedPayload


class LeaseRevised(Event, frozen=True, kw_only=True):
    event_type: Literal["lease_revised"] = "lease_revised"
    payload: LeaseRevisedPayload


class LeaseEnded(Event, frozen=True, kw_only=True):
    event_type: Literal["lease_ended"] = "lease_ended"
    payload: LeaseEndedPayload


def event_type_of(cls: type[Event]) -> str:
    """The ``event_type`` a typed event class is built with (its field's default)."""
    fields, defaults = cls.__struct_fields__, cls.__struct_defaults__
    return str(defaults[fields.index("event_type") - (len(fields) - len(defaults))])


def _payload_type(cls: type[Event]) -> type[Any]:
    # The annotation's name, looked up here: resolving every class's type hints
    # (msgspec.structs.fields) would cost the CLI a quarter of a second at import.
    return globals()[cls.__annotations__["payload"]]  # type: ignore[no-any-return]


#: event type → its class (every type the engine produces).
EVENT_CLASSES: dict[str, type[Event]] = {event_type_of(c): c for c in Event.__subclasses__()}
#: event type → its payload's type.
PAYLOAD_TYPES: dict[str, type[Any]] = {t: _payload_type(c) for t, c in EVENT_CLASSES.items()}
_decode_unknown = msgspec.json.Decoder(dict[str, Any]).decode
#: event type → (class, payload decoder), made on first use.
_TYPED: dict[str, tuple[type[Event], Callable[[bytes | str], Any]]] = {}


def typed(event_type: str) -> tuple[type[Event], Callable[[bytes | str], Any]]:
    """The class of ``event_type`` and the decoder of its stored payload.

    A type this version does not know decodes as a bare :class:`Event` with a
    dict payload (an older daemon reading a newer log; replay skips it).
    """
    found = _TYPED.get(event_type)
    if found is None:
        cls = EVENT_CLASSES.get(event_type)
        if cls is None:
            return Event, _decode_unknown
        found = _TYPED[event_type] = (cls, msgspec.json.Decoder(PAYLOAD_TYPES[event_type]).decode)
    return found


class _Head(msgspec.Struct):
    event_type: str


_decode_head = msgspec.json.Decoder(_Head).decode
_decode_bare = msgspec.json.Decoder(Event).decode
_EVENT_DECODERS: dict[str, Callable[[bytes | str], Event]] = {}


def decode_event(data: bytes | str) -> Event:
    """A whole event's JSON (the log's envelope, as ``/v1/events`` shows it) → its typed class.

    Fields the envelope does not have (``occurred_at``) are ignored.
    """
    event_type = _decode_head(data).event_type
    decode = _EVENT_DECODERS.get(event_type)
    if decode is None:
        cls = EVENT_CLASSES.get(event_type)
        if cls is None:
            return _decode_bare(data)
        decode = _EVENT_DECODERS[event_type] = msgspec.json.Decoder(cls).decode
    return decode(data)


def event_from(obj: Mapping[str, Any]) -> Event:
    """An event already parsed from JSON (a dict from ``/v1/events``) → its typed class.

    Raises :class:`msgspec.ValidationError` when it does not have its type's shape.
    """
    return msgspec.convert(obj, EVENT_CLASSES.get(str(obj.get("event_type")), Event))


def event_class_of(payload: Payload | ForecastSnapshot) -> type[Event]:
    """The event class whose payload ``payload`` is (what ``Engine.emit`` builds)."""
    return _CLASS_OF_PAYLOAD[type(payload)]


#: payload type → event class (each payload type belongs to one event type).
_CLASS_OF_PAYLOAD: dict[type[Any], type[Event]] = {
    p: EVENT_CLASSES[t] for t, p in PAYLOAD_TYPES.items()
}
assert len(_CLASS_OF_PAYLOAD) == len(EVENT_CLASSES), "a payload type shared by two events"


#: Each byte's two hex digits.
_HEX_BYTE = [f"{byte:02x}" for byte in range(256)]


class IdFactory:
    """Makes unique, roughly time-ordered ids without reading the clock.

    A per-process random prefix plus a counter: unique across restarts of the
    daemon (new prefix) and cheap (no uuid4 syscall per event).  Tests and
    the simulator pass a fixed ``prefix`` for reproducible ids.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self._prefix = prefix if prefix is not None else os.urandom(6).hex()
        self._counter = itertools.count(1)
        #: The counter's hex digits but the last two, formatted once per 256 ids.
        self._high = -1
        self._high_text = ""

    def new(self, kind: str = "ev") -> str:
        """``f"{kind}_{prefix}{n:08x}"``, without formatting a number per id (three per
        intent): the last byte's digits come from a table.  The hot path calls ``new``
        by name: calling the factory itself goes through a slot lookup (~600
        instructions more)."""
        n = next(self._counter)
        high = n >> 8
        if high != self._high:
            self._high, self._high_text = high, f"{high:06x}"
        return f"{kind}_{self._prefix}{self._high_text}{_HEX_BYTE[n & 255]}"

    __call__ = new

    def many(self, kind: str, n: int) -> list[str]:
        """``n`` ids, as ``n`` calls would make them (a batch's group of intents)."""
        head = f"{kind}_{self._prefix}"
        return [f"{head}{i:08x}" for i in itertools.islice(self._counter, n)]
