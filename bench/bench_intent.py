"""POST /v1/intent end to end (decision durably logged), default policy.

Prints: light-load latency (one sequential client), throughput and latency under
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
        light = sequential_latencies(url, INTENT, 2000)
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
    dump(
        "intent_light_load_ms",
        {
            "p50": round(percentile(light, 50), 3),
            "p99": round(percentile(light, 99), 3),
            "max": round(max(light), 3),
        },
    )
    dump("intent_32_connections", {**loaded, "events_logged": events})
    dump("bare_asgi_32_connections", baseline)
    print(f"ratio: {loaded['rps'] / baseline['rps']:.1%} of the bare endpoint")


if __name__ == "__main__":
    main()
