"""The web UI and the endpoints it reads: history, the state at an instant, what-if replay.

Everything here is read-only towards the live daemon: the history archive is a
read model filled from its own connection in a worker thread, and a replay runs
a private engine on a copy of past state.  The page itself is static files
(``ratelord/web/static``) served under ``/ui``; ``/`` redirects there.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from importlib import resources
from itertools import chain
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from ratelord.asgi.http import HTTPError, Request, Response, Router, json_response
from ratelord.daemon import views
from ratelord.engine.clock import iso
from ratelord.engine.events import Event, IdFactory, IntentDecided
from ratelord.engine.policy import PolicyError, load_policy_text
from ratelord.history.archive import Archive, Instant
from ratelord.history.instants import (
    BUCKET_SCHEMA,
    INSTANT_SCHEMA,
    MIN_BUCKET_SECONDS,
    BadInstant,
    parse_bucket,
    parse_instant,
)
from ratelord.history.rollup import HistoryAggregate
from ratelord.history.sandbox import Modifiers, ReplayResult, replay
from ratelord.providers.secrets import resolve
from ratelord.schema import Graph, Ident, Identity, Pool
from ratelord.service import engine_over
from ratelord.store.archived import ArchivedLog

if TYPE_CHECKING:
    from ratelord.daemon.runtime import Runtime

#: Beyond this many unread events a history query answers 503 while the archive catches up.
MAX_LAG = 50_000
RECENT_EVENTS = 50
RECENT_DENIALS = 10
DENIAL_LOOKBACK = 3000
RELATED_WINDOW = 64
MAX_RANGE = 400 * 86400
MAX_BUCKETS = 20_000
_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".txt": b"text/plain; charset=utf-8",
}


class StateAt(msgspec.Struct, kw_only=True):
    """Every pool, identity and the constraint graph as they were at ``at``."""

    at: str
    seq: int
    checkpoint_seq: int
    replayed: int
    seconds: float
    pools: list[Pool]
    identities: list[Identity]
    graph: Graph
    recent: list[Event]
    #: the latest denials up to the instant (the inspector's shortcut to "why?")
    denials: list[Event]


class IndexStatus(msgspec.Struct, kw_only=True):
    ready: bool
    indexed_seq: int
    high_water_seq: int
    checkpoints: int


class Session(msgspec.Struct, kw_only=True):
    auth_required: bool
    authorized: bool


class EventContext(msgspec.Struct, kw_only=True):
    """One event and the events of the same intent or poll (same correlation id)."""

    event: Event
    related: list[Event]


#: Text parsed by :func:`parse_instant`; its schema is the parser's grammar.
InstantText = Annotated[str, msgspec.Meta(max_length=100, extra_json_schema=INSTANT_SCHEMA)]
#: How much more traffic or limit a replay assumes: (0, 100].
Factor = Annotated[float, msgspec.Meta(gt=0, le=100)]
#: The code of a refusal that no single field explains (a range, a combination).
CONFLICT = "conflicting_parameters"


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A recorded period as the baseline, and what to change about it."""

    since: InstantText = "24h"
    until: InstantText = "now"
    traffic: Factor = 1.0
    limit: Factor = 1.0
    #: policy YAML to replay under (an edited copy of the active one, another file's text)
    policy: Annotated[str, msgspec.Meta(max_length=40_000)] | None = None
    clone_agent: Ident | None = None
    clones: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0


