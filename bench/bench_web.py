"""The web UI's long view on a 1,000,000-event log: page, history query, time travel, replay.

Usage: python bench/bench_web.py DB   (a history from bench/gen_history.py; copied, never changed)

Prints ``key: value`` lines: how long the daemon takes to index the log once, the
dashboard's 30-day view in headless Chromium (navigation start → charts drawn), the
history aggregate query, the state at random instants, and a 24-hour replay under a
new policy.
"""

from __future__ import annotations

import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _harness import make_daemon

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NEW_POLICY = """
policies:
  - id: stricter
    target: global
    kind: soft
    rules:
      - name: shed-background-early
        when: 'risk.p_exhaustion > 0.25 && intent.urgency == "background"'
        action: deny
      - name: pace-above-70-percent
        when: 'pool.utilization > 0.7 && intent.urgency != "high"'
        action: shape
"""


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    source = Path(sys.argv[1])
    workdir = Path(tempfile.mkdtemp(prefix="ratelord-web-bench-"))
    daemon = make_daemon(workdir, args=["--log-level", "warning"])
    shutil.copy(source, daemon.db_path)
    boot, _ = timed(lambda: daemon.start().wait_ready(timeout=120))
    print(f"boot_seconds: {boot:.2f}")
    http = httpx.Client(base_url=daemon.url, timeout=120)
    try:
        status = http.get("/v1/history/status").json()
        print(f"events: {status['high_water_seq']}")
        started = time.perf_counter()
        while not http.get("/v1/history/status").json()["ready"]:
            time.sleep(0.2)
        while http.get("/v1/history/status").json()["indexed_seq"] < status["high_water_seq"]:
            time.sleep(0.2)
        print(f"index_build_seconds: {time.perf_counter() - started:.1f}")
        print(f"index_checkpoints: {http.get('/v1/history/status').json()['checkpoints']}")
        rss = Path(f"/proc/{daemon.proc.pid}/status").read_text()  # type: ignore[union-attr]
        print(f"daemon_rss_mb: {int(rss.split('VmRSS:')[1].split()[0]) // 1024}")

        query = {"since": "30d", "bucket": "3600"}
        times = [timed(lambda: http.get("/v1/history", params=query).raise_for_status())[0]]
        times += [timed(lambda: http.get("/v1/history", params=query))[0] for _ in range(19)]
        print(f"history_30d_ms_median: {1000 * statistics.median(times):.1f}")
        print(f"history_30d_ms_max: {1000 * max(times):.1f}")
        fine = {"since": "7d", "bucket": "300"}
        times = [timed(lambda: http.get("/v1/history", params=fine))[0] for _ in range(10)]
        print(f"history_7d_5min_ms_median: {1000 * statistics.median(times):.1f}")

        history = http.get("/v1/history", params=query).json()
        first, last = history["first_ts"], history["last_ts"]
        rng = random.Random(1)
        instants = [rng.uniform(first, last) for _ in range(10)]
        times = []
        for at in instants:
            seconds, response = timed(
                lambda at=at: http.get("/v1/history/state", params={"at": at})
            )
            response.raise_for_status()
            times.append(seconds)
        print(f"state_at_seconds_median: {statistics.median(times):.2f}")
        print(f"state_at_seconds_max: {max(times):.2f}")

        body = {"since": "24h", "policy": NEW_POLICY}
        seconds, response = timed(lambda: http.post("/v1/replay", json=body))
        response.raise_for_status()
        result = response.json()
        print(f"replay_24h_new_policy_seconds: {seconds:.2f}")
        print(f"replay_24h_events_read: {result['events_read']}")
        print(f"replay_24h_intents: {result['baseline']['intents']}")
        print(f"replay_denial_rate_recorded: {result['baseline']['denial_rate']}")
        print(f"replay_denial_rate_new_policy: {result['scenario']['denial_rate']}")

        dashboard(daemon.url)
    finally:
        http.close()
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def dashboard(url: str) -> None:
    """Navigation start → the 30-day charts drawn (the page's ``charts-drawn`` mark)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        marks = []
        for _ in range(6):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/ui/dashboard?range=30d")
            page.wait_for_selector("main[data-ready=true]", timeout=60_000)
            marks.append(
                page.evaluate("performance.getEntriesByName('charts-drawn')[0].startTime") / 1000
            )
            page.close()
        browser.close()
    print(f"dashboard_30d_first_seconds: {marks[0]:.3f}")
    print(f"dashboard_30d_seconds_median: {statistics.median(marks[1:]):.3f}")
    print(f"dashboard_30d_seconds_max: {max(marks[1:]):.3f}")


if __name__ == "__main__":
    main()
