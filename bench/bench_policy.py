"""Microseconds per policy evaluation: the built-in policy and a 20-rule policy.

Run: .venv/bin/python bench/bench_policy.py
"""

from __future__ import annotations

import itertools
import os
import random
import statistics
import time
import timeit
from typing import Any

from ratelord.engine.policy import CompiledPolicy, default_policy, load_policy_text
from ratelord.engine.policy.variables import example_context

INF = float("inf")
CALM = example_context({"identity.labels": {"team": "infra", "tier": "gold"}})
HOT = example_context(
    {
        "intent.urgency": "background",
        "pool.remaining": 90.0,
        "pool.utilization": 0.98,
        "tte.p50": 900.0,
        "tte.p99": 400.0,
        "tte.p99_with_intent": 390.0,
        "risk.p_exhaustion": 0.8,
        "risk.p_exhaustion_with_intent": 0.995,
        "margin.seconds": -1400.0,
        "margin.with_intent_seconds": -1410.0,
    }
)

#: 20 rules over 5 policies, reading 17 different fields, labels included.
TWENTY_RULES = """
policies:
  - id: safety
    kind: hard
    rules:
      - name: certain
        when: 'risk.p_exhaustion_with_intent > 0.99 && intent.urgency != "high"'
        action: defer
        priority: 100
      - name: low-floor
        when: 'pool.remaining < 100 && intent.urgency != "high"'
        action: deny
        priority: 90
      - name: degraded
        when: 'provider.status == "degraded" && intent.urgency == "background"'
        action: defer
      - {name: system, when: 'system.status == "degraded" && intent.cost > 50', action: defer}
  - id: shaping
    rules:
      - name: background
        when: 'risk.p_exhaustion > 0.5 && intent.urgency == "background"'
        action: deny
        priority: 50
      - name: pace
        when: 'margin.with_intent_seconds < 0 && intent.urgency != "high"'
        action: shape
        priority: 10
      - {name: smooth, when: 'pool.utilization > 0.8', action: shape, params: {wait_seconds: 2}}
      - name: big
        when: 'intent.cost > pool.limit * 0.05'
        action: shape
        params: {min_wait_seconds: 1, max_wait_seconds: 30}
      - {name: tte, when: 'tte.p99 < pool.seconds_to_reset / 2', action: shape}
      - {name: p90, when: 'tte.p90 < 60', action: defer}
  - id: fairness
    target: pool:github:*
    rules:
      - name: hog
        when: 'identity.burn_share > 0.8 && risk.p_exhaustion > 0.2'
        action: switch_identity
      - {name: agent-hog, when: 'agent.burn_share > 0.5 && risk.p_exhaustion > 0.2', action: shape}
      - {name: crawler, when: 'agent.role == "crawler" && pool.utilization > 0.9', action: defer}
      - name: gold
        when: 'has(identity.labels.tier) && identity.labels.tier == "bronze"'
        action: shape
  - id: hours
    target: agent:crawler-*
    rules:
      - name: office
        when: 'time.hour >= 9 && time.hour < 17 && time.weekday < 5 && pool.utilization > 0.7'
        action: shape
      - {name: weekend, when: 'time.weekday >= 5 && intent.urgency == "low"', action: defer}
      - {name: prod, when: '"env" in agent.labels && agent.labels.env == "staging"', action: deny}
  - id: scoped
    target: scope:repo:acme/*
    rules:
      - name: scan
        when: 'intent.workload_id == "repo_scan" && pool.remaining < 500'
        action: defer
      - {name: unit, when: 'pool.remaining - intent.cost < 200', action: shape}
      - {name: margin, when: 'margin.seconds < -600', action: defer}
"""


def stream(count: int = 64, seed: int = 7) -> list[dict[str, Any]]:
    """Varied contexts: 3 agents, 4 pools, moving budgets and risk, mixed urgency."""
    rng = random.Random(seed)
    contexts = []
    for _ in range(count):
        remaining = rng.uniform(0, 5000)
        risk = rng.random()
        tte = rng.choice([INF, rng.uniform(60, 7200)])
        contexts.append(
            {
                **CALM,
                "intent": {
                    **CALM["intent"],
                    "agent_id": rng.choice(["crawler-01", "crawler-02", "indexer"]),
                    "urgency": rng.choice(["background", "low", "normal", "high"]),
                    "cost": float(rng.choice([1, 1, 1, 10])),
                },
                "pool": {
                    **CALM["pool"],
                    "id": rng.choice(
                        [
                            "github:core:user/alice",
                            "github:search:user/alice",
                            "github:core:org/acme",
                            "openai:tokens:acct-1",
                        ]
                    ),
                    "remaining": remaining,
                    "utilization": 1 - remaining / 5000,
                },
                "tte": {"p50": tte, "p90": tte, "p99": tte, "p99_with_intent": tte},
                "risk": {"p_exhaustion": risk, "p_exhaustion_with_intent": min(1.0, risk * 1.01)},
                "margin": {"seconds": tte - 1800, "with_intent_seconds": tte - 1801},
            }
        )
    return contexts


def per_evaluation_us(
    policy: CompiledPolicy, contexts: list[dict[str, Any]]
) -> tuple[float, float]:
    """(best, median) µs per evaluation over 7 runs cycling through ``contexts``.

    CPU time of this process, not wall time: on a shared machine the wall clock
    also counts the time other processes held the CPU.
    """
    number = 200 * len(contexts)
    cycle = itertools.cycle(contexts)
    runs = timeit.repeat(
        lambda: policy.evaluate(next(cycle)), number=number, repeat=7, timer=time.process_time
    )
    return min(runs) / number * 1e6, statistics.median(runs) / number * 1e6


def main() -> None:
    twenty = load_policy_text(TWENTY_RULES, "bench-20-rules")
    assert len(twenty.rules) == 21  # 20 + the physical floor
    workloads = {
        "same context each time": [CALM],
        "alternating calm/hot": [CALM, HOT],
        "stream of 64 varied": stream(),
    }
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; CPU µs per evaluation")
    for name, policy in (("default (2 rules + floor)", default_policy()), ("20 rules", twenty)):
        native = len(policy.rules) - len(policy.cel_rules)
        print(f"{name}: {native} of {len(policy.rules)} conditions run natively, the others by CEL")
        for label, contexts in workloads.items():
            best, median = per_evaluation_us(policy, contexts)
            print(f"{name:26} {label:24} best {best:6.1f}  median {median:6.1f}")


if __name__ == "__main__":
    main()
