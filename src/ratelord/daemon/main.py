"""``ratelord-d``: parse settings, open the store, serve until a signal says stop."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn

from ratelord import __version__
from ratelord.asgi.logging import configure
from ratelord.daemon.app import DaemonApp
from ratelord.daemon.config import ConfigError, Settings, load_settings
from ratelord.daemon.demo import Demo
from ratelord.daemon.mock_spending import MockSpending
from ratelord.daemon.runtime import Adapter, Runtime, initial_policy
from ratelord.engine.policy import PolicyError
from ratelord.providers.secrets import SecretError
from ratelord.service import PolicyRejected
from ratelord.store import StoreError
from ratelord.store.port import open_store

log = logging.getLogger("ratelord.daemon")

EXIT_CONFIG = 2
EXIT_STORE = 3
EXIT_PORT = 4


class PortError(Exception):
    """The address to listen on cannot be bound (taken, or not ours)."""


def _listen(settings: Settings) -> socket.socket:
    """Bind the server's socket before anything else, so a taken port fails in one line
    without having opened (or written to) the database."""
    family = socket.AF_INET6 if ":" in settings.bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.bind, settings.port))
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise PortError(
            f"cannot listen on {settings.bind}:{settings.port}: {reason}; is another "
            "ratelord-d running there? Stop it, or choose another port with --port N"
        ) from None
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling the runtime as soon as a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.runtime.begin_shutdown()
        super().handle_exit(sig, frame)
        # uvicorn re-raises a captured signal after a graceful stop, which would turn
        # our clean exit 0 into death by SIGTERM; the stop is already handled.
        getattr(self, "_captured_signals", []).clear()


def _check_bind(settings: Settings) -> None:
    try:
        loopback = ipaddress.ip_address(settings.bind).is_loopback
    except ValueError:
        loopback = settings.bind == "localhost"
    if not loopback and settings.auth.token_ref is None and not settings.auth.tokens:
        raise ConfigError(
            f"refusing to listen on {settings.bind}: a non-loopback address needs a bearer token "
            "(set auth.token_ref: env:NAME in the config file), or use --bind 127.0.0.1"
        )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings, args = load_settings(argv)
    except ConfigError as exc:
        print(f"ratelord-d: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.version:
        print(f"ratelord-d {__version__}")
        return 0
    configure(settings.log_level, settings.log_format)
    sock: socket.socket | None = None
    try:
        _check_bind(settings)
        policy = initial_policy(settings)
        sock = _listen(settings)
        os.umask(0o077)  # the database, its WAL and SHM files: owner only
        store = open_store(
            settings.store.url or settings.db, synchronous=settings.store.synchronous
        )
        adapters: list[Adapter] = [MockSpending()]
        if settings.demo:
            adapters.append(Demo())
        runtime = Runtime(settings, store, policy=policy, adapters=adapters)
        app = DaemonApp(runtime)
    except (ConfigError, PolicyError, SecretError) as exc:
        return _refuse(exc, EXIT_CONFIG, sock)
    except PortError as exc:
        return _refuse(exc, EXIT_PORT, sock)
    except StoreError as exc:
        return _refuse(exc, EXIT_STORE, sock)
    config = uvicorn.Config(
        app,
        host=settings.bind,
        port=settings.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        lifespan="on",
        access_log=settings.server.access_log,
        log_config=None,
        timeout_graceful_shutdown=10,
        server_header=False,
        proxy_headers=False,  # loopback by default; no proxy to trust
        ssl_certfile=settings.server.tls_cert,
        ssl_keyfile=settings.server.tls_key,
    )
    server = _Server(config, runtime)
    log.info(
        "ratelord-d %s listening on %s://%s:%d (store %s, policy %s)",
        __version__,
        "https" if settings.server.tls_cert else "http",
        settings.bind,
        settings.port,
        runtime.store_name(),
        runtime.policy.source,
    )
    asyncio.run(_serve(server, runtime, sock)) if sys.platform == "win32" else _run_uvloop(
        server, runtime, sock
    )
    if not server.started:
        return 1
    return 0


def _refuse(exc: Exception, code: int, sock: socket.socket | None) -> int:
    """Start-up is impossible: one line on stderr, an exit code that says which kind."""
    if sock is not None:
        sock.close()
    print(f"ratelord-d: {exc}", file=sys.stderr)
    return code


def _run_uvloop(server: _Server, runtime: Runtime, sock: socket.socket) -> None:
    import uvloop

    uvloop.run(_serve(server, runtime, sock))


async def _serve(server: _Server, runtime: Runtime, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload(runtime)))
    await server.serve(sockets=[sock])


async def _reload(runtime: Runtime) -> None:
    try:
        await runtime.commands.reload_policy("SIGHUP")
    except PolicyRejected:
        pass  # logged, and the previous policy stays in force
    except Exception as exc:  # a reload must never take the daemon down
        log.error("policy reload failed: %s", exc)


if __name__ == "__main__":
    sys.exit(main())
