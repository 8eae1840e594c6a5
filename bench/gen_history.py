"""Write a recorded history for the web UI's benchmarks: 30 days, about 1,000,000 events.

Usage: python bench/gen_history.py DB [--days 30] [--scale 0.35]

The agents' load follows the working day and surges on some days (see
``ratelord.history.synth``); every event is made by the real engine.  Start a daemon
on the result with ``ratelord-d --db DB`` and open http://127.0.0.1:8090/ui.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ratelord.history.synth import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.db.exists():
        parser.error(f"{args.db} exists; give a new path")
    started = time.perf_counter()
    events = generate(args.db, days=args.days, scale=args.scale, seed=args.seed, progress=True)
    seconds = time.perf_counter() - started
    print(f"events: {events}")
    print(f"days: {args.days:g}")
    print(f"generate_seconds: {seconds:.1f}")
    print(f"db_bytes: {args.db.stat().st_size}")


if __name__ == "__main__":
    main()
