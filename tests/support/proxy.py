"""Start the real ``ratelord proxy`` process in front of a running ``ratelord-d``."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.daemon import BIN, TLS, RunningDaemon, free_port


@dataclass
class RunningProxy:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=15)


def start_proxy(
    daemon: RunningDaemon,
    upstreams: dict[str, dict[str, Any]],
    workdir: Path,
    **settings: Any,
) -> RunningProxy:
    """``ratelord proxy`` on a free port with ``upstreams`` (name → settings); ready when
    it answers."""
    port = free_port()
    config = workdir / "proxy.yaml"
    config.write_text(yaml.safe_dump({"port": port, "upstreams": upstreams, **settings}))
    log_path = workdir / f"proxy-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATELORD_")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "ratelord"), "--url", daemon.url, "proxy", "--config", str(config)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proxy = RunningProxy(proc, port, log_path)
    deadline = time.monotonic() + 20
    with httpx.Client(timeout=1.0, verify=TLS) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                code = proc.returncode
                raise RuntimeError(f"ratelord proxy exited with {code}:\n{proxy.logs()}")
            try:
                http.get(f"{proxy.url}/-/ready")
                return proxy
            except httpx.HTTPError:
                time.sleep(0.05)
    proxy.stop()
    raise TimeoutError(f"ratelord proxy not listening after 20 s:\n{proxy.logs()}")
