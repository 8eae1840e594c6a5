"""Wire models of the public HTTP API, shared by the daemon and the SDK.

One definition serves both sides: the daemon decodes requests into these
structs and encodes responses from them; :mod:`ratelord.client` decodes the
same structs.  They are :mod:`msgspec` structs because the daemon's hot path
(``POST /v1/intent``) decodes and encodes one of each per request.

Times on the wire are RFC 3339 strings in UTC (``2026-01-01T12:00:00Z``);
durations are float seconds.  An infinite time-to-exhaustion is ``null``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "SENTINEL_GLOBAL",
    "SENTINEL_SYSTEM",
    "SENTINEL_UNKNOWN",
    "ClusterHealth",
    "Consumer",
    "Decision",
    "DecisionKind",
    "DecisionList",
    "ErrorBody",
    "ErrorDetail",
    "Evaluation",
    "EventPage",
    "Explanation",
    "Forecast",
    "ForecastList",
    "Graph",
    "GraphPrincipal",
    "Health",
    "HistoryPoint",
    "Identity",
    "IdentityCreate",
    "IdentityList",
    "IdentityRotate",
    "IntentBatch",
    "IntentRequest",
    "Lease",
    "LeaseList",
    "LeaseReport",
    "LeaseRequest",
    "MockFailureInjected",
    "MockSpent",
    "Modifications",
    "MoneyBudget",
    "MoneyBudgetList",
    "PolicyReloaded",
    "PolicyView",
    "Pool",
    "PoolAllocation",
    "PoolDetail",
    "PoolForecast",
    "PoolList",
    "PoolRisk",
    "Posture",
    "SnapshotWritten",
    "Stats",
    "StoreStats",
    "Tokens",
    "TopConsumers",
    "Urgency",
    "UsageAccepted",
    "UsageReport",
]

SENTINEL_SYSTEM = "sentinel:system"
SENTINEL_GLOBAL = "sentinel:global"
SENTINEL_UNKNOWN = "sentinel:unknown"
#: The placeholders for "not given", in the words a person reads (CLI, TUI; the web UI's
#: ``format.js`` keeps the same three).
_SENTINEL_WORDS = {SENTINEL_GLOBAL: "global", SENTINEL_UNKNOWN: "-", SENTINEL_SYSTEM: "ratelord"}


def display_id(value: str | None) -> str:
    """An id as shown to people: the internal ``sentinel:…`` placeholders become words."""
    if value is None:
        return "-"
    return _SENTINEL_WORDS.get(value, value)


Urgency = Literal["background", "low", "normal", "high"]
DecisionKind = Literal["approve", "approve_with_modifications", "deny_with_reason"]
Posture = Literal["OK", "WARN", "CRIT"]
IdentityStatus = Literal["active", "revoked", "quarantined"]

#: An identifier as accepted from clients: printable ASCII, no spaces, bounded.  The
#: lookahead keeps Python's ``$`` (which also matches before a final newline) as strict as
#: JSON Schema's.
Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[!-~]+$(?!\n)")]
Label = Annotated[str, msgspec.Meta(max_length=200)]
Cost = Annotated[float, msgspec.Meta(ge=0, le=1e12)]
#: resource → amount of one call: a request, its tokens, its money.
Costs = Annotated[dict[Ident, Cost], msgspec.Meta(max_length=32)]
#: ``env:NAME`` or ``file:/absolute/path`` without control characters (the lookahead keeps
#: Python's ``$`` as strict as JSON Schema's).
SECRET_REF_PATTERN = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/[^\x00-\x1f]+)$(?!\n)"  # noqa: S105 - a pattern, not a secret
#: Published as the schema's pattern; checked by the daemon (``invalid_secret_ref``, which says
#: what to write) with the same pattern.
SecretRef = Annotated[
    str, msgspec.Meta(max_length=1000, extra_json_schema={"pattern": SECRET_REF_PATTERN})
]
HeaderName = Annotated[str, msgspec.Meta(max_length=200)]
HeaderValue = Annotated[str, msgspec.Meta(max_length=4000)]


class _Wire(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    """Base of request structs: unknown fields are an error, not silently dropped."""


class _Out(msgspec.Struct, omit_defaults=False):
    """Base of response structs: clients tolerate fields added later."""


# --------------------------------------------------------------------------- intents

TokenCount = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]


class Tokens(_Wire, kw_only=True):
    """An LLM call's tokens: on an intent, its estimate; on a usage report, what it spent.

    Money budgets price them with the daemon's price table (``input`` counts all
    prompt tokens, ``cached_input`` the part served from a cache).
    """

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    input: TokenCount = 0
    output: TokenCount = 0
    cached_input: TokenCount = 0


class IntentRequest(_Wire, kw_only=True):
    """An agent asks before it spends.

    What it charges (``ratelord.engine.charges`` has the whole rule):
    ``costs`` charges several resources at once (``{"requests": 1,
    "tokens": 130}``, added to a configured workload's); ``resource`` with
    ``cost`` charges one; a configured ``workload_id`` alone charges its
    resources, ``cost`` times (``cost`` counts units of the workload).
    ``tokens`` (an LLM call's model and estimate) is what money budgets price.
    """

    agent_id: Ident
    identity_id: Ident
    workload_id: Ident = SENTINEL_UNKNOWN
    scope_id: Ident = SENTINEL_GLOBAL
    urgency: Urgency = "normal"
    resource: Ident | None = None
    cost: Cost | None = None
    costs: Costs = {}
    labels: dict[Label, Label] = {}
    tokens: Tokens | None = None


class Modifications(_Out, kw_only=True):
    wait_seconds: float = 0.0
    defer_until: str | None = None
    identity_switch: str | None = None


class PoolRisk(_Out, kw_only=True):
    """Risk of one pool the intent touches, as the policy saw it."""

    pool_id: str
    cost: float
    remaining: float | None  # None: the pool has not been observed yet
    limit: float | None
    p_exhaustion: float
    p_exhaustion_with_intent: float
    tte_p99_seconds: float | None
    seconds_to_reset: float | None
    posture: Posture


class PoolAllocation(_Out, kw_only=True):
    """How the engine shared out one pool for the intent (see ``engine/allocation.py``).

    ``remaining`` (reset-aware) = ``headroom`` kept for consumption ratelord cannot
    see + ``reserve`` kept for urgent work + ``budget``, spread at ``rate_per_second``
    over ``horizon_seconds``; the intent's slot is ``wait_seconds`` away.
    """

    pool_id: str
    remaining: float
    headroom: float
    reserve: float
    budget: float
    horizon_seconds: float | None  # None: no reset known
    rate_per_second: float | None
    wait_seconds: float
    fits: bool


class Evaluation(_Out, kw_only=True):
    as_of: str
    policy_version: str
    tightest_pool: str | None = None
    p_exhaustion: float | None = None
    tte_p99_seconds: float | None = None
    rules_fired: list[str] = []
    risk_summary: str = ""
    pools: list[PoolRisk] = []
    #: Headroom, reserve and pace of each pool the intent draws on (non-urgent intents).
    allocation: list[PoolAllocation] = []


class Decision(_Out, kw_only=True):
    intent_id: str
    decision: DecisionKind
    modifications: Modifications = msgspec.field(default_factory=Modifications)
    reason: str | None = None
    evaluation: Evaluation | None = None
    #: An approval told to wait holds until then; past it, or when the daemon revokes it
    #: (``approval_revoked`` on the event stream), ask again before spending.
    valid_until: str | None = None

    @property
    def allowed(self) -> bool:
        return self.decision != "deny_with_reason"


class ApprovalCheck(_Out, kw_only=True):
    """``POST /v1/intents/{intent_id}/check``: may an approval that waited still be spent?

    ``holds`` false: the daemon revoked it (``approval_revoked`` on the event
    stream) and gave its reservation back; ask again instead of spending.
    """

    intent_id: str
    holds: bool
    reason: str | None = None


# --------------------------------------------------------------------------- usage


class UsageReport(_Wire, kw_only=True):
    """What an agent actually spent, or the provider's rate-limit headers it saw.

    With ``intent_id`` the report corrects that intent's reservation by the
    difference between ``cost`` and what was reserved; ``costs`` (resource →
    what was really spent) corrects each named pool the same way.  ``headers``
    are the raw response headers; the daemon parses the rate-limit ones
    (GitHub, OpenAI, Anthropic, IETF) into observations of the identity's
    pools, per ``model`` for LLM providers (the model the request named).
    """

    agent_id: Ident = SENTINEL_UNKNOWN
    identity_id: Ident
    workload_id: Ident = SENTINEL_UNKNOWN
    scope_id: Ident = SENTINEL_GLOBAL
    intent_id: Ident | None = None
    resource: Ident | None = None
    cost: Cost | None = None
    costs: Costs = {}
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    tokens: Tokens | None = None
    headers: dict[HeaderName, HeaderValue] | None = None
    path: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    status_code: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None


class UsageAccepted(_Out, kw_only=True):
    accepted: bool = True
    events: int = 0
    pools: list[str] = []


# --------------------------------------------------------------------------- identities


class IdentityCreate(_Wire, kw_only=True):
    identity_id: Ident
    provider_id: Ident
    principal: Ident | None = None
    kind: Ident = "token"
    scope_id: Ident = SENTINEL_GLOBAL
    labels: dict[Label, Label] = {}
    secret_ref: SecretRef | None = None


class IdentityRotate(_Wire, kw_only=True):
    secret_ref: SecretRef | None = None
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class Identity(_Out, kw_only=True):
    identity_id: str
    kind: str
    provider_id: str
    principal: str | None
    scope_id: str
    labels: dict[str, str]
    status: IdentityStatus
    secret_ref: str | None = None
    token_fingerprint: str | None = None
    pools: list[str] = []
    registered_at: str
    status_reason: str | None = None


# --------------------------------------------------------------------------- pools


class Forecast(_Out, kw_only=True):
    tte_p50_seconds: float | None
    tte_p90_seconds: float | None
    tte_p99_seconds: float | None
    p_exhaustion: float
    margin_seconds: float | None
    burn_rate: float
    burn_stddev: float
    seconds_to_reset: float | None
    as_of: str
    cold_start: bool = False
    model: str = "ema-normal/1"


class Pool(_Out, kw_only=True):
    pool_id: str
    provider_id: str
    resource: str
    principal: str
    unit: str
    limit: float | None
    remaining: float | None
    used: float | None
    reset_at: str | None
    window: Literal["fixed", "rolling", "refill", "unknown"]
    window_seconds: float | None
    members: list[str]
    status: Posture
    forecast: Forecast | None
    stale_seconds: float | None
    drift_count: int = 0


class MoneyBudget(_Out, kw_only=True):
    """A money budget in its current period (``GET /v1/budgets``).

    ``spent`` is committed money: reported calls at their real cost, calls not
    reported yet at their estimate (``unsettled``); ``forecast_end`` is the
    period's run rate carried to ``period_end``.
    """

    budget_id: str
    period: Literal["day", "month"]
    limit: float
    spent: float
    unsettled: float
    remaining: float
    forecast_end: float
    period_end: str
    seconds_to_end: float
    calls: int
    currency: str
    agent: str | None = None
    workload: str | None = None
    identity: str | None = None
    labels: dict[str, str] = {}


class MoneyBudgetList(_Out, kw_only=True):
    budgets: list[MoneyBudget]


class IdentityList(_Out, kw_only=True):
    identities: list[Identity]


class PoolList(_Out, kw_only=True):
    pools: list[Pool]


# --------------------------------------------------------------------------- system


class ClusterHealth(_Out, kw_only=True):
    """This daemon's place in a cluster (PostgreSQL store); absent on a single daemon."""

    role: Literal["leader", "follower", "candidate"]
    #: the address writes go to (None while no leader is known)
    leader: str | None
    epoch: int
    applied_seq: int
    #: events committed that this member had not applied when it last read the tail
    replication_lag_events: int
    #: seconds since a follower last read the tail: how stale its reads may be
    replication_lag_seconds: float


class Health(_Out, kw_only=True):
    status: Literal["ok", "degraded", "initializing", "stopping"]
    version: str
    uptime_seconds: float
    started_at: str
    high_water_seq: int
    reasons: list[str] = []
    policy_version: str | None = None
    cluster: ClusterHealth | None = None


class ErrorDetail(_Out, kw_only=True):
    code: str
    message: str
    request_id: str | None = None


class ErrorBody(_Out, kw_only=True):
    error: ErrorDetail


# --------------------------------------------------------------------------- batches and leases

#: Most intents one ``POST /v1/intents`` may carry.
MAX_BATCH = 1000
Units = Annotated[float, msgspec.Meta(gt=0, le=1e12)]
LeaseStatus = Literal["active", "released", "expired", "revoked", "refused"]


class IntentBatch(_Wire, kw_only=True):
    """Several intents decided in one request and logged in one commit, in order."""

    intents: Annotated[list[IntentRequest], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class DecisionList(_Out, kw_only=True):
    decisions: list[Decision]


class LeaseRequest(_Wire, kw_only=True):
    """Ask for up to ``units`` for ``ttl_seconds``, to spend without asking.

    With ``resource``: units of that pool of the identity.  With a configured
    ``workload_id`` and no ``resource``: units of the workload — one unit holds
    the workload's cost of each of its pools, all of them or none (``search: 1,
    core: 10`` and 5 units reserve 5 of search and 50 of core).  ``rate`` is the
    holder's recent spend in units per second: the daemon sizes leases by it
    when a pool is shared.
    """

    agent_id: Ident
    identity_id: Ident
    workload_id: Ident = SENTINEL_UNKNOWN
    scope_id: Ident = SENTINEL_GLOBAL
    urgency: Urgency = "normal"
    resource: Ident | None = None
    units: Units
    min_units: Annotated[float, msgspec.Meta(ge=0, le=1e12)] = 1.0
    ttl_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    rate: Annotated[float, msgspec.Meta(ge=0, le=1e12)] | None = None
    weight: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 1.0
    labels: dict[Label, Label] = {}


class LeaseReport(_Wire, kw_only=True):
    """Units spent from the lease since the last report, and the recent rate (units/s)."""

    spent: Annotated[float, msgspec.Meta(ge=0, le=1e12)] = 0.0
    rate: Annotated[float, msgspec.Meta(ge=0, le=1e12)] | None = None


class Lease(_Out, kw_only=True):
    """A lease as the daemon holds it; ``granted == 0`` and status ``refused``: none."""

    lease_id: str
    status: LeaseStatus
    holder: str
    identity_id: str
    workload_id: str = SENTINEL_UNKNOWN
    #: The lease's pool; None for a lease over a workload's pools (see ``pools``).
    pool_id: str | None
    #: What one unit of the lease holds of each pool (a workload's costs; one pool: 1).
    pools: dict[str, float] = {}
    urgency: Urgency
    requested: float
    granted: float
    spent: float
    #: ``granted - spent``: what the holder may still spend.
    available: float
    expires_at: str | None
    rate: float | None = None
    reason: str | None = None
    #: When refused: the reset after which to ask again, or another identity to use.
    defer_until: str | None = None
    identity_switch: str | None = None
    evaluation: Evaluation | None = None
    #: The log position of the lease's decision: a holder follows the event stream from
    #: here (``after_seq``) to miss no shrink or revocation of it.
    seq: int | None = None

    @property
    def holds(self) -> str:
        """What the lease holds, for display: its pool, or its workload's pools."""
        if self.pool_id is not None or not self.pools:
            return self.pool_id or "-"
        return f"workload {self.workload_id} ({len(self.pools)} pools)"


class LeaseList(_Out, kw_only=True):
    leases: list[Lease]


# --------------------------------------------------------------------------- read views
# What the daemon's read endpoints return; the CLI, the TUI and the SDK decode the same shapes.


class HistoryPoint(_Out, kw_only=True):
    ts: str
    remaining: float


class Consumer(_Out, kw_only=True):
    id: str
    used: float


class TopConsumers(_Out, kw_only=True):
    """The biggest spenders of a pool's current window (five of each at most)."""

    agents: list[Consumer] = []
    identities: list[Consumer] = []
    scopes: list[Consumer] = []


class PoolDetail(Pool, kw_only=True):
    """``GET /v1/pools/{id}``: the pool plus its recent history and top consumers."""

    history: list[HistoryPoint] = []
    top_consumers: TopConsumers = msgspec.field(default_factory=TopConsumers)
    #: the scope of the pool's members: one scope id, ``mixed``, or the global sentinel
    scope: str = SENTINEL_GLOBAL


class PoolForecast(Forecast, kw_only=True):
    pool_id: str
    status: Posture


class ForecastList(_Out, kw_only=True):
    """``GET /v1/forecasts``: the latest forecast of every pool that has one."""

    forecasts: list[PoolForecast]


class GraphPrincipal(_Out, kw_only=True):
    provider_id: str
    principal: str | None
    identities: list[str]
    pools: list[str]


class Graph(_Out, kw_only=True):
    """``GET /v1/graph``: principal → identities and pools, and the configured workloads."""

    principals: list[GraphPrincipal]
    workloads: dict[str, dict[str, Any]]


class Explanation(_Out, kw_only=True):
    """``GET /v1/graph/explain``: why two identities share a pool or not."""

    a: str
    b: str
    verdict: Literal["shared", "isolated", "unknown"]
    shared: bool
    shared_pools: list[str]
    explanation: str
    a_principal: str | None
    b_principal: str | None


class StoreStats(_Out, kw_only=True):
    commit_lag_ms: float = 0.0
    queue_depth: int = 0
    high_water_seq: int = 0
    commits: int = 0


class Stats(_Out, kw_only=True):
    """``GET /v1/stats``: decision counters and store vitals."""

    intents_total: int = 0
    decisions: dict[str, int] = {}
    #: intents decided in each of the last minutes, oldest first
    intents_per_minute: list[int] = []
    denial_rate: float = 0.0
    rules_fired: dict[str, int] = {}
    store: StoreStats = msgspec.field(default_factory=StoreStats)


class EventPage(_Out, kw_only=True):
    """``GET /v1/events``: a page of the log and the seq to continue after."""

    events: list[dict[str, Any]]
    next_after_seq: int


class PolicyView(_Out, kw_only=True):
    version: str
    source: str
    policy: dict[str, Any]


class PolicyReloaded(_Out, kw_only=True):
    version: str
    source: str
    reloaded: bool


class SnapshotWritten(_Out, kw_only=True):
    snapshot_seq: int


class MockSpent(_Out, kw_only=True):
    principal: str
    resource: str
    remaining: float | None


class MockFailureInjected(_Out, kw_only=True):
    injected: int
    kind: str
