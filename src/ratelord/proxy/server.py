"""Run the proxy: uvicorn (uvloop + httptools) serving :class:`ProxyApp`."""

from __future__ import annotations

import logging
import sys

import uvicorn

from ratelord.client import AsyncClient
from ratelord.proxy.app import ProxyApp
from ratelord.proxy.settings import ProxySettings, secret

log = logging.getLogger("ratelord.proxy")


def build_app(settings: ProxySettings, daemon_token: str | None = None) -> ProxyApp:
    """The app with its daemon client; secrets are read here, once."""
    client = AsyncClient(
        settings.daemon_url,
        token=daemon_token or secret(settings.daemon_token_ref),
        fail_open=settings.fail_open,
    )
    return ProxyApp(settings, client, token=secret(settings.token_ref))


def serve(settings: ProxySettings, daemon_token: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish first."""
    app = build_app(settings, daemon_token)
    for noisy in ("httpx2", "httpcore2"):  # their INFO lines name every URL
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = uvicorn.Config(
        app,
        host=settings.bind,
        port=settings.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
        server_header=False,
        proxy_headers=False,
    )
    routes = ", ".join(f"/{name} → {up.url}" for name, up in sorted(settings.upstreams.items()))
    log.info(
        "ratelord proxy on http://%s:%d asking %s (%s)",
        settings.bind,
        settings.port,
        app.client.url,
        routes,
    )
    uvicorn.Server(config).run()
