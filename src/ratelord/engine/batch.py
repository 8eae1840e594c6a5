"""A batch of intents (``POST /v1/intents``): decided in order, appended as one group.

Every intent is validated before anything is decided, so a malformed one
refuses the whole batch with nothing applied.  Then, in order:

* a run of **identical** neighbours (the same agent asking the same thing k
  times, as the SDK's coalescing produces) is decided as one: the arbiter
  evaluates the run's *total* cost; if that is approved outright, every intent
  of the run is approved and one ``intents_decided`` event records them all
  (their ids, and the charge of each).  Approving the total is at least as
  strict as approving each in turn, since each would see the pool before the
  next ones' charges;
* anything else — a lone intent, or a run whose total is not approved
  outright — is decided one by one, exactly as ``POST /v1/intent`` decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from ratelord.engine.arbitration import Decided, _Arbiter, decide
from ratelord.engine.charges import ChargeError, NotChargeable, validate_intent
from ratelord.engine.core import Engine, EngineError
from ratelord.engine.events import Dimensions, Event, IntentsDecidedPayload, Source
from ratelord.schema import Decision, IntentRequest, Modifications

#: A run shorter than this is decided intent by intent.
MIN_GROUP = 2


@dataclass(slots=True)
class BatchDecided:
    """What :func:`decide_batch` made of a batch."""

    #: one per intent, in order
    decisions: list[Decision] = field(default_factory=list)
    #: every event, in the order made (already applied to the projections), to be committed
    events: list[Event] = field(default_factory=list)
    #: one per lone intent and one per group (charged the group's total): what the command
    #: service passes on once the events are durable
    outcomes: list[Decided] = field(default_factory=list)


def decide_batch(engine: Engine, requests: Sequence[IntentRequest], now: float) -> BatchDecided:
    """Decide every intent of a batch in order (see the module's docstring)."""
    for index, request in enumerate(requests):
        try:
            validate_intent(engine.config.workloads, request)
        except ChargeError as exc:
            raise EngineError(exc.code, f"intent {index}: {exc.message}") from None
    made = BatchDecided()
    start = 0
    while start < len(requests):
        end = start + 1
        while end < len(requests) and requests[end] == requests[start]:
            end += 1
        if not _group(engine, requests[start], end - start, now, made):
            end = start + 1
            decided = decide(engine, requests[start], now)
            made.decisions.append(decided.decision)
            made.events += decided.events
            made.outcomes.append(decided)
        start = end
    return made


def _group(
    engine: Engine, request: IntentRequest, count: int, now: float, made: BatchDecided
) -> bool:
    """Approve ``count`` identical intents as one into ``made``; False: decide them one by one."""
    if count < MIN_GROUP or request.costs or engine.config.budgets:
        return False  # several resources, or money budgets: each intent on its own
    record = engine.state.identities.get(request.identity_id)
    if record is None or record.status != "active":
        return False
    try:
        charges = _Arbiter(engine, request, now, "")._charges(record)
    except NotChargeable:
        return False
    if len(charges) != 1:
        return False
    ((pool_id, cost),) = charges.items()
    pool = engine.state.pools.get(pool_id)
    if pool is None:
        return False
    total = msgspec.structs.replace(request, cost=cost * count, resource=pool.resource)
    ruling = _Arbiter(engine, total, now, "").run()
    if ruling.decision.decision != "approve" or ruling.fired:
        return False
    ids = engine.ids.many("int", count)
    evaluation = ruling.decision.evaluation
    event = engine.emit(
        IntentsDecidedPayload(
            intent_ids=ids,
            decision="approve",
            charges={pool_id: cost},
            urgency=request.urgency,
            resource=request.resource,
            tightest_pool=evaluation.tightest_pool if evaluation else None,
            p_exhaustion=evaluation.p_exhaustion if evaluation else None,
        ),
        now,
        dimensions=Dimensions(
            agent_id=request.agent_id,
            identity_id=request.identity_id,
            workload_id=request.workload_id,
            scope_id=request.scope_id,
        ),
        source=Source(origin_kind="client", origin_id=request.agent_id),
        pool_id=pool_id,
        correlation_id=ids[0],
    )
    events = [event, *engine.refresh_forecasts([pool_id], now, lazy=True)]
    none = Modifications()  # read-only: one for the whole group
    decisions = [
        Decision(intent_id=intent_id, decision="approve", modifications=none, evaluation=evaluation)
        for intent_id in ids
    ]
    made.decisions += decisions
    made.events += events
    made.outcomes.append(Decided(decisions[0], events, {pool_id: cost * count}, []))
    return True
