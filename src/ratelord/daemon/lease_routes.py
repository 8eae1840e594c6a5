"""HTTP endpoints of leases (``/v1/leases``) and batches of intents (``/v1/intents``)."""

from __future__ import annotations

import msgspec

from ratelord.asgi.http import HTTPError, Request, Response, Router, json_response
from ratelord.daemon.metrics import Metrics
from ratelord.schema import (
    DecisionList,
    IntentBatch,
    Lease,
    LeaseList,
    LeaseReport,
    LeaseRequest,
)
from ratelord.service.leasing import Leasing

_encode = msgspec.json.Encoder().encode


def _report_body(request: Request) -> LeaseReport:
    """An empty body is an empty report (release with nothing more spent)."""
    return request.decode(LeaseReport) if request.body.strip() else LeaseReport()


def install(router: Router, leasing: Leasing, metrics: Metrics) -> None:
    async def take(request: Request) -> Response:
        body = request.decode(LeaseRequest)
        if body.min_units > body.units:
            raise HTTPError(
                400,
                "conflicting_parameters",
                f"min_units ({body.min_units:g}) is more than units ({body.units:g})",
            )
        lease = await leasing.take(body)
        metrics.count_lease(lease)
        return Response(_encode(lease))

    async def report(request: Request) -> Response:
        lease = await leasing.report(request.params["lease_id"], _report_body(request))
        return Response(_encode(lease))

    async def release(request: Request) -> Response:
        lease = await leasing.release(request.params["lease_id"], _report_body(request))
        return Response(_encode(lease))

    async def show(request: Request) -> Response:
        return json_response(leasing.show(request.params["lease_id"]))

    async def listing(request: Request) -> Response:
        return json_response(leasing.live())

    async def intents(request: Request) -> Response:
        batch = request.decode(IntentBatch)
        decisions = await leasing.intents(batch)
        return Response(_encode(DecisionList(decisions=decisions)))

    add = router.add
    add(
        "POST",
        "/v1/intents",
        intents,
        "Decide a list of intents in one request and one commit (order kept)",
        request=IntentBatch,
        response=DecisionList,
        writes=True,
        scope="ask",
    )
    add(
        "POST",
        "/v1/leases",
        take,
        "Ask for a lease: up to N units of a pool, spent without asking, for T seconds",
        request=LeaseRequest,
        response=Lease,
        writes=True,
        scope="ask",
    )
    add(
        "GET", "/v1/leases", listing, "Live leases: holder, size, spent, expiry", response=LeaseList
    )
    add("GET", "/v1/leases/{lease_id}", show, "One live lease (410 once ended)", response=Lease)
    add(
        "POST",
        "/v1/leases/{lease_id}/report",
        report,
        "Report units spent from a lease since the last report, and the recent rate",
        request=LeaseReport,
        response=Lease,
        writes=True,
        scope="ask",
    )
    add(
        "POST",
        "/v1/leases/{lease_id}/release",
        release,
        "Give a lease back: its last spend is counted, unspent units return",
        request=LeaseReport,
        response=Lease,
        writes=True,
        scope="ask",
    )
