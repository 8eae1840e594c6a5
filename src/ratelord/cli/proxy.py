"""``ratelord proxy``: put ratelord in front of any client by changing its base URL."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ratelord.cli._errors import CliError
from ratelord.cli._http import DEFAULT_URL, Session

#: exit code of a proxy setting that cannot be used (as ratelord-d's)
EXIT_CONFIG = 2


def proxy(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config", envvar="RATELORD_PROXY_CONFIG", help="Proxy YAML file (upstreams, waits)."
        ),
    ] = None,
    bind: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8091).")] = None,
    max_wait: Annotated[
        float | None,
        typer.Option(
            "--max-wait", min=0, help="Longest wait held inside the proxy, in s (default 30)."
        ),
    ] = None,
    upstream: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=URL or NAME=KIND:URL (kind openai, anthropic, github or generic); "
            "repeatable; replaces the default /openai, /anthropic and /github.",
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error (default info).")
    ] = None,
) -> None:
    """Serve a rate-governed reverse proxy: point a client's base URL at
    http://127.0.0.1:8091/NAME (e.g. /openai/v1, /anthropic, /github)."""
    from ratelord.asgi.logging import configure
    from ratelord.proxy.server import serve
    from ratelord.proxy.settings import ProxyConfigError, load_proxy_settings

    session = ctx.ensure_object(Session)
    overrides: dict[str, Any] = {
        "bind": bind,
        "port": port,
        "max_wait_seconds": max_wait,
        "log_level": log_level,
        "daemon_url": session.url if session.url != DEFAULT_URL else None,
    }
    if upstream:
        overrides["upstreams"] = dict(_upstream(spec) for spec in upstream)
    try:
        settings = load_proxy_settings(config, overrides)
        configure(settings.log_level, None)
        serve(settings, daemon_token=session.token)
    except ProxyConfigError as exc:
        raise CliError(str(exc), exit_code=EXIT_CONFIG) from None


def _upstream(spec: str) -> tuple[str, dict[str, str]]:
    name, sep, target = spec.partition("=")
    if not sep or not name or not target:
        raise typer.BadParameter(
            f"{spec!r}: use NAME=URL or NAME=KIND:URL", param_hint="--upstream"
        )
    kind, colon, rest = target.partition(":")
    if colon and kind in ("openai", "anthropic", "github", "generic"):
        return name, {"kind": kind, "url": rest}
    return name, {"url": target}
