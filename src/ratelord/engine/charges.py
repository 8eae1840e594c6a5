"""What one intent charges: pools and per-call costs, from its fields and the workloads.

The rule (documented in the README and ``docs/policy.md``):

1. ``costs: {resource: amount, …}`` charges exactly those resources, each its
   amount — one ask for a request, its tokens and its money at once.  With a
   configured ``workload_id`` the workload's resources are charged too, and an
   entry of ``costs`` replaces the workload's amount for the same resource.
2. ``resource`` (+ ``cost``, default: the workload's amount for that resource,
   else 1) charges that one resource.
3. A configured workload alone charges its resources; ``cost`` then counts
   **units of the workload** and multiplies every amount:
   ``search_and_hydrate: {search: 1, core: 10}`` with ``cost: 3`` charges
   ``{search: 3, core: 30}``.
4. Neither: the identity's only pool (or ``core``) at ``cost`` (default 1).

Refused with 400 (:func:`validate_intent`), before anything is logged:
``costs`` with ``resource`` or ``cost`` (ambiguous), and a ``workload_id``
that is not configured when the intent names no resource either (it would
otherwise be charged as something it is not).  A ``workload_id`` with
``resource`` or ``costs`` may be any label: it is only a dimension then.
"""

from __future__ import annotations

from collections.abc import Mapping

from ratelord.engine.diagnosis import describe
from ratelord.engine.state import IdentityRecord, State, pool_id_for
from ratelord.schema import SENTINEL_UNKNOWN, IntentRequest

__all__ = ["ChargeError", "NotChargeable", "resolve_charges", "validate_intent"]

Workloads = Mapping[str, Mapping[str, float]]


class ChargeError(ValueError):
    """An intent whose charges cannot be decided; the message says what to send instead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotChargeable(Exception):
    """A well-formed intent that cannot be charged on this identity now (a denial's reason)."""


def validate_intent(workloads: Workloads, request: IntentRequest) -> None:
    """Raise :class:`ChargeError` for an intent whose charges would be a guess."""
    if request.costs:
        if request.resource is not None or request.cost is not None:
            raise ChargeError(
                "ambiguous_cost",
                "send either 'costs' (resource → amount) or 'resource' with 'cost', not both",
            )
        return
    if (
        request.resource is None
        and request.workload_id != SENTINEL_UNKNOWN
        and request.workload_id not in workloads
    ):
        known = ", ".join(sorted(workloads)) or "none are configured"
        raise ChargeError(
            "unknown_workload",
            f"unknown workload {request.workload_id!r} (known: {known}); add it under "
            "'workloads:' in the config, or name what it spends with 'resource' or 'costs'",
        )


def resolve_charges(
    workloads: Workloads, state: State, record: IdentityRecord, request: IntentRequest
) -> dict[str, float]:
    """pool id → cost of ``request`` on ``record``'s pools; :class:`NotChargeable` says why not."""
    principal = record.principal
    if principal is None:
        if record.poll_error_kind is not None:  # waiting will not help: say what will
            raise NotChargeable(
                f"identity {record.identity_id!r} has no known principal: {describe(record)}"
            )
        raise NotChargeable(
            f"identity {record.identity_id!r} has no known principal yet "
            "(the provider has not been polled); retry in a few seconds"
        )

    def pool(resource: str) -> str:
        return pool_id_for(record.provider_id, resource, principal)

    workload = workloads.get(request.workload_id)
    if request.costs:
        merged = {**(workload or {}), **request.costs}
        return {pool(resource): cost for resource, cost in merged.items()}
    if request.resource is not None:
        default = workload.get(request.resource, 1.0) if workload else 1.0
        return {pool(request.resource): request.cost if request.cost is not None else default}
    if workload:
        units = request.cost if request.cost is not None else 1.0
        return {pool(resource): cost * units for resource, cost in workload.items()}
    cost = request.cost if request.cost is not None else 1.0
    pools = state.pools_of(record.provider_id, principal)
    if len(pools) == 1:
        return {pools[0].pool_id: cost}
    if pool("core") in state.pools:
        return {pool("core"): cost}
    raise NotChargeable(
        "the intent names no resource and its identity has several pools: "
        "send 'resource' (or 'costs'), or a workload configured under 'workloads:'"
    )
