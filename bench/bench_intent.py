"""POST /v1/intent end to end (decision durably logged), default policy.

Prints: light-load latency (wrk on one connection, and a Python httpx client
asking one at a time, which adds its own overhead), throughput and latency under
32 concurrent connections, and a bare ASGI endpoint on the same server stack
with the ratio.

This machine's speed drifts by up to 1.5× within minutes, so the daemon and the
bare endpoint run side by side and are measured in alternating rounds; each
round's ratio compares two runs seconds apart, and the medians are reported.

Usage: python bench/bench_intent.py [seconds-per-run] [rounds]
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _harness import INTENT, dump, free_port, percentile, sequential_latencies, start_daemon, wrk

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def median_of(runs: list[dict], key: str) -> float:
    return round(statistics.median(run[key] for run in runs), 3)


def latency_buckets(client) -> dict[str, float]:
    """The daemon's own intent-latency histogram (cumulative counts by upper bound)."""
    text = client.get("/metrics").text
    found = re.findall(r'ratelord_intent_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', text)
    return {le: float(count) for le, count in found}


def main() -> None:
    port = free_port()
    bare = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bare_asgi.py")), str(port)]
    )
    daemon = start_daemon()
    time.sleep(1.0)
    url, bare_url = f"{daemon.url}/v1/intent", f"http://127.0.0.1:{port}/"
    light: list[dict] = []
    loaded: list[dict] = []
    baseline: list[dict] = []
    try:
        wrk(url, INTENT, connections=32, seconds=1)  # warm up both
        wrk(bare_url, INTENT, connections=32, seconds=1)
        inside = dict.fromkeys(("0.001", "0.002", "+Inf"), 0.0)
        for _ in range(ROUNDS):
            baseline.append(wrk(bare_url, INTENT, connections=32, seconds=SECONDS))
            loaded.append(wrk(url, INTENT, connections=32, seconds=SECONDS))
            with daemon.client() as client:
                before = latency_buckets(client)
                light.append(wrk(url, INTENT, connections=1, seconds=SECONDS))
                after = latency_buckets(client)
            for le in inside:
                inside[le] += after[le] - before[le]
        from_python = sequential_latencies(url, INTENT, 2000)
        with daemon.client() as client:
            events = client.get("/v1/health").json()["high_water_seq"]
    finally:
        daemon.stop()
        bare.terminate()
        bare.wait()
    ratios = [run["rps"] / base["rps"] for run, base in zip(loaded, baseline, strict=True)]
    dump(
        "intent_one_connection_ms",
        {key: median_of(light, key) for key in ("p50", "p90", "p99", "max")}
        | {"rps": median_of(light, "rps"), "p99_per_round": [run["p99"] for run in light]},
    )
    dump(
        "intent_one_connection_inside_the_daemon",
        {
            "under_1ms": f"{inside['0.001'] / inside['+Inf']:.2%}",
            "under_2ms": f"{inside['0.002'] / inside['+Inf']:.2%}",
        },
    )
    dump(
        "intent_one_httpx_client_ms",
        {
            "p50": round(percentile(from_python, 50), 3),
            "p99": round(percentile(from_python, 99), 3),
        },
    )
    dump(
        "intent_32_connections",
        {key: median_of(loaded, key) for key in ("rps", "p50", "p99")} | {"events_logged": events},
    )
    dump(
        "bare_asgi_32_connections", {key: median_of(baseline, key) for key in ("rps", "p50", "p99")}
    )
    rounds = ", ".join(f"{ratio:.1%}" for ratio in ratios)
    print(f"ratio: {statistics.median(ratios):.1%} of the bare endpoint (rounds: {rounds})")


if __name__ == "__main__":
    main()
