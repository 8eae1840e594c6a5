"""``ratelord-d`` with the top layers of ``POST /v1/intent`` cut off, for bench_ladder.py.

Usage: python bench/_ladder_daemon.py LAYER [ratelord-d arguments]

Each layer answers ``POST /v1/intent`` with everything below it and nothing above:

- ``process``: the daemon process (pollers, checkpointer, uvicorn as configured), but
  the request is answered in front of ratelord's ASGI app, as the bare endpoint does;
- ``app``: through ratelord's ASGI app (request id, router, latency histogram), with
  a fixed body the size of a real decision;
- ``codec``: and the intent is decoded and validated, a decision (the first one,
  reused) is encoded and counted; nothing is decided and nothing is written;
- ``commit``: and that decision's events are appended durably (fresh event ids),
  through group commit, before the answer.

The full daemon (``ratelord-d`` itself) adds the engine's decision on top.
Only the benchmark uses this; the daemon has no switches for it.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from ratelord.asgi.http import Response
from ratelord.daemon import app as daemon_app
from ratelord.daemon import main as daemon_main
from ratelord.daemon import routes
from ratelord.engine.arbitration import decide
from ratelord.schema import Decision, IntentRequest
from ratelord.service import CommandService

LAYERS = ("process", "app", "codec", "commit")
#: The size of the bench intent's real decision (738 bytes).
DECISION_SIZED = b'{"decision":"' + b"a" * 722 + b'"}'


def _answer_in_front() -> None:
    inner = daemon_app.DaemonApp.__call__

    async def call(self: daemon_app.DaemonApp, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/intent":
            return await inner(self, scope, receive, send)
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"22")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"decision":"approve"}'})

    daemon_app.DaemonApp.__call__ = call  # type: ignore[method-assign]


def _fixed_route() -> None:
    install = routes.install

    async def fixed(request: Any) -> Response:
        return Response(DECISION_SIZED)

    def install_fixed(router: Any, runtime: Any, metrics: Any) -> None:
        install(router, runtime, metrics)
        router.add("POST", "/v1/intent", fixed, "fixed answer")

    routes.install = install_fixed


def _reused_decision(*, commit: bool) -> None:
    async def intent(self: CommandService, request: IntentRequest) -> Decision:
        self.guard()
        cached = getattr(self, "_ladder_cache", None)
        if cached is None:
            cached = self._ladder_cache = decide(self.engine, request, self.now())  # type: ignore[attr-defined]
            await self.commit(cached.events)
        elif commit:
            fresh = [
                msgspec.structs.replace(e, event_id=self.engine.ids("ev")) for e in cached.events
            ]
            await self.commit(fresh)
        return cached.decision

    CommandService.intent = intent  # type: ignore[method-assign]


def main() -> int:
    layer, argv = sys.argv[1], sys.argv[2:]
    if layer not in LAYERS:
        raise SystemExit(f"unknown layer {layer!r}; one of {', '.join(LAYERS)}")
    if layer == "process":
        _answer_in_front()
    elif layer == "app":
        _fixed_route()
    else:
        _reused_decision(commit=layer == "commit")
    return daemon_main.main(argv)


if __name__ == "__main__":
    sys.exit(main())
