"""Leases and batches against the bare endpoint, side by side in one run.

Prints ``key: value`` lines:

* ``lease_take_us`` — one guarded call (``with client.guard(..., lease=True)``)
  that spends from a held lease, in process, with the lease's batched reports
  going to the real daemon in the background (median of rounds).
* ``fleet_ratio`` — 32 agent processes spending through leases (each its own
  ``Client``; leases and reports from the real daemon): their guarded calls per
  second over the bare ASGI endpoint's requests per second at 32 connections.
* ``python_call_ns`` — an empty Python function call, measured in the same
  run: how fast this machine is just then (≈ 40 ns unloaded on this 2-core VM).
* ``batch_ratio`` — ``POST /v1/intents`` with 100 intents per request (decided,
  durably logged, one commit each): decisions per second over the bare
  endpoint's single-request rate, both at 32 connections.

Each ratio is the median of rounds that measure the bare endpoint and the
daemon seconds apart (this machine's speed drifts by up to 1.5× in minutes).

Usage: python bench/bench_leases.py [seconds-per-run] [rounds]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _harness import INTENT, free_port, start_daemon, wrk

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
AGENTS = 32
BATCH = 100
GUARD = {"identity": "id-bench", "resource": "requests", "lease": True}

#: One agent process: spend through leases for ``seconds`` after a short warm-up; print calls/s.
AGENT = """
import sys, time
from ratelord.client import Client
url, seconds, agent = sys.argv[1], float(sys.argv[2]), sys.argv[3]
guard = {"identity": "id-bench", "resource": "requests", "lease": True, "agent": agent}
with Client(url) as client:
    warm = time.monotonic() + 0.5
    while time.monotonic() < warm:
        with client.guard(**guard):
            pass
    calls, leased, started = 0, 0, time.monotonic()
    end = started + seconds
    while True:
        for _ in range(200):
            with client.guard(**guard) as g:
                leased += g.decision.intent_id.startswith("lease:")
        calls += 200
        now = time.monotonic()
        if now >= end:
            break
    print(calls / (now - started), leased / calls, flush=True)
"""


def lease_take_us(url: str) -> float:
    """Median µs of one leased guarded call, over rounds of 100,000."""
    from ratelord.client import Client

    with Client(url) as client:
        warm = time.monotonic() + 1.5  # the first lease is small; the next is sized by rate
        while time.monotonic() < warm:
            with client.guard(**GUARD):
                pass
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(100_000):
                with client.guard(**GUARD):
                    pass
            rounds.append((time.perf_counter() - started) / 100_000 * 1e6)
    return statistics.median(rounds)


def python_call_ns() -> float:
    """This interpreter's cost of one empty function call now: the machine's speed."""
    import timeit

    def noop() -> None:
        return None

    return min(timeit.repeat(noop, number=200_000, repeat=5)) / 200_000 * 1e9


def fleet(url: str, seconds: int) -> tuple[float, float]:
    """32 agents at once: total guarded calls per second, and the share served by leases."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", AGENT, url, str(seconds), f"agent-{i:02d}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(AGENTS)
    ]
    results = [proc.communicate()[0].split() for proc in procs]
    rates = [float(rate) for rate, _ in results]
    leased = statistics.mean(float(share) for _, share in results)
    return sum(rates), leased


def main() -> None:
    port = free_port()
    bare = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bare_asgi.py")), str(port)]
    )
    daemon = start_daemon()
    time.sleep(1.0)
    bare_url = f"http://127.0.0.1:{port}/"
    batch = {"intents": [INTENT] * BATCH}
    fleet_ratios, batch_ratios, takes, shares, calls = [], [], [], [], []
    fleet_rates, batch_rates, bare_rates = [], [], []
    try:
        wrk(bare_url, INTENT, connections=32, seconds=1)  # warm up both
        wrk(f"{daemon.url}/v1/intents", batch, connections=32, seconds=1)
        for _ in range(ROUNDS):
            base = wrk(bare_url, INTENT, connections=32, seconds=SECONDS)["rps"]
            batched = wrk(f"{daemon.url}/v1/intents", batch, connections=32, seconds=SECONDS)
            rate, share = fleet(daemon.url, SECONDS)
            takes.append(lease_take_us(daemon.url))
            calls.append(python_call_ns())
            bare_rates.append(base)
            fleet_rates.append(rate)
            batch_rates.append(batched["rps"] * BATCH)
            shares.append(share)
            fleet_ratios.append(rate / base)
            batch_ratios.append(batched["rps"] * BATCH / base)
        with daemon.client() as client:
            logged = client.get("/v1/health").json()["high_water_seq"]
            leases_now = client.get("/v1/leases").json()["leases"]
    finally:
        daemon.stop()
        bare.terminate()
        bare.wait()
    print(f"lease_take_us: {statistics.median(takes):.2f}")
    print(f"python_call_ns: {statistics.median(calls):.0f}")
    print(f"fleet_ratio: {statistics.median(fleet_ratios):.1f}")
    print(f"batch_ratio: {statistics.median(batch_ratios):.2f}")
    print(f"fleet_guarded_calls_per_second: {statistics.median(fleet_rates):.0f}")
    print(f"fleet_share_spent_from_leases: {statistics.median(shares):.4f}")
    print(f"batch_decisions_per_second: {statistics.median(batch_rates):.0f}")
    print(f"bare_requests_per_second: {statistics.median(bare_rates):.0f}")
    print(f"events_logged: {logged}")
    print(f"leases_left_after_the_agents_closed: {len(leases_now)}")
    rounds = ", ".join(f"{f:.1f}/{b:.2f}" for f, b in zip(fleet_ratios, batch_ratios, strict=True))
    print(f"rounds_fleet_batch: {json.dumps(rounds)}")


if __name__ == "__main__":
    main()
