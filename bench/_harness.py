"""Shared bits of the benchmarks: start a real daemon, run wrk, parse its numbers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.daemon import RunningDaemon, free_port, make_daemon  # noqa: E402

__all__ = ["free_port"]

BENCH_CONFIG = {
    "providers": {
        "mock": {
            "poll_interval_seconds": 5,
            "principals": {
                "acct-1": {"pools": {"requests": {"limit": 1e12, "window_seconds": 3600}}}
            },
        }
    },
    "store": {"snapshot_every_events": 10_000_000},
}
INTENT = {"agent_id": "bench", "identity_id": "id-bench", "resource": "requests", "cost": 1}


def start_daemon(config: dict | None = None, command: list[str] | None = None) -> RunningDaemon:
    """A daemon with the bench identity registered and its pool observed."""
    workdir = Path(tempfile.mkdtemp(prefix="ratelord-bench-"))
    daemon = make_daemon(
        workdir, config=config or BENCH_CONFIG, args=["--log-level", "warning"], command=command
    )
    daemon.start()
    with daemon.client() as client:
        client.post(
            "/v1/identities",
            json={"identity_id": "id-bench", "provider_id": "mock", "principal": "acct-1"},
        ).raise_for_status()
        deadline = time.monotonic() + 10
        while not client.get("/v1/pools").json()["pools"] and time.monotonic() < deadline:
            time.sleep(0.05)
    return daemon


def wrk(
    url: str,
    body: dict,
    *,
    connections: int,
    seconds: int,
    threads: int = 1,
    headers: dict[str, str] | None = None,
) -> dict:
    """Run wrk posting ``body`` (with ``headers``); returns requests/s and latency
    percentiles (ms)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [[{json.dumps(body)}]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
        + "done = function(summary, latency, requests)\n"
        '  io.write(string.format("P50=%f P90=%f P99=%f MAX=%f ERR=%d\\n",'
        " latency:percentile(50)/1000, latency:percentile(90)/1000,"
        " latency:percentile(99)/1000, latency.max/1000,"
        " summary.errors.status + summary.errors.connect + summary.errors.timeout))\n"
        "end\n"
    )
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    stats = dict(re.findall(r"(P50|P90|P99|MAX|ERR)=([\d.]+)", out))
    return {"rps": rps, **{k.lower(): float(v) for k, v in stats.items()}}


def sequential_latencies(url: str, body: dict, n: int) -> list[float]:
    """One client, one request at a time: the light-load latency an agent sees (ms)."""
    with httpx.Client() as client:
        for _ in range(50):
            client.post(url, json=body)
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            client.post(url, json=body).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def dump(name: str, data: dict) -> None:
    print(yaml.safe_dump({name: data}, sort_keys=False).rstrip())
