"""Where the time of POST /v1/intent goes: one layer at a time, against the bare endpoint.

Six servers run side by side: the bare ASGI endpoint, four copies of ratelord-d with
the top layers of the intent path cut off (see _ladder_daemon.py), and ratelord-d
itself.  Each round runs wrk with 32 connections against every layer in turn
(rotating the order), each right after a run against the bare endpoint, so each
ratio compares two runs seconds apart on a machine whose speed drifts.

A layer's cost is counted in bare requests: a server at ratio r spends 1/r bare
requests' time per request, and a layer costs the difference from the one below it.
The ≥ 50 % target leaves one bare request's time for all of ratelord.

Usage: python bench/bench_ladder.py [seconds-per-run] [rounds]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from _harness import INTENT, free_port, start_daemon, wrk

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 6
HERE = Path(__file__).parent

#: (name, what the layer adds, patched layer or None for the real daemon)
LADDER = [
    ("process", "the daemon process, answered in front of its app", "process"),
    ("app", "ratelord's ASGI app: request id, router, histogram", "app"),
    ("codec", "decode + validate the intent, encode + count a decision", "codec"),
    ("commit", "durable append of the intent's events (group commit)", "commit"),
    ("full", "the engine's decision (arbitration, forecast, policy)", None),
]


def main() -> None:
    port = free_port()
    bare = subprocess.Popen([sys.executable, str(HERE / "bare_asgi.py"), str(port)])
    daemons = {
        name: start_daemon(
            command=[sys.executable, str(HERE / "_ladder_daemon.py"), layer] if layer else None
        )
        for name, _, layer in LADDER
    }
    time.sleep(1.0)
    bare_url = f"http://127.0.0.1:{port}/"
    ratios: dict[str, list[float]] = {name: [] for name, _, _ in LADDER}
    bare_rps: list[float] = []
    try:
        for daemon in daemons.values():
            wrk(f"{daemon.url}/v1/intent", INTENT, connections=32, seconds=1)
        wrk(bare_url, INTENT, connections=32, seconds=1)
        for round_ in range(ROUNDS):
            order = list(daemons.items())
            order = order[round_ % len(order) :] + order[: round_ % len(order)]
            for name, daemon in order:
                base = wrk(bare_url, INTENT, connections=32, seconds=SECONDS)["rps"]
                run = wrk(f"{daemon.url}/v1/intent", INTENT, connections=32, seconds=SECONDS)
                bare_rps.append(base)
                ratios[name].append(run["rps"] / base)
            print(f"round {round_ + 1}/{ROUNDS} done", file=sys.stderr)
    finally:
        for daemon in daemons.values():
            daemon.stop()
        bare.terminate()
        bare.wait()
    bare_us = 1e6 / statistics.median(bare_rps)
    print(f"bare endpoint: {statistics.median(bare_rps):,.0f} req/s (≈ {bare_us:.0f} µs each)")
    print(f"{'layer':8} {'ratio':>6} {'cost':>6} {'+layer':>7} {'≈ µs':>5}  adds")
    below = [1.0] * ROUNDS
    for name, adds, _ in LADDER:
        costs = [1 / ratio for ratio in ratios[name]]
        step = statistics.median(c - b for c, b in zip(costs, below, strict=True))
        print(
            f"{name:8} {statistics.median(ratios[name]):6.1%} {statistics.median(costs):6.2f}"
            f" {step:+7.2f} {step * bare_us:5.0f}  {adds}"
        )
        below = costs
    print("(cost: bare requests' time per request; the 50 % target is a cost of 2.00)")


if __name__ == "__main__":
    main()
