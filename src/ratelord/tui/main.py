"""Entry points: the ``ratelord-tui`` console script and :func:`run_tui` for ``ratelord tui``."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from typing import Any

from ratelord.client import AsyncClient
from ratelord.client._base import DEFAULT_URL
from ratelord.client._breaker import BreakerSettings


def run_tui(url: str, token: str | None = None) -> None:
    """Run the dashboard against the daemon at ``url`` until the user quits.

    ``token`` is the daemon's bearer token, when it requires one.
    """
    asyncio.run(_run(url, token))


async def _run(url: str, token: str | None) -> None:
    # Textual is imported here, not at module level, so `ratelord --help` stays fast.
    from ratelord.tui.app import RatelordApp

    async with daemon_client(url, token=token) as api:
        await RatelordApp(api).run_async()


def daemon_client(url: str, *, token: str | None = None, **options: Any) -> AsyncClient:
    """The dashboard's client: members in turn, but no retries and no circuit breaker (the
    feed reconnects at its own pace and shows the outage meanwhile)."""
    return AsyncClient(
        url,
        token=token,
        retries=0,
        breaker=BreakerSettings(threshold=0),
        user_agent="ratelord-tui",
        **options,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ratelord-tui", description="Live terminal dashboard of a ratelord daemon."
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("RATELORD_URL", DEFAULT_URL),
        help="daemon URL (default: $RATELORD_URL or %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("RATELORD_TOKEN"),
        help="bearer token, if the daemon requires one (default: $RATELORD_TOKEN)",
    )
    args = parser.parse_args(argv)
    run_tui(args.url, args.token)
