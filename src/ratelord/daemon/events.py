"""``GET /v1/events``: pages of the log, and a live Server-Sent Events tail.

The tail never skips or repeats: it subscribes to committed events first,
then back-fills from the database up to what it has buffered, then follows
the buffer, dropping anything at or below the last ``seq`` it sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from ratelord.asgi.http import HTTPError, Request
from ratelord.daemon.threads import to_thread_finished
from ratelord.daemon.views import event_json
from ratelord.engine.events import Event

if TYPE_CHECKING:
    from ratelord.daemon.runtime import Runtime

MAX_LIMIT = 1000
MAX_SEQ = 10**18 - 1
PING_EVERY = 15.0
BACKFILL_BATCH = 500
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class EventQuery:
    FILTERS: ClassVar[dict[str, str]] = {
        "type": "event_type",
        "event_type": "event_type",
        "agent_id": "agent_id",
        "identity_id": "identity_id",
        "workload_id": "workload_id",
        "scope_id": "scope_id",
        "pool_id": "pool_id",
        "provider_id": "provider_id",
    }
    PARAMS: ClassVar[tuple[str, ...]] = ("limit", "after_seq", "stream", *FILTERS)
    #: What ``/openapi.json`` says of each parameter: exactly what :meth:`from_request` takes.
    SCHEMAS: ClassVar[dict[str, dict[str, Any]]] = {
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        "after_seq": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
        "stream": {"type": "boolean"},
    }

    limit: int = 100
    after_seq: int | None = None
    stream: bool = False
    filters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_request(cls, request: Request) -> EventQuery:
        q = request.query
        unknown = sorted(set(q) - set(cls.PARAMS))
        if unknown:
            raise HTTPError(
                400,
                "invalid_parameter",
                f"unknown parameter {unknown[0]!r}; use {', '.join(cls.PARAMS)}",
            )
        limit = _int(q, "limit", 100, 1, MAX_LIMIT)
        after = q["after_seq"] if "after_seq" in q else request.header(b"last-event-id")
        after_seq = (
            None if after is None else _int({"after_seq": after}, "after_seq", 0, 0, MAX_SEQ)
        )
        stream = q.get("stream", "false")
        if stream not in ("true", "false"):
            raise HTTPError(400, "invalid_parameter", "stream must be true or false")
        filters = {cls.FILTERS[k]: v for k, v in q.items() if k in cls.FILTERS}
        return cls(limit, after_seq, stream == "true", filters)


def _int(q: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = q.get(name)
    if raw is None:
        return default
    if re.fullmatch("-?[0-9]{1,19}", raw) is None:
        raise HTTPError(400, "invalid_parameter", f"{name} must be an integer, not {raw!r}")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise HTTPError(400, "invalid_parameter", f"{name} must be {bound}, not {value}")
    return value


async def event_page(runtime: Runtime, query: EventQuery) -> bytes:
    reader = runtime.reader()
    if query.after_seq is None:
        events = await to_thread_finished(reader.latest, limit=query.limit, filters=query.filters)
    else:
        events = await to_thread_finished(
            reader.query, after_seq=query.after_seq, limit=query.limit, filters=query.filters
        )
    next_after = events[-1].seq if events else (query.after_seq or 0)
    body = b",".join(event_json(e) for e in events)
    return b'{"events":[' + body + b'],"next_after_seq":' + str(next_after).encode() + b"}"


def _matches(event: Event, filters: dict[str, str]) -> bool:
    for column, value in filters.items():
        if column == "event_type":
            actual = event.event_type
        elif column in ("pool_id", "provider_id"):
            actual = getattr(event, column)
        else:
            actual = getattr(event.dimensions, column)
        if actual != value:
            return False
    return True


def _sse(event: Event) -> bytes:
    return (
        b"id: "
        + str(event.seq).encode()
        + b"\nevent: "
        + event.event_type.encode()
        + b"\ndata: "
        + event_json(event)
        + b"\n\n"
    )


async def event_stream(runtime: Runtime, query: EventQuery) -> AsyncIterator[bytes]:
    """SSE from ``after_seq`` (default: now) onwards, until the daemon stops."""
    writer = runtime.writer
    if not writer.running and runtime.member is None:
        raise HTTPError(
            503, "unavailable", "ratelord-d is starting; retry shortly", [(b"retry-after", b"1")]
        )
    live: asyncio.Queue[list[Event]] = asyncio.Queue()
    unsubscribe = writer.subscribe(live.put_nowait)
    last = query.after_seq if query.after_seq is not None else runtime.high_water()
    try:
        yield b"retry: 1000\n: connected\n\n"
        reader = runtime.reader()
        while True:  # back-fill from the log until caught up with what is live
            page = await to_thread_finished(
                reader.query, after_seq=last, limit=BACKFILL_BATCH, filters=query.filters
            )
            for event in page:
                yield _sse(event)
                last = event.seq
            if len(page) < BACKFILL_BATCH:
                break
        stopping = asyncio.ensure_future(runtime.stopping.wait())
        try:
            while not runtime.stopping.is_set():
                getter = asyncio.ensure_future(live.get())
                done, _ = await asyncio.wait(
                    {getter, stopping}, timeout=PING_EVERY, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    if not done:
                        yield b": ping\n\n"
                    continue
                chunk = b"".join(
                    _sse(e) for e in getter.result() if e.seq > last and _matches(e, query.filters)
                )
                batch_last = getter.result()[-1].seq
                if chunk:
                    yield chunk
                last = max(last, batch_last)
        finally:
            stopping.cancel()
    finally:
        unsubscribe()
