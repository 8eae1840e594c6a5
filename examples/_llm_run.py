"""What the two LLM examples share: options, the ratelord transport, the loop, the summary.

Not an example by itself: ``openai_chat.py`` and ``anthropic_messages.py`` import it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx2

from ratelord.client import Client, RatelordError, RatelordTransport


def options(description: str, model: str, identity: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--base-url", required=True, help="the provider's (or a fake's) base URL")
    parser.add_argument("--calls", type=int, default=10, help="how many calls to make")
    parser.add_argument("--stream", action="store_true", help="stream the answers (SSE)")
    parser.add_argument("--model", default=model)
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--identity", default=identity, help="ratelord identity of the key")
    parser.add_argument("--principal", default="default", help="organisation/key it charges")
    parser.add_argument("--agent", default="llm-example")
    return parser.parse_args()


def ratelord_http_client(
    ratelord: Client, args: argparse.Namespace, provider: str
) -> httpx2.Client:
    """An httpx2 client whose every request is asked for, paced and reconciled by ratelord."""
    if not any(i.identity_id == args.identity for i in ratelord.identities()):
        ratelord.register(identity_id=args.identity, provider_id=provider, principal=args.principal)
    transport = RatelordTransport(
        client=ratelord,
        agent_id=args.agent,
        identity_id=args.identity,
        llm=True,  # price each call from its body, report its real usage
        refusal="response",  # a refusal is a 429 the SDK understands, not an exception
    )
    return httpx2.Client(transport=transport, timeout=60)


@dataclass
class Tally:
    ok: int = 0
    rate_limited: int = 0
    failed: int = 0
    tokens: int = 0


def run(
    args: argparse.Namespace, call: Callable[[], int], is_429: Callable[[Exception], bool]
) -> int:
    """Make ``args.calls`` calls; print one line each and a ``key: value`` summary."""
    tally = Tally()
    started = time.monotonic()
    for n in range(args.calls):
        try:
            tokens = call()
        except RatelordError as error:  # the daemon could not be asked (fail-safe deny)
            tally.failed += 1
            print(f"{n:3d} ratelord: {error}")
            continue
        except Exception as error:
            if is_429(error):
                tally.rate_limited += 1
                print(f"{n:3d} 429 {error}")
            else:
                tally.failed += 1
                print(f"{n:3d} error {type(error).__name__}: {error}")
            continue
        tally.ok += 1
        tally.tokens += tokens
        print(f"{n:3d} ok   {tokens} tokens at {time.monotonic() - started:6.2f} s")
    elapsed = time.monotonic() - started
    print(f"calls: {args.calls}")
    print(f"ok: {tally.ok}")
    print(f"rate_limited: {tally.rate_limited}")
    print(f"failed: {tally.failed}")
    print(f"tokens: {tally.tokens}")
    print(f"elapsed_seconds: {elapsed:.2f}")
    return 0 if tally.ok == args.calls else 1
