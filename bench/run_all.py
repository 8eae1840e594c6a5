"""Run every benchmark in turn (``make bench``); each prints its own numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    "bench_engine.py",
    "bench_events.py",
    "bench_policy.py",
    "bench_intent.py",
    "bench_ladder.py",
    "bench_store.py",
    "bench_retention.py",
    "bench_sim.py",
    "bench_proxy.py",
]

for script in SCRIPTS:
    path = HERE / script
    if not path.exists():
        continue
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(path)], cwd=HERE, check=True)
