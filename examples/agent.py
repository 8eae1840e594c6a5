"""An agent that calls an API through ratelord's httpx transport.

Start the demo daemon and the fake API, then the agent::

    ratelord-d --demo --db /tmp/demo.db &
    python examples/fake_api.py --port 8099 &
    python examples/agent.py --api http://127.0.0.1:8099 --requests 20

Each request is asked for first (``search`` costs 1 from the search pool,
everything else 1 from ``core``), waits when ratelord says so, is refused
when ratelord denies it, and its response's ``x-ratelimit-*`` headers are
reported back so the daemon's pools track what the API really says.
Watch it live with ``ratelord tui``.

The agent charges an identity of its own, ``pat:example`` (registered on first
use, principal ``example-user``): its pools, ``github:core:example-user`` and
``github:search:example-user``, are known only from the fake API's headers. The
demo's identities (``pat:alice``…) are charged by the demo's mock provider,
whose budget is not the fake API's: reporting the fake API's headers for them
would make the two disagree on every call (drift) and drive their pools to CRIT.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import httpx

from ratelord.client import Client, RatelordDenied, RatelordTransport

#: The identity the fake API's budget belongs to (``--identity``) and its account.
IDENTITY = "pat:example"
PRINCIPAL = "example-user"


def route(request: httpx.Request) -> dict[str, Any]:
    """What a request costs, and from which pool (GitHub's buckets)."""
    if request.url.path.startswith("/search/"):
        return {"resource": "search", "cost": 1, "workload_id": "search"}
    return {"resource": "core", "cost": 1, "workload_id": "repo_scan"}


def run(args: argparse.Namespace) -> int:
    denied = 0
    with Client(args.ratelord) as ratelord:
        print(f"ratelord-d {ratelord.health().version} at {ratelord.url}")
        if args.identity not in {i.identity_id for i in ratelord.identities()}:
            ratelord.register(identity_id=args.identity, provider_id="github", principal=PRINCIPAL)
            print(f"registered {args.identity} (principal {PRINCIPAL}, pools from the API)")
        transport = RatelordTransport(
            client=ratelord,
            agent_id=args.agent,
            identity_id=args.identity,
            urgency=args.urgency,
            route=route,
            max_wait=args.max_wait,
        )
        with httpx.Client(base_url=args.api, transport=transport) as api:
            for n in range(args.requests):
                path = "/search/issues?q=bug" if n % 5 == 4 else f"/repos/acme/api/issues?page={n}"
                started = time.monotonic()
                try:
                    response = api.get(path)
                except RatelordDenied as exc:
                    denied += 1
                    print(f"{n:3d} {path:36s} DENIED  {exc.reason}")
                    continue
                waited = time.monotonic() - started
                remaining = response.headers.get("x-ratelimit-remaining")
                status = response.status_code
                print(f"{n:3d} {path:36s} {status}  remaining={remaining} ({waited:.2f} s)")
    print(f"done: {args.requests - denied} sent, {denied} denied")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="call an API through ratelord's transport")
    parser.add_argument("--ratelord", default=None, help="daemon URL (default: $RATELORD_URL)")
    parser.add_argument("--api", default="http://127.0.0.1:8099", help="the API to call")
    parser.add_argument(
        "--identity", default=IDENTITY, help="whose budget the API spends (registered if new)"
    )
    parser.add_argument("--agent", default="example-agent")
    parser.add_argument(
        "--urgency", default="normal", choices=["background", "low", "normal", "high"]
    )
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-wait", type=float, default=30.0, help="longest wait to accept (s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
