"""POST /v1/intent end to end (decision durably logged), default policy.

Prints: light-load latency (wrk on one connection, and a Python httpx client
asking one at a time, which adds its own overhead), throughput and latency under
32 concurrent connections, and a bare ASGI endpoint on the same server stack
measured in the same run, with the ratio.   Usage: python bench/bench_intent.py [seconds]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from _harness import INTENT, dump, free_port, percentile, sequential_latencies, start_daemon, wrk

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10


def main() -> None:
    daemon = start_daemon()
    try:
        url = f"{daemon.url}/v1/intent"
        light = wrk(url, INTENT, connections=1, seconds=SECONDS)
        from_python = sequential_latencies(url, INTENT, 2000)
        loaded = wrk(url, INTENT, connections=32, seconds=SECONDS)
        with daemon.client() as client:
            events = client.get("/v1/health").json()["high_water_seq"]
    finally:
        daemon.stop()
    port = free_port()
    bare = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bare_asgi.py")), str(port)]
    )
    time.sleep(1.5)
    try:
        baseline = wrk(f"http://127.0.0.1:{port}/", INTENT, connections=32, seconds=SECONDS)
    finally:
        bare.terminate()
        bare.wait()
    dump("intent_one_connection_ms", light)
    dump(
        "intent_one_httpx_client_ms",
        {
            "p50": round(percentile(from_python, 50), 3),
            "p99": round(percentile(from_python, 99), 3),
        },
    )
    dump("intent_32_connections", {**loaded, "events_logged": events})
    dump("bare_asgi_32_connections", baseline)
    print(f"ratio: {loaded['rps'] / baseline['rps']:.1%} of the bare endpoint")


if __name__ == "__main__":
    main()
