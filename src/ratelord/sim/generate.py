"""A search for failures: random but realistic scenarios, and the goals every one must meet.

:func:`generate` draws one scenario of a workload class (the nine of issue 13:
a late burst, small costly pools, spilling to other accounts, unseen
consumers, urgent work at the end of a window, demand that stops, a burst on a
fresh pool, clients that only learn at the reset, many agents; and intents
that draw on several pools at once) from a seed, sprinkled with what real
providers do: windows that do not line up with the run's start, resets that
come late, early or wander, limits that change (up and down, once or twice),
costs that differ from the estimate, call latency, urgent deadlines, a daemon
restart.

:func:`judge` runs it under ratelord and the baselines and lists every goal
missed: an honest 429; a window whose demand exceeded what it offered, used
below 97 %; urgent work served within its deadline below 99 %; units of work
done (by agents and by consumers behind ratelord's back) below 95 % of the best
baseline's.  ``tests/unit/test_sim_search.py`` runs a few seeds of each in CI
and ``bench/search_sim.py`` many more offline; a failure found is shrunk by
hand into ``scenarios/``.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Any

import msgspec

from ratelord.sim.report import Report
from ratelord.sim.runner import run_scenario
from ratelord.sim.scenario import Scenario, scenario_from_data
from ratelord.sim.strategies import StrategyName

UTILISATION_GOAL = 0.97
URGENT_GOAL = 0.99
WORK_GOAL = 0.95
BASELINES: tuple[StrategyName, ...] = ("none", "token-bucket")

Data = dict[str, Any]


def _pool(rng: Random, limit: float, window: float, *, cuts: bool = True) -> Data:
    pool: Data = {"limit": limit, "window_seconds": window}
    if rng.random() < 0.5:  # windows that do not line up with the run's start
        pool["first_reset_seconds"] = round(rng.uniform(0.2, 1.0) * window, 1)
    if rng.random() < 0.3:  # resets that come late or early, or wander
        pool["reset_jitter_seconds"] = round(rng.uniform(0, 0.01) * window, 1)
        pool["reset_shift_seconds"] = round(rng.uniform(-0.002, 0.005) * window, 1)
    if rng.random() < 0.25:  # the provider changes the limit mid-run, once or more, up or down
        factors = [0.5, 0.8, 1.25, 1.5, 2.0] if cuts else [1.25, 1.5, 2.0]
        changes = sorted(rng.uniform(0.2, 1.8) * window for _ in range(rng.choice([1, 1, 2])))
        chosen = [rng.choice(factors) for _ in changes]
        if not cuts:  # each change relative to the base: no cuts means every one a raise
            chosen.sort()
        pool["limits"] = [
            {"at": round(at), "limit": round(limit * factor)}
            for at, factor in zip(changes, chosen, strict=True)
        ]
    return pool


def _agents(rng: Random, name: str, identity: str, **fields: Any) -> Data:
    group: Data = {"name": name, "identities": [identity], "resource": "requests", **fields}
    if group["resource"] is None:
        del group["resource"]
    if rng.random() < 0.3:
        group["actual_cost_factor"] = {"min": 0.8, "max": 1.2}
    if rng.random() < 0.3:
        group["latency_seconds"] = round(rng.uniform(0.05, 2.0), 2)
    return group


def _greedy(rng: Random, count: int, **fields: Any) -> Data:
    think = round(rng.uniform(0.5, 3.0), 2)
    return {"count": count, "behaviour": {"kind": "greedy", "think_seconds": think}, **fields}


def _base(
    rng: Random, name: str, window: float, windows: int, limit: float, *, cuts: bool = True
) -> Data:
    data: Data = {
        "name": name,
        "seed": rng.randrange(1_000_000),
        "duration_seconds": window * windows,
        "poll_interval_seconds": rng.choice([5, 5, 10, 30]),
        "pools": {"acct-main": {"pools": {"requests": _pool(rng, limit, window, cuts=cuts)}}},
        "identities": [{"id": "tok-main", "principal": "acct-main"}],
        "agents": [],
    }
    if rng.random() < 0.2:
        data["restarts"] = [{"at": round(rng.uniform(0.1, 0.9) * window * windows)}]
    return data


def _urgent(rng: Random, window: float, **fields: Any) -> Data:
    return _agents(
        rng,
        "urgent",
        "tok-main",
        count=rng.randint(1, 3),
        urgency="high",
        behaviour={"kind": "poisson", "rate_per_second": round(rng.uniform(0.002, 0.02), 4)},
        deadline_seconds=round(rng.uniform(0.05, 0.2) * window, 1),
        on_deny="drop",
        **fields,
    )


def late_burst(rng: Random, n: int) -> Data:
    """1: a quiet start, then a burst late in the window."""
    window = rng.choice([900.0, 3600.0])
    data = _base(rng, f"gen-late-burst-{n}", window, 2, rng.choice([1000, 2000, 5000]))
    begin = round(rng.uniform(0.5, 0.8) * window)
    data["phases"] = [{"name": "rush", "start": begin, "end": window * 2}]
    data["agents"] = [
        _agents(
            rng,
            "trickle",
            "tok-main",
            count=2,
            behaviour={"kind": "poisson", "rate_per_second": 0.01},
        ),
        _agents(rng, "rush", "tok-main", phases=["rush"], **_greedy(rng, rng.randint(10, 40))),
    ]
    return data


def small_costly(rng: Random, n: int) -> Data:
    """2: small budgets, costly calls (60 a minute, costs 5–20)."""
    window = rng.choice([60.0, 120.0])
    data = _base(rng, f"gen-small-costly-{n}", window, rng.randint(8, 20), rng.choice([60, 100]))
    cost = {"kind": "uniform", "min": 5, "max": rng.choice([10, 20])}
    data["agents"] = [
        _agents(rng, "worker", "tok-main", cost=cost, **_greedy(rng, rng.randint(3, 12)))
    ]
    return data


def spill(rng: Random, n: int) -> Data:
    """3: workers spill to other accounts (one to three) when the first runs low."""
    window = 3600.0
    data = _base(rng, f"gen-spill-{n}", window, 1, rng.choice([1000, 2000]))
    for index in range(rng.choice([1, 1, 2, 3])):
        spare = "spare" if index == 0 else f"spare{index + 1}"
        data["pools"][f"acct-{spare}"] = {
            "pools": {"requests": _pool(rng, rng.choice([500, 1000, 2000, 5000]), window)}
        }
        data["identities"].append({"id": f"tok-{spare}", "principal": f"acct-{spare}"})
    data["policy"] = (
        "policies:\n  - id: spill\n    target: global\n    kind: soft\n    rules:\n"
        "      - name: spill-over\n"
        "        when: 'risk.p_exhaustion_with_intent > 0.1 || margin.with_intent_seconds < 0.0'\n"
        "        action: switch_identity\n"
        "        params: {identities: ['tok-*']}\n"
    )
    data["agents"] = [_agents(rng, "worker", "tok-main", **_greedy(rng, rng.randint(10, 30)))]
    if rng.random() < 0.5:
        data["agents"].append(
            _agents(rng, "locals", "tok-spare", **_greedy(rng, rng.randint(1, 5)))
        )
    return data


def unseen(rng: Random, n: int) -> Data:
    """4: consumers ratelord cannot see: a cron job, a migration script, a steady sync."""
    window = 3600.0
    limit = rng.choice([2000, 5000])
    data = _base(rng, f"gen-unseen-{n}", window, 2, limit)
    external: list[Data] = []
    if rng.random() < 0.7:
        every = rng.choice([300, 600, 900])
        external.append(
            {
                "principal": "acct-main",
                "resource": "requests",
                "amount": round(limit * rng.uniform(0.01, 0.06)),
                "every_seconds": every,
                "start": round(rng.uniform(0, every)),
            }
        )
    if rng.random() < 0.5:
        start = round(rng.uniform(0.1, 1.5) * window)
        external.append(
            {
                "principal": "acct-main",
                "resource": "requests",
                "amount": rng.randint(2, 10),
                "every_seconds": 1,
                "start": start,
                "end": start + rng.randint(60, 600),
            }
        )
    if not external or rng.random() < 0.3:
        external.append(
            {
                "principal": "acct-main",
                "resource": "requests",
                "amount": 1,
                "every_seconds": rng.choice([2, 4, 10]),
            }
        )
    data["external"] = external
    data["agents"] = [_agents(rng, "crawler", "tok-main", **_greedy(rng, rng.randint(5, 30)))]
    return data


def urgent_late(rng: Random, n: int) -> Data:
    """5: urgent work at the end of a window that background work has been filling."""
    window = 3600.0
    # A limit cut after the budget is spent takes the urgent reserve with it: no cuts here.
    data = _base(rng, f"gen-urgent-late-{n}", window, 2, rng.choice([1000, 3000, 5000]), cuts=False)
    data["phases"] = [{"name": "late", "start": round(0.7 * window), "end": window}]
    data["agents"] = [
        _agents(
            rng,
            "indexer",
            "tok-main",
            urgency=rng.choice(["background", "low", "normal"]),
            **_greedy(rng, rng.randint(10, 40)),
        ),
        _urgent(rng, window),
    ]
    if rng.random() < 0.5:
        data["agents"][1]["phases"] = ["late"]
    return data


def stops(rng: Random, n: int) -> Data:
    """6: demand that stops mid-window."""
    window = 3600.0
    data = _base(rng, f"gen-stops-{n}", window, 1, rng.choice([2000, 5000]))
    data["pools"]["acct-main"]["pools"]["requests"].pop("first_reset_seconds", None)
    end = round(rng.uniform(0.4, 0.8) * window)
    data["phases"] = [{"name": "work", "start": 0, "end": end}]
    data["agents"] = [
        _agents(rng, "batch", "tok-main", phases=["work"], **_greedy(rng, rng.randint(10, 50)))
    ]
    return data


def fresh_burst(rng: Random, n: int) -> Data:
    """7: a burst on a fresh pool is not a burn rate that will last."""
    window = 3600.0
    data = _base(rng, f"gen-fresh-burst-{n}", window, 1, rng.choice([1000, 5000]))
    data["agents"] = [
        _agents(
            rng,
            "burst",
            "tok-main",
            behaviour={
                "kind": "bursty",
                "every_seconds": window,
                "burst": rng.randint(50, 300),
            },
            cost={"kind": "choice", "values": [1, 1, 1, 100] if rng.random() < 0.3 else [1]},
        ),
        _agents(
            rng,
            "steady",
            "tok-main",
            count=rng.randint(1, 5),
            behaviour={"kind": "poisson", "rate_per_second": 0.05},
        ),
    ]
    return data


def reset_lockout(rng: Random, n: int) -> Data:
    """8: clients told about the pool rarely (long polls), across many resets."""
    window = rng.choice([60.0, 300.0])
    data = _base(rng, f"gen-reset-lockout-{n}", window, rng.randint(6, 12), rng.choice([60, 300]))
    data["poll_interval_seconds"] = rng.choice([30, 60, 120])
    data["agents"] = [
        _agents(
            rng,
            "client",
            "tok-main",
            cost={"kind": "uniform", "min": 1, "max": 5},
            behaviour={"kind": "poisson", "rate_per_second": round(rng.uniform(0.5, 3), 2)},
            on_deny="retry",
            retry_after_seconds=10,
            # Clients behind the SDK transport: every response's headers reach ratelord.
            reports_headers="always",
        ),
    ]
    return data


def multi_pool(rng: Random, n: int) -> Data:
    """Intents that draw on several pools at once (a search that also reads the core API)."""
    window = rng.choice([60.0, 900.0, 3600.0])
    limit = rng.choice([100, 1000, 5000]) * window / 3600.0 if window < 3600 else 5000
    windows = 1 if window == 3600.0 else 2
    data = _base(rng, f"gen-multi-pool-{n}", window, windows, max(60, round(limit)))
    search = max(30, round(limit * rng.uniform(0.05, 0.5)))
    data["pools"]["acct-main"]["pools"]["search"] = _pool(rng, search, window)
    per_search = rng.choice([1, 2, 5])
    data["workloads"] = {
        "query": {"requests": 1, "search": 1},
        "sync": {"requests": per_search, "search": 1},
    }
    groups = [
        _agents(
            rng,
            "searcher",
            "tok-main",
            resource=None,
            workload="query",
            **_greedy(rng, rng.randint(2, 10)),
        ),
        _agents(
            rng,
            "syncer",
            "tok-main",
            resource=None,
            workload="sync",
            **_greedy(rng, rng.randint(1, 5)),
        ),
    ]
    if rng.random() < 0.5:
        groups.append(_agents(rng, "core", "tok-main", **_greedy(rng, rng.randint(1, 10))))
    if rng.random() < 0.3:
        groups.append(_urgent(rng, window, resource=None, workload="query"))
    data["agents"] = groups
    return data


def many_agents(rng: Random, n: int) -> Data:
    """9: hundreds of agents on one pool."""
    data = _base(rng, f"gen-many-agents-{n}", 3600.0, 1, 5000)
    data["agents"] = [
        _agents(
            rng, "swarm", "tok-main", start_spread_seconds=30, **_greedy(rng, rng.randint(200, 500))
        )
    ]
    return data


CLASSES: dict[str, Callable[[Random, int], Data]] = {
    "late-burst": late_burst,
    "small-costly": small_costly,
    "spill": spill,
    "unseen": unseen,
    "urgent-late": urgent_late,
    "stops": stops,
    "fresh-burst": fresh_burst,
    "reset-lockout": reset_lockout,
    "many-agents": many_agents,
    "multi-pool": multi_pool,
}


def generate(kind: str, seed: int) -> Scenario:
    """One random scenario of class ``kind``, the same for the same seed."""
    data = CLASSES[kind](Random(f"{kind}:{seed}"), seed)
    return scenario_from_data(data, f"<generated {kind} {seed}>")


def scenario_yaml(scenario: Scenario) -> str:
    """The scenario as a file (to ship a failure the search found)."""
    import yaml

    data = msgspec.to_builtins(scenario)
    data.pop("base_dir", None)
    return yaml.safe_dump(data, sort_keys=False)


class Verdict(msgspec.Struct, kw_only=True):
    scenario: str
    failures: list[str]
    report: Report
    best_baseline_work: float


def judge(scenario: Scenario, strategy: StrategyName = "ratelord") -> Verdict:
    """Run ``scenario`` under ``strategy`` (ratelord, or its agents spending through leases)
    and the baselines; every goal it missed."""
    report = run_scenario(scenario, strategy)
    best = max(work_done(run_scenario(scenario, b)) for b in BASELINES)
    return Verdict(
        scenario=scenario.name,
        failures=goals_missed(report, best),
        report=report,
        best_baseline_work=best,
    )


def work_done(report: Report) -> float:
    """Units of work served on the scenario's accounts: by its agents and by the consumers
    behind ratelord's back (a strategy that starves those with 429s does not do more).

    A window still open when the run ends, with work still waiting on its pool, counts
    at most an even pace of it to its reset (``PoolReport.spent_ahead``): spending it
    faster is not more work, only sooner (the work after it waits for the reset, past
    the run's end), and pacing it to the reset is not less (what is left goes to the
    work still waiting before that reset)."""
    ahead = sum(pool.spent_ahead for pool in report.pools)
    return report.overall.work_done + report.external_done - ahead


def goals_missed(report: Report, best_baseline_work: float) -> list[str]:
    """The goals ``report`` misses.  A window whose leftover fit no call waiting when it
    reset is as used as it could be (the report marks it ``full``, and leaves it out of
    the lowest utilisation); any other overloaded window must end >= 97 % used."""
    failures = []
    avoidable = report.honest_429s - report.unavoidable_429s
    if avoidable:
        failures.append(f"{avoidable} honest 429s")
    for pool in report.pools:
        for reset in pool.resets:
            if reset.overloaded and reset.available > 0 and not reset.full:
                used = reset.used / reset.available
                if used < UTILISATION_GOAL:
                    failures.append(
                        f"{pool.pool_id} used {used:.1%} of {reset.available:,.0f} by its reset "
                        f"at {reset.at} (demand {reset.demand:,.0f})"
                    )
    urgent = report.high_urgency.success_rate
    if urgent is not None and urgent < URGENT_GOAL:
        failures.append(
            f"urgent work served within deadline {urgent:.1%} "
            f"({report.high_urgency.served_within_deadline}/{report.high_urgency.work_items})"
        )
    work = work_done(report)
    if best_baseline_work > 0 and work < WORK_GOAL * best_baseline_work:
        failures.append(
            f"work done {work:,.0f} < 95% of the best baseline's {best_baseline_work:,.0f}"
        )
    return failures