class HistoryService:
    """Keeps the archive caught up with the log, off the event loop."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.archive = Archive()
        self._task: asyncio.Task[int] | None = None

    def status(self) -> IndexStatus:
        """How far the archive has read; starts it catching up if it is behind."""
        store = self.runtime.store
        if store is None or self.runtime.status == "initializing":
            self.runtime.require_ready()
        assert store is not None
        high = store.high_water
        idle = self._task is None or self._task.done()
        boundary = self.runtime.archive.boundary
        if idle and boundary is not None and self.archive.seq < boundary.upto_seq:
            self.archive.resume(boundary)  # the long view of what segments hold
        if self.archive.seq < high and idle:
            self._task = asyncio.get_running_loop().create_task(
                asyncio.to_thread(self.archive.catch_up, self.source(), high)
            )
        return IndexStatus(
            ready=high - self.archive.seq <= MAX_LAG,
            indexed_seq=self.archive.seq,
            high_water_seq=high,
            checkpoints=self.archive.checkpoints,
        )

    def source(self) -> ArchivedLog:
        return ArchivedLog(self.runtime.reader(), self.runtime.archive)

    async def ready(self) -> Archive:
        status = self.status()
        if status.indexed_seq >= status.high_water_seq:
            return self.archive
        high = status.high_water_seq
        behind = high - self.archive.seq
        if behind > MAX_LAG:
            done = round(100 * self.archive.seq / high)
            raise HTTPError(
                503,
                "indexing",
                f"building the history index: {done}% of {high:,} events; retry shortly",
                [(b"retry-after", b"2")],
            )
        assert self._task is not None
        await asyncio.shield(self._task)
        return self.archive

    async def state_at(self, at: float) -> Instant:
        archive = await self.ready()
        return await asyncio.to_thread(archive.state_at, self.source(), at)


def install(router: Router, runtime: Runtime) -> HistoryService:
    service = HistoryService(runtime)
    static = _load_static()
    index = static["index.html"]
    ref = runtime.settings.auth.token_ref
    token = resolve(ref).encode() if ref else None

    def instant(request: Request, name: str, default: str) -> float:
        try:
            return parse_instant(request.query.get(name, default), runtime.now())
        except BadInstant as exc:
            raise HTTPError(400, "invalid_parameter", f"{name}: {exc}") from None

    # ---------------------------------------------------------------- the page

    async def root(request: Request) -> Response:
        return Response(b"", 307, headers=[(b"location", b"/ui/")])

    async def session(request: Request) -> Response:
        """Public: does the API want a token, and is the one sent (if any) right?"""
        sent = (request.header(b"authorization") or "").removeprefix("Bearer ").strip()
        authorized = token is None or hmac.compare_digest(sent.encode(), token)
        return json_response(Session(auth_required=token is not None, authorized=authorized))

    async def page(request: Request) -> Response:
        path = request.params.get("path", "")
        if path.startswith("static/"):
            name = path[len("static/") :]
            body = static.get(name)
            if body is None:
                raise HTTPError(404, "not_found", f"no such file: /ui/{path}")
            suffix = name[name.rfind(".") :]
            return Response(
                body,
                content_type=_TYPES.get(suffix, b"application/octet-stream"),
                headers=[(b"cache-control", b"no-cache")],
            )
        return Response(
            index,
            content_type=_TYPES[".html"],
            headers=[(b"cache-control", b"no-cache")],
        )

    # ---------------------------------------------------------------- history

    async def index_status(request: Request) -> Response:
        return json_response(service.status())

    async def history(request: Request) -> Response:
        since = instant(request, "since", "7d")
        until = instant(request, "until", "now")
        if until <= since or until - since > MAX_RANGE:
            raise HTTPError(400, CONFLICT, "until must be after since, and at most 400 days later")
        bucket = _bucket(request.query.get("bucket"), until - since)
        pools = [p for p in (request.query.get("pool_id") or "").split(",") if p] or None
        archive = await service.ready()
        result = await asyncio.to_thread(archive.aggregate, since, until, bucket, pools)
        return json_response(result)

    async def state(request: Request) -> Response:
        at = instant(request, "at", "now")
        started = time.perf_counter()
        found = await service.state_at(at)
        engine = engine_over(runtime.engine, found.state)
        reader = runtime.reader()
        recent = await asyncio.to_thread(
            reader.query,
            after_seq=max(0, found.seq - RECENT_EVENTS),
            before_seq=found.seq,
            limit=RECENT_EVENTS,
        )
        decided = await asyncio.to_thread(
            reader.query,
            after_seq=max(0, found.seq - DENIAL_LOOKBACK),
            before_seq=found.seq,
            limit=DENIAL_LOOKBACK,
            filters={"event_type": "intent_decided"},
        )
        denials: list[Event] = [
            e
            for e in decided
            if isinstance(e, IntentDecided) and e.payload.decision == "deny_with_reason"
        ]
        return json_response(
            StateAt(
                at=iso(at) or "",
                seq=found.seq,
                checkpoint_seq=found.checkpoint_seq,
                replayed=found.replayed,
                seconds=round(time.perf_counter() - started, 3),
                pools=[views.pool_view(engine, p, at) for p in found.state.pools.values()],
                identities=[engine.identity_view(r) for r in found.state.identities.values()],
                graph=views.graph(engine),
                recent=recent,
                denials=denials[-RECENT_DENIALS:],
            )
        )

    async def event(request: Request) -> Response:
        text = request.params["seq"]
        if re.fullmatch("[0-9]{1,18}", text) is None or int(text) < 1:
            raise HTTPError(
                400, "invalid_parameter", f"seq must be a positive integer, not {text!r}"
            )
        seq = int(text)
        reader = runtime.reader()
        found = await asyncio.to_thread(reader.query, after_seq=seq - 1, limit=1)
        if not found or found[0].seq != seq:
            raise HTTPError(404, "unknown_event", f"no event with seq {seq}")
        related: list[Event] = []
        correlation = found[0].correlation_id
        if correlation:
            window = await asyncio.to_thread(
                reader.query,
                after_seq=max(0, seq - RELATED_WINDOW),
                before_seq=seq + RELATED_WINDOW,
                limit=2 * RELATED_WINDOW,
            )
            related = [e for e in window if e.correlation_id == correlation and e.seq != seq]
        return json_response(EventContext(event=found[0], related=related))

    async def what_if(request: Request) -> Response:
        body = request.decode(ReplayRequest)
        now = runtime.now()
        try:
            since = parse_instant(body.since, now)
            until = parse_instant(body.until, now)
        except BadInstant as exc:
            raise HTTPError(400, "invalid_parameter", str(exc)) from None
        if until <= since or until - since > 31 * 86400:
            raise HTTPError(400, CONFLICT, "until must be after since, and at most 31 days later")
        if body.clones and not body.clone_agent:
            raise HTTPError(400, CONFLICT, "clones needs clone_agent: the agent to clone")
        policy = runtime.policy
        if body.policy is not None:
            try:
                policy = load_policy_text(body.policy, "<scenario>")
            except PolicyError as exc:
                raise HTTPError(400, "policy_rejected", str(exc)) from None
        modifiers = Modifiers(
            traffic=body.traffic,
            limit=body.limit,
            clone_agent=body.clone_agent,
            clones=body.clones,
        )
        start = await service.state_at(since)
        source = service.source()

        def run() -> ReplayResult:
            recorded = chain.from_iterable(source.read(start.seq))
            sandbox = engine_over(runtime.engine, start.state, policy=policy, ids=IdFactory("sbx"))
            return replay(sandbox, recorded, modifiers, since=since, until=until)

        return json_response(await asyncio.to_thread(run))

    add = router.add
    add("GET", "/", root, "Redirect to the web UI")
    add("GET", "/ui", page, "The web UI")
    add("GET", "/ui/", page, "The web UI")
    add("GET", "/ui/session", session, "Whether the API needs a bearer token", response=Session)
    add("GET", "/ui/{path:path}", page, "The web UI (client-side routes and static files)")
    add(
        "GET",
        "/v1/history",
        history,
        "Aggregates over time buckets: burn, utilisation, decisions, heatmap, top consumers",
        response=HistoryAggregate,
        query=("since", "until", "bucket", "pool_id"),
        schemas={
            "since": INSTANT_SCHEMA,
            "until": INSTANT_SCHEMA,
            "bucket": BUCKET_SCHEMA,
            "pool_id": {"type": "string"},
        },
    )
    add(
        "GET",
        "/v1/history/status",
        index_status,
        "How far the history index has read the log",
        response=IndexStatus,
    )
    add(
        "GET",
        "/v1/history/state",
        state,
        "Every pool, identity and the constraint graph as they were at an instant",
        response=StateAt,
        query=("at",),
        schemas={"at": INSTANT_SCHEMA},
    )
    add(
        "GET",
        "/v1/history/events/{seq}",
        event,
        "One event with the events of the same intent or poll",
        response=EventContext,
        schemas={"seq": {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}},
    )
    add(
        "POST",
        "/v1/replay",
        what_if,
        "Replay a recorded period in a sandbox under other traffic, limits or policy",
        request=ReplayRequest,
        response=ReplayResult,
        scope="read",  # a sandbox: it changes nothing
    )
    return service


def _bucket(text: str | None, span: float) -> int:
    """The bucket width: given (seconds or a duration), or about 500 buckets over the span."""
    if text is not None:
        try:
            seconds = parse_bucket(text)
        except BadInstant as exc:
            raise HTTPError(400, "invalid_parameter", f"bucket: {exc}") from None
    else:
        seconds = max(MIN_BUCKET_SECONDS, int(span / 500))
    if span / seconds > MAX_BUCKETS:
        raise HTTPError(
            400,
            CONFLICT,
            f"a bucket of {seconds} s gives more than {MAX_BUCKETS:,} buckets over the range; "
            "widen the bucket or narrow since/until",
        )
    return seconds


def _load_static() -> dict[str, bytes]:
    """The page's files, read once: ``index.html``, ``app.js``, ``vendor/uplot/...``."""
    root = resources.files("ratelord.web") / "static"
    found: dict[str, bytes] = {}

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
            else:
                found[name] = child.read_bytes()

    walk(root, "")
    return found
