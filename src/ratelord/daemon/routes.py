"""The HTTP API of SPEC §8: one plain function per endpoint.

Each handler takes the :class:`Context` (runtime, metrics) and the request, so a
test can call one alone; :func:`install` binds them all to a router.  Bodies are
read one way, :meth:`Request.decode`, after the app's credential guard
(:mod:`ratelord.daemon.guard`) has scanned every write's body.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import msgspec

from ratelord.asgi.http import (
    HTTPError,
    Request,
    Response,
    Router,
    StreamingResponse,
    json_response,
)
from ratelord.daemon import archive_routes, lease_routes, views
from ratelord.daemon.events import EventQuery, event_page, event_stream
from ratelord.daemon.metrics import Metrics
from ratelord.daemon.openapi import openapi_document
from ratelord.daemon.runtime import Runtime
from ratelord.engine.clock import iso
from ratelord.providers.base import ErrorKind
from ratelord.providers.catalog import DISCOVERS_PRINCIPAL
from ratelord.providers.mock import MockProvider
from ratelord.providers.secrets import SecretError, check_private, validate_ref
from ratelord.schema import (
    ApprovalCheck,
    Cost,
    Decision,
    EventPage,
    Explanation,
    ForecastList,
    Graph,
    Health,
    Ident,
    Identity,
    IdentityCreate,
    IdentityList,
    IdentityRotate,
    IntentRequest,
    MockFailureInjected,
    MockSpent,
    MoneyBudgetList,
    PolicyReloaded,
    PolicyView,
    PoolDetail,
    PoolForecast,
    PoolList,
    SnapshotWritten,
    Stats,
    UsageAccepted,
    UsageReport,
)

MAX_INTENT_ID = 200
IDENTITY_ACTIONS = ("revoke", "quarantine", "rotate")
#: Headers a usage report must never carry (they hold the caller's credentials).
CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization", "x-api-key", "api-key")
_encode = msgspec.json.Encoder().encode


class ExternalUsage(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    principal: Ident
    resource: Ident
    amount: Cost


class InjectFailure(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    kind: ErrorKind = "server"
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    retry_after: Annotated[float, msgspec.Meta(ge=0, le=86400)] | None = None


@dataclass(slots=True)
class Context:
    """What the handlers work with."""

    runtime: Runtime
    metrics: Metrics
    openapi: bytes = b""


# -------------------------------------------------------------------- bodies


def check_secret_ref(ref: str | None) -> None:
    """A well-formed reference, to a file no one else may read (like an ssh key)."""
    if ref:
        try:
            validate_ref(ref)
        except SecretError as exc:
            raise HTTPError(400, "invalid_secret_ref", str(exc)) from None
        try:
            check_private(ref)
        except SecretError as exc:
            raise HTTPError(400, "insecure_secret_file", str(exc)) from None


# -------------------------------------------------------------------- system


async def health(ctx: Context, request: Request) -> Response:
    return json_response(ctx.runtime.health())


async def openapi(ctx: Context, request: Request) -> Response:
    return Response(ctx.openapi)


async def prometheus(ctx: Context, request: Request) -> Response:
    body, content_type = ctx.metrics.render()
    return Response(body, content_type=content_type)


# -------------------------------------------------------------------- agents


async def intent(ctx: Context, request: Request) -> Response:
    body = request.decode(IntentRequest)
    decision = await ctx.runtime.commands.intent(body)
    return Response(_encode(decision))


async def check_approval(ctx: Context, request: Request) -> Response:
    intent_id = request.params["intent_id"]
    if not 0 < len(intent_id) <= MAX_INTENT_ID:
        raise HTTPError(400, "invalid_request", f"intent_id must be 1-{MAX_INTENT_ID} characters")
    return Response(_encode(await ctx.runtime.commands.check_approval(intent_id)))


async def usage(ctx: Context, request: Request) -> Response:
    report = request.decode(UsageReport)
    if report.headers and any(k.lower() in CREDENTIAL_HEADERS for k in report.headers):
        raise HTTPError(
            400,
            "raw_credential",
            "refused: usage headers include credentials (authorization/cookie); "
            "send only the rate-limit response headers",
        )
    return json_response(await ctx.runtime.commands.usage(report))


# -------------------------------------------------------------------- identities


async def list_identities(ctx: Context, request: Request) -> Response:
    engine = ctx.runtime.engine
    return json_response(
        IdentityList(identities=[engine.identity_view(r) for r in engine.state.identities.values()])
    )


async def create_identity(ctx: Context, request: Request) -> Response:
    body = request.decode(IdentityCreate)
    check_secret_ref(body.secret_ref)
    if body.provider_id not in ctx.runtime.providers and body.provider_id not in (
        DISCOVERS_PRINCIPAL
    ):
        known = list(DISCOVERS_PRINCIPAL)
        raise HTTPError(
            400,
            "unknown_provider",
            f"unknown provider {body.provider_id!r}: configure it under "
            f"providers: or use {', '.join(known[:-1])} or {known[-1]}",
        )
    if body.principal is None and not DISCOVERS_PRINCIPAL.get(body.provider_id, False):
        raise HTTPError(
            400,
            "principal_required",
            f"provider {body.provider_id!r} cannot discover principals: "
            "pass principal (the account this identity is charged to)",
        )
    if body.principal is None and body.provider_id not in ctx.runtime.providers:
        # Only a poll discovers the principal, and nothing would poll it: every intent
        # would wait for a poll that never comes.
        raise HTTPError(
            409,
            "provider_not_configured",
            f"provider {body.provider_id!r} is not configured on this daemon, so nothing "
            f"would poll identity {body.identity_id!r} to learn its principal: add "
            f"providers.{body.provider_id} to the config file and restart ratelord-d, or "
            "pass principal (its pools are then learned from reported usage headers)",
        )
    return json_response(await ctx.runtime.commands.register(body), status=201)


async def show_identity(ctx: Context, request: Request) -> Response:
    engine = ctx.runtime.engine
    return json_response(engine.identity_view(engine.identity(request.params["identity_id"])))


async def identity_action(ctx: Context, request: Request) -> Response:
    action = request.params["action"]
    if action not in IDENTITY_ACTIONS:
        raise HTTPError(
            404,
            "not_found",
            f"unknown identity action {action!r}; use {', '.join(IDENTITY_ACTIONS)}",
        )
    body = IdentityRotate()
    if request.body.strip():
        body = request.decode(IdentityRotate)
        if body.secret_ref is not None and action != "rotate":
            raise HTTPError(
                400,
                "conflicting_parameters",
                f"secret_ref belongs to rotate, not {action}: send only a reason",
            )
        check_secret_ref(body.secret_ref)
    identity = await ctx.runtime.commands.change_identity(
        request.params["identity_id"], action, body
    )
    return json_response(identity)


# -------------------------------------------------------------------- pools


async def list_pools(ctx: Context, request: Request) -> Response:
    runtime = ctx.runtime
    now, engine = runtime.now(), runtime.engine
    return json_response(
        PoolList(pools=[views.pool_view(engine, p, now) for p in engine.state.pools.values()])
    )


async def list_budgets(ctx: Context, request: Request) -> Response:
    runtime = ctx.runtime
    return json_response(
        MoneyBudgetList(budgets=views.money_budgets(runtime.engine, runtime.now()))
    )


async def show_pool(ctx: Context, request: Request) -> Response:
    pool_id = request.params["pool_id"]
    runtime = ctx.runtime
    pool = runtime.engine.state.pools.get(pool_id)
    if pool is None:
        raise HTTPError(
            404, "unknown_pool", f"no pool {pool_id!r}; list them with 'ratelord pools'"
        )
    return json_response(views.pool_detail(runtime.engine, pool, runtime.now()))


async def forecasts(ctx: Context, request: Request) -> Response:
    items = []
    for pool in ctx.runtime.engine.state.pools.values():
        view = views.forecast_view(pool.forecast)
        if view is not None:
            fields = msgspec.structs.asdict(view)
            status: Any = pool.posture  # one of the Posture literals
            items.append(PoolForecast(pool_id=pool.pool_id, status=status, **fields))
    return json_response(ForecastList(forecasts=items))


async def graph(ctx: Context, request: Request) -> Response:
    return json_response(views.graph(ctx.runtime.engine))


async def explain(ctx: Context, request: Request) -> Response:
    a, b = request.query.get("a"), request.query.get("b")
    if not a or not b:
        raise HTTPError(400, "missing_parameter", "give two identities: ?a=ID&b=ID")
    return json_response(views.explain(ctx.runtime.engine, a, b))


async def stats(ctx: Context, request: Request) -> Response:
    return json_response(ctx.metrics.stats())


# -------------------------------------------------------------------- events


async def events(ctx: Context, request: Request) -> Response | StreamingResponse:
    query = EventQuery.from_request(request)
    if query.stream:
        return StreamingResponse(
            event_stream(ctx.runtime, query),
            b"text/event-stream",
            headers=[(b"x-accel-buffering", b"no")],
        )
    return Response(await event_page(ctx.runtime, query))


# -------------------------------------------------------------------- policy


async def show_policy(ctx: Context, request: Request) -> Response:
    policy = ctx.runtime.policy
    return json_response(
        PolicyView(version=policy.version, source=policy.source, policy=policy.describe())
    )


async def reload_policy(ctx: Context, request: Request) -> Response:
    policy = await ctx.runtime.commands.reload_policy("api")
    return json_response(
        PolicyReloaded(version=policy.version, source=policy.source, reloaded=True)
    )


# -------------------------------------------------------------------- admin


async def rebuild(ctx: Context, request: Request) -> StreamingResponse:
    ctx.runtime.require_ready()
    return StreamingResponse(_rebuild_stream(ctx.runtime), b"application/x-ndjson")


async def snapshot(ctx: Context, request: Request) -> Response:
    ctx.runtime.require_ready()
    seq = await ctx.runtime.snapshot()
    if seq is None:
        raise HTTPError(
            503, "busy", "the writer did not go idle; try again", [(b"retry-after", b"1")]
        )
    return json_response(SnapshotWritten(snapshot_seq=seq))


def _mock(ctx: Context) -> MockProvider:
    mock = ctx.runtime.providers.get(MockProvider.provider_id)
    if not isinstance(mock, MockProvider):
        raise HTTPError(
            404, "no_mock_provider", "the mock provider is not configured (providers.mock)"
        )
    return mock


async def mock_external_usage(ctx: Context, request: Request) -> Response:
    body = request.decode(ExternalUsage)
    mock, now = _mock(ctx), ctx.runtime.now()
    if not mock.knows(body.principal):
        raise HTTPError(
            404, "unknown_principal", f"the mock provider has no principal {body.principal!r}"
        )
    mock.spend(body.principal, body.resource, body.amount, now)
    left = mock.remaining(body.principal, body.resource, now)
    return json_response(
        MockSpent(principal=body.principal, resource=body.resource, remaining=left)
    )


async def mock_fail(ctx: Context, request: Request) -> Response:
    body = request.decode(InjectFailure)
    _mock(ctx).fail(body.kind, body.count, body.retry_after)
    return json_response(MockFailureInjected(injected=body.count, kind=body.kind))


# -------------------------------------------------------------------- the table


def install(router: Router, runtime: Runtime, metrics: Metrics) -> None:
    """Register every endpoint on ``router``, bound to ``runtime`` and ``metrics``."""
    ctx = Context(runtime, metrics)

    def add(
        method: str,
        path: str,
        handler: Callable[[Context, Request], Awaitable[Response | StreamingResponse]],
        summary: str,
        **meta: Any,
    ) -> None:
        router.add(method, path, partial(handler, ctx), summary, **meta)

    add("GET", "/v1/health", health, "Liveness, readiness and version", response=Health)
    add(
        "POST",
        "/v1/intent",
        intent,
        "Ask before spending; blocks until decided",
        request=IntentRequest,
        response=Decision,
        writes=True,
        observe=metrics.intent_latency.observe,
        scope="ask",
    )
    add(
        "POST",
        "/v1/intents/{intent_id}/check",
        check_approval,
        "Before spending an approval that waited: does it still hold? (revoked if not)",
        response=ApprovalCheck,
        writes=True,
        scope="ask",
    )
    add(
        "POST",
        "/v1/usage",
        usage,
        "Report actual consumption or rate-limit headers",
        request=UsageReport,
        response=UsageAccepted,
        writes=True,
        scope="ask",
    )
    add(
        "GET",
        "/v1/events",
        events,
        "Recent events; stream=true for Server-Sent Events",
        query=EventQuery.PARAMS,
        schemas=EventQuery.SCHEMAS,
        response=EventPage,
    )
    add("GET", "/v1/identities", list_identities, "Registered identities", response=IdentityList)
    add(
        "POST",
        "/v1/identities",
        create_identity,
        "Register an identity",
        request=IdentityCreate,
        response=Identity,
        status=201,
        writes=True,
    )
    add("GET", "/v1/identities/{identity_id}", show_identity, "One identity", response=Identity)
    add(
        "POST",
        "/v1/identities/{identity_id}/{action}",
        identity_action,
        "Revoke, quarantine or rotate an identity",
        request=IdentityRotate,
        schemas={"action": {"type": "string", "enum": list(IDENTITY_ACTIONS)}},
        response=Identity,
        writes=True,
    )
    add(
        "GET",
        "/v1/pools",
        list_pools,
        "Pools with posture and latest forecast",
        response=PoolList,
    )
    add(
        "GET",
        "/v1/pools/{pool_id:path}",
        show_pool,
        "One pool with history and top consumers",
        response=PoolDetail,
    )
    add(
        "GET",
        "/v1/budgets",
        list_budgets,
        "Money budgets: spent, remaining and forecast to the period's end",
        response=MoneyBudgetList,
    )
    add("GET", "/v1/forecasts", forecasts, "Latest forecast of every pool", response=ForecastList)
    add("GET", "/v1/graph", graph, "Principals, identities, pools and workloads", response=Graph)
    add(
        "GET",
        "/v1/graph/explain",
        explain,
        "Why two identities share a pool or not",
        required_query=("a", "b"),
        response=Explanation,
    )
    add("GET", "/v1/stats", stats, "Intent rates, decisions and store lag", response=Stats)
    add("GET", "/v1/policy", show_policy, "The active policy and its version", response=PolicyView)
    add(
        "POST",
        "/v1/policy/reload",
        reload_policy,
        "Reload the policy file",
        writes=True,
        response=PolicyReloaded,
    )
    add(
        "POST",
        "/v1/admin/rebuild",
        rebuild,
        "Drop snapshots, replay the log, verify equality (NDJSON progress)",
        writes=True,
    )
    add(
        "POST",
        "/v1/admin/snapshot",
        snapshot,
        "Write a snapshot now",
        writes=True,
        response=SnapshotWritten,
    )
    add(
        "POST",
        "/v1/admin/mock/external-usage",
        mock_external_usage,
        "Mock provider: spend behind ratelord's back",
        request=ExternalUsage,
        writes=True,
        response=MockSpent,
    )
    add(
        "POST",
        "/v1/admin/mock/fail",
        mock_fail,
        "Mock provider: fail the next polls",
        request=InjectFailure,
        writes=True,
        response=MockFailureInjected,
    )
    lease_routes.install(router, runtime.leasing, metrics)
    archive_routes.install(router, runtime.archiver)
    add("GET", "/metrics", prometheus, "Prometheus exposition")
    add("GET", "/openapi.json", openapi, "This API as OpenAPI 3.1")
    ctx.openapi = _encode(openapi_document(router))


async def _rebuild_stream(runtime: Runtime) -> AsyncIterator[bytes]:
    """NDJSON: progress lines while replaying, then the result."""
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def progress(done: int, total: int) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (done, total))

    task = loop.create_task(runtime.rebuild(progress))
    while not task.done():
        try:
            done, total = await asyncio.wait_for(queue.get(), timeout=0.2)
        except TimeoutError:
            continue
        yield _encode({"phase": "replay", "done": done, "total": total}) + b"\n"
    try:
        result = task.result()
    except Exception as exc:
        yield _encode({"error": {"code": "rebuild_failed", "message": str(exc)}}) + b"\n"
        return
    yield _encode({"result": result, "at": iso(runtime.now())}) + b"\n"
