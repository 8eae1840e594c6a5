"""Start the real ``ratelord-d`` process on a free port with a temporary database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

BIN = Path(sys.executable).parent
T = TypeVar("T")
#: The TLS settings every test client shares: a new ``httpx.Client`` otherwise loads the CA
#: bundle (about 45 ms of CPU), and the suite makes thousands of them, many in 50-ms polls.
TLS = httpx.create_ssl_context()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningDaemon:
    """A ``ratelord-d`` process under test.  ``restart()`` reuses the database and port."""

    workdir: Path
    db_path: Path
    port: int
    args: list[str]
    env: dict[str, str]
    #: what to run instead of ``ratelord-d`` (the benchmarks' patched daemons)
    command: list[str] = field(default_factory=lambda: [str(BIN / "ratelord-d")])
    proc: subprocess.Popen[bytes] | None = None
    log_paths: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, **{"timeout": 10.0, "verify": TLS, **kwargs})

    def start(self, wait: bool = True) -> RunningDaemon:
        log_path = self.workdir / f"daemon-{len(self.log_paths)}.log"
        self.log_paths.append(log_path)
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*self.command, *self.args],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        with self.client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    code = self.proc.returncode
                    raise RuntimeError(f"ratelord-d exited with {code}:\n{self.logs()}")
                try:
                    health = http.get("/v1/health").json()
                    if health["status"] not in ("initializing",):
                        return health
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    last = exc
                time.sleep(0.05)
        raise TimeoutError(f"ratelord-d not ready after {timeout}s ({last}):\n{self.logs()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the daemon and wait for it to exit.

        A graceful stop may wait up to uvicorn's 10 s for open connections, then
        writes its last snapshot: on a machine the other xdist workers load, that
        has taken more than 15 s.  A timeout names the daemon's log.
        """
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(
                f"ratelord-d still running {timeout}s after {sig}:\n{self.logs()}"
            ) from exc

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def restart(self) -> RunningDaemon:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        return self.start()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def make_daemon(
    workdir: Path,
    *,
    config: dict[str, Any] | None = None,
    policy: str | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    command: list[str] | None = None,
) -> RunningDaemon:
    """Prepare (not start) a daemon in ``workdir`` with optional config and policy files."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    db_path = workdir / "ratelord.db"
    argv = ["--port", str(port), "--db", str(db_path), "--log-format", "json"]
    if config is not None:
        config_path = workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        argv += ["--config", str(config_path)]
    if policy is not None:
        policy_path = workdir / "policy.yaml"
        policy_path.write_text(policy)
        argv += ["--policy", str(policy_path)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RATELORD_")}
    full_env.update(env or {})
    daemon = RunningDaemon(workdir, db_path, port, argv + list(args or []), full_env)
    if command is not None:
        daemon.command = command
    return daemon


def wait_for(check: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def events(http: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    """Every event of the log matching ``filters`` (``type=...``, ``pool_id=...``), in order."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = http.get("/v1/events", params={"after_seq": after, "limit": 1000, **filters})
        page.raise_for_status()
        batch = page.json()["events"]
        found += batch
        if len(batch) < 1000:
            return found
        after = batch[-1]["seq"]


def register(
    http: httpx.Client, identity_id: str, principal: str, provider_id: str = "mock", **extra: Any
) -> dict[str, Any]:
    """Register an identity and return it (asserting 201)."""
    body = {"identity_id": identity_id, "provider_id": provider_id, "principal": principal, **extra}
    response = http.post("/v1/identities", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def pool(http: httpx.Client, pool_id: str) -> dict[str, Any] | None:
    """The pool as ``GET /v1/pools/{id}`` shows it, or None while it is unknown."""
    response = http.get(f"/v1/pools/{pool_id}")
    return None if response.status_code == 404 else dict(response.json())


def github_headers(remaining: int, reset_in: float = 3600.0) -> dict[str, str]:
    """GitHub rate-limit headers (limit 5000, resource ``core``) an agent reports after a call.

    Reported through ``POST /v1/usage`` they create and update a pool without any
    poller, so nothing but the test's own requests changes the daemon's state.
    """
    return {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-used": str(5000 - remaining),
        "x-ratelimit-reset": str(int(time.time() + reset_in)),
        "x-ratelimit-resource": "core",
    }
