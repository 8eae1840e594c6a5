"""Chat completions with the official ``openai`` SDK, paced by ratelord.

Each call is asked for before it is sent — one request and its tokens (the
prompt plus ``max_tokens``) from the model's pools — waits until the tokens
are there, and its real usage (from the answer, or the stream's final usage
chunk) corrects the reservation.  The SDK's own retries are off
(``max_retries=0``): ratelord keeps the calls under the limit instead.

    ratelord-d &                                    # the daemon (RATELORD_URL)
    python -m tests.fakes.llm --port 8099 --rpm 60 --tpm 4000 &   # or a real endpoint
    OPENAI_API_KEY=sk-test python examples/openai_chat.py \\
        --base-url http://127.0.0.1:8099/v1 --calls 60 [--stream]

Works against any OpenAI-compatible endpoint that sends ``x-ratelimit-*`` headers.
"""

from __future__ import annotations

import openai
from _llm_run import options, ratelord_http_client, run

from ratelord.client import Client


def main() -> int:
    args = options(__doc__.splitlines()[0], "gpt-4o-mini", "key:openai")
    with Client() as ratelord, ratelord_http_client(ratelord, args, "openai") as http:
        api = openai.OpenAI(base_url=args.base_url, max_retries=0, http_client=http)
        messages = [{"role": "user", "content": "Write a short poem about rate limits."}]

        def call() -> int:
            if not args.stream:
                answer = api.chat.completions.create(
                    model=args.model, messages=messages, max_tokens=args.max_tokens
                )
                return answer.usage.total_tokens if answer.usage else 0
            tokens = 0
            with api.chat.completions.create(
                model=args.model,
                messages=messages,
                max_tokens=args.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            ) as stream:
                for chunk in stream:
                    if chunk.usage is not None:
                        tokens = chunk.usage.total_tokens
            return tokens

        return run(args, call, lambda error: isinstance(error, openai.RateLimitError))


if __name__ == "__main__":
    raise SystemExit(main())
