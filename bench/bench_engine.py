"""The pure engine, in process: one decision, one observation, one forecast (µs each).

Usage: python bench/bench_engine.py
"""

from __future__ import annotations

import time

from _harness import dump

from ratelord.engine.arbitration import decide
from ratelord.engine.clock import ManualClock
from ratelord.engine.core import Engine, EngineConfig
from ratelord.engine.events import IdFactory
from ratelord.engine.observations import PollResult, PoolObservation
from ratelord.engine.observe import observe_poll
from ratelord.engine.policy import default_policy
from ratelord.schema import IdentityCreate, IntentRequest

N = 20_000


def engine_with_pool() -> tuple[Engine, ManualClock]:
    clock = ManualClock()
    engine = Engine(EngineConfig(), default_policy(), ids=IdFactory("b"))
    engine.register_identity(
        IdentityCreate(identity_id="id", provider_id="mock", principal="acct"), clock.now()
    )
    observe_poll(engine, "id", poll(clock.now(), 1e9))
    return engine, clock


def poll(now: float, remaining: float) -> PollResult:
    return PollResult(
        observed_at=now,
        observations=[
            PoolObservation(
                resource="requests",
                limit=1e9,
                remaining=remaining,
                reset_at=now + 3600,
                window_seconds=3600,
            )
        ],
    )


def per_call(fn, n: int = N) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    engine, clock = engine_with_pool()
    request = IntentRequest(agent_id="a", identity_id="id", resource="requests", cost=1.0)

    def one_decision(i: int) -> None:
        clock.advance(0.001)
        decide(engine, request, clock.now())

    def one_observation(i: int) -> None:
        clock.advance(1.0)
        observe_poll(engine, "id", poll(clock.now(), 1e9 - 10 * i))

    pool = engine.state.pools["mock:requests:acct"]

    def one_forecast(i: int) -> None:
        engine.forecast(pool, clock.now(), 1.0)

    dump(
        "engine_us_per_call",
        {
            "decide_intent_default_policy": round(per_call(one_decision), 1),
            "ingest_observation_and_refresh_forecast": round(per_call(one_observation, 5000), 1),
            "forecast_with_intent": round(per_call(one_forecast), 1),
        },
    )


if __name__ == "__main__":
    main()
