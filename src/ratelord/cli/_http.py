"""The CLI's connection to ratelord-d: the SDK's :class:`~ratelord.client.Client`.

Commands read answers as plain JSON (``client.get``/``post``, which ``--json``
prints as the daemon sent them) and check them against :mod:`ratelord.schema`
with :func:`decode`; failures are the SDK's errors, worded once by
:func:`ratelord.cli._errors.as_cli_error`.  Tests inject an ``httpx2.MockTransport``
through :class:`Session` (``CliRunner.invoke(app, args, obj=Session(transport=...))``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import httpx2
import msgspec
import typer

from ratelord.cli._errors import CliError
from ratelord.client import Client
from ratelord.client._base import DEFAULT_URL, path_id
from ratelord.client._breaker import BreakerSettings

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_URL", "Session", "api", "cli_version", "decode", "path_id"]

DEFAULT_TIMEOUT = 10.0

T = TypeVar("T")


def cli_version() -> str:
    try:
        return version("ratelord")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def decode(data: Any, into: type[T]) -> T:
    """Check an answer against the wire schema (``ratelord.schema``)."""
    try:
        return msgspec.convert(data, into)
    except msgspec.ValidationError as exc:
        raise CliError(f"unexpected answer from ratelord-d: {exc}") from exc


@dataclass
class Session:
    """Connection settings shared by all commands of one invocation (``ctx.obj``).

    ``transport`` and ``sleep`` (the pause between reconnects) are seams for tests.
    """

    url: str = DEFAULT_URL
    token: str | None = None
    transport: httpx2.BaseTransport | None = None
    sleep: Callable[[float], None] = field(default=time.sleep)


def api(ctx: typer.Context, *, timeout: float = DEFAULT_TIMEOUT) -> Client:
    """The daemon client of this invocation, closed when the command ends.

    A command is one person's request: it is not retried (``retries=0``) and
    needs no circuit breaker; a cluster's members are still tried in turn.
    """
    session = ctx.find_object(Session) or Session()
    client = Client(
        session.url,
        token=session.token,
        transport=session.transport,
        timeout=timeout,
        retries=0,
        breaker=BreakerSettings(threshold=0),
        sleep=session.sleep,
        user_agent=f"ratelord-cli/{cli_version()}",
    )
    return ctx.with_resource(client)
