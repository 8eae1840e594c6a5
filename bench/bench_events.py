"""Typed payloads against the dicts they replaced: the cost of encoding one decision's
events for the store, and of decoding them back (µs per decision, same content).

The dicts are the typed payloads turned into builtins, so both sides encode the same
JSON; "dict" is what the store did before the payloads were typed.

Usage: python bench/bench_events.py
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from _harness import dump
from bench_engine import engine_with_pool

from ratelord.engine.arbitration import decide
from ratelord.engine.events import typed
from ratelord.schema import IntentRequest

N = 20_000


def per_call(fn: Any, n: int = N) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    engine, clock = engine_with_pool()
    request = IntentRequest(agent_id="a", identity_id="id", resource="requests", cost=1.0)
    clock.advance(1.0)
    events = decide(engine, request, clock.now()).events
    payloads = [e.payload for e in events]
    dicts = [msgspec.to_builtins(p) for p in payloads]
    encode = msgspec.json.Encoder().encode
    stored = [(e.event_type, encode(e.payload)) for e in events]
    assert stored == [(e.event_type, encode(d)) for e, d in zip(events, dicts, strict=True)]
    decode_dict = msgspec.json.Decoder(dict[str, Any]).decode

    def encode_dicts() -> None:
        for d in dicts:
            encode(d)

    def encode_typed() -> None:
        for p in payloads:
            encode(p)

    def decode_dicts() -> None:
        for _, body in stored:
            decode_dict(body)

    def decode_typed() -> None:
        for event_type, body in stored:
            typed(event_type)[1](body)

    dump(
        "event_payload_us_per_decision",
        {
            "events_per_decision": len(events),
            "encode_dict": round(per_call(encode_dicts), 2),
            "encode_typed": round(per_call(encode_typed), 2),
            "decode_dict": round(per_call(decode_dicts), 2),
            "decode_typed": round(per_call(decode_typed), 2),
        },
    )


if __name__ == "__main__":
    main()
