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

import msgspec

from ratelord.engine.arbitration import Decided, _Arbiter, decide
from ratelord.engine.charges import ChargeError, NotChargeable, validate_intent
from ratelord.engine.core import Engine, EngineError
from ratelord.engine.events import Dimensions, EventType, Source
from ratelord.schema import Decision, IntentRequest

#: A run shorter than this is decided intent by intent.
MIN_GROUP = 2


def decide_batch(engine: Engine, requests: Sequence[IntentRequest], now: float) -> list[Decided]:
    """One :class:`Decided` per intent, in order (a group's events ride on its first)."""
    for index, request in enumerate(requests):
        try:
            validate_intent(engine.config.workloads, request)
        except ChargeError as exc:
            raise EngineError(exc.code, f"intent {index}: {exc.message}") from None
    made: list[Decided] = []
    start = 0
    while start < len(requests):
        end = start + 1
        while end < len(requests) and requests[end] == requests[start]:
            end += 1
        grouped = _group(engine, requests[start], end - start, now)
        if grouped is None:
            end = start + 1
            made.append(decide(engine, requests[start], now))
        else:
            made += grouped
        start = end
    return made


def _group(engine: Engine, request: IntentRequest, count: int, now: float) -> list[Decided] | None:
    """``count`` identical intents approved as one, or None (decide them one by one)."""
    if count < MIN_GROUP or request.costs or engine.config.budgets:
        return None  # several resources, or money budgets: each intent on its own
    record = engine.state.identities.get(request.identity_id)
    if record is None or record.status != "active":
        return None
    try:
        charges = _Arbiter(engine, request, now, "")._charges(record)
    except NotChargeable:
        return None
    if len(charges) != 1:
        return None
    ((pool_id, cost),) = charges.items()
    pool = engine.state.pools.get(pool_id)
    if pool is None:
        return None
    total = msgspec.structs.replace(request, cost=cost * count, resource=pool.resource)
    decision, fired, _, _ = _Arbiter(engine, total, now, "").run()
    if decision.decision != "approve" or fired:
        return None
    ids = [engine.ids("int") for _ in range(count)]
    evaluation = decision.evaluation
    event = engine.emit(
        EventType.INTENTS_DECIDED,
        now,
        {
            "intent_ids": ids,
            "decision": "approve",
            "charges": {pool_id: cost},
            "urgency": request.urgency,
            "resource": request.resource,
            "tightest_pool": evaluation.tightest_pool if evaluation else None,
            "p_exhaustion": evaluation.p_exhaustion if evaluation else None,
        },
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
    return [
        Decided(
            Decision(intent_id=intent_id, decision="approve", evaluation=evaluation),
            events if index == 0 else [],
            {pool_id: cost},
            [],
        )
        for index, intent_id in enumerate(ids)
    ]
