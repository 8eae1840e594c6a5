"""What ``ratelord proxy`` costs a client: added latency and throughput.

Starts a fast OpenAI-shaped upstream (``openai_upstream.py``), ``ratelord-d``
with an identity registered by reference, and ``ratelord proxy`` in front of
the upstream; then, with wrk posting a chat completion:

- **added latency**, one connection, one request at a time: the proxy's
  p50/p99 minus the upstream's own, measured in alternating rounds (the
  machine's speed drifts) and reported as the median over rounds;
- **throughput** with 16 concurrent connections: upstream alone, through
  ratelord, and through LiteLLM's proxy (``litellm --config``) when the
  ``litellm`` command is installed (``LITELLM`` names it elsewhere), with
  LiteLLM's added latency (one round) and ratelord's throughput over LiteLLM's.

Every request through ratelord is asked for (an intent, durably logged) and
reported (its headers and usage) like any other.  Prints ``key: value`` lines.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from _harness import ROOT, free_port, make_daemon, wrk

KEY = "sk-bench-proxy-key-0000000000000000"
BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say ok."}],
    "max_tokens": 1,
}
AUTH = {"Authorization": f"Bearer {KEY}"}
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
BIN = Path(sys.executable).parent


def wait_listening(url: str, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start within {timeout:.0f} s")


def start_upstream() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "openai_upstream.py"), str(port)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_listening(url, proc, "the upstream")
    return proc, url


def start_ratelord(upstream: str, workdir: Path) -> tuple[object, subprocess.Popen, str]:
    daemon = make_daemon(
        workdir / "daemon",
        config={"store": {"snapshot_every_events": 10_000_000}},
        args=["--log-level", "warning"],
        env={"OPENAI_API_KEY": KEY},
    ).start()
    with daemon.client() as client:
        client.post(
            "/v1/identities",
            json={
                "identity_id": "openai:bench",
                "provider_id": "openai",
                "principal": "bench",
                "secret_ref": "env:OPENAI_API_KEY",
            },
        ).raise_for_status()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATELORD_")}
    proc = subprocess.Popen(
        [
            str(BIN / "ratelord"),
            "--url",
            daemon.url,
            "proxy",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--upstream",
            f"openai=openai:{upstream}",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_listening(url, proc, "ratelord proxy")
    return daemon, proc, url


def start_litellm(upstream: str, workdir: Path) -> tuple[subprocess.Popen, str] | None:
    command = os.environ.get("LITELLM") or shutil.which("litellm")
    if command is None:
        return None
    config = workdir / "litellm.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {
                        "model_name": "gpt-4o-mini",
                        "litellm_params": {
                            "model": "openai/gpt-4o-mini",
                            "api_base": f"{upstream}/v1",
                            "api_key": KEY,
                        },
                    }
                ],
                "litellm_settings": {"num_retries": 0, "telemetry": False},
                # clients present the bench key; a local, throwaway proxy
                "general_settings": {
                    "master_key": KEY,
                    "dangerously_permit_weak_or_unset_master_key": True,
                },
            }
        )
    )
    port = free_port()
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION"}
    proc = subprocess.Popen(
        [command, "--config", str(config), "--port", str(port), "--num_workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_listening(f"{url}/health/liveliness", proc, "litellm", timeout=240)
    return proc, url


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ratelord-bench-proxy-"))
    upstream, upstream_url = start_upstream()
    daemon, proxy, proxy_url = start_ratelord(upstream_url, workdir)
    litellm = start_litellm(upstream_url, workdir)
    direct = f"{upstream_url}/v1/chat/completions"
    through = f"{proxy_url}/openai/v1/chat/completions"
    try:
        for url in (direct, through):  # warm up connections, caches and the pools
            wrk(url, BODY, connections=1, seconds=1, headers=AUTH)
        p50s, p99s, base50, base99 = [], [], [], []
        for _ in range(ROUNDS):
            alone = wrk(direct, BODY, connections=1, seconds=SECONDS, headers=AUTH)
            proxied = wrk(through, BODY, connections=1, seconds=SECONDS, headers=AUTH)
            if proxied["err"]:
                raise SystemExit(f"{proxied['err']:.0f} failed requests through the proxy")
            base50.append(alone["p50"])
            base99.append(alone["p99"])
            p50s.append(proxied["p50"] - alone["p50"])
            p99s.append(proxied["p99"] - alone["p99"])
        print(f"upstream_alone_p50_ms: {statistics.median(base50):.3f}")
        print(f"upstream_alone_p99_ms: {statistics.median(base99):.3f}")
        print(f"added_latency_p50_ms: {statistics.median(p50s):.3f}")
        print(f"added_latency_p99_ms: {statistics.median(p99s):.3f}")
        print(f"added_latency_p50_ms_rounds: {', '.join(f'{v:.2f}' for v in p50s)}")
        print(f"added_latency_p99_ms_rounds: {', '.join(f'{v:.2f}' for v in p99s)}")
        targets = {"upstream_alone": direct, "ratelord": through}
        if litellm is not None:
            targets["litellm"] = f"{litellm[1]}/v1/chat/completions"
            wrk(targets["litellm"], BODY, connections=1, seconds=2, headers=AUTH)
            alone = wrk(direct, BODY, connections=1, seconds=SECONDS, headers=AUTH)
            proxied = wrk(targets["litellm"], BODY, connections=1, seconds=SECONDS, headers=AUTH)
            print(f"litellm_added_latency_p50_ms: {proxied['p50'] - alone['p50']:.3f}")
            print(f"litellm_added_latency_p99_ms: {proxied['p99'] - alone['p99']:.3f}")
        rps = {}
        for name, url in targets.items():
            result = wrk(url, BODY, connections=16, seconds=SECONDS, threads=2, headers=AUTH)
            rps[name] = result["rps"]
            print(f"{name}_16_clients_rps: {result['rps']:.0f}")
            print(f"{name}_16_clients_p50_ms: {result['p50']:.2f}")
            print(f"{name}_16_clients_p99_ms: {result['p99']:.2f}")
            print(f"{name}_16_clients_errors: {result['err']:.0f}")
        if litellm is None:
            print("litellm: not installed (pip install 'litellm[proxy]' to compare)")
        elif rps["litellm"] > 0:
            print(f"ratelord_vs_litellm_16_clients: {rps['ratelord'] / rps['litellm']:.1f}")
    finally:
        for proc in (proxy, upstream, *([litellm[0]] if litellm else [])):
            proc.terminate()
            proc.wait(timeout=15)
        daemon.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
