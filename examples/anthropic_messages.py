"""Messages with the official ``anthropic`` SDK, paced by ratelord.

Each call is asked for before it is sent — one request, its input tokens and
its ``max_tokens`` of output, from the model's input- and output-token
buckets — waits until they are there, and the real usage (from the answer or
the stream's ``message_delta``) corrects the reservation.  The SDK's own
retries are off (``max_retries=0``).

    ratelord-d &                                    # the daemon (RATELORD_URL)
    python -m tests.fakes.llm --port 8098 --kind anthropic --tpm 8000 --otpm 4000 &
    ANTHROPIC_API_KEY=sk-ant-test python examples/anthropic_messages.py \\
        --base-url http://127.0.0.1:8098 --calls 40 [--stream]
"""

from __future__ import annotations

import anthropic
from _llm_run import options, ratelord_http_client, run

from ratelord.client import Client


def main() -> int:
    args = options(__doc__.splitlines()[0], "claude-haiku-4-5", "key:anthropic")
    with Client() as ratelord, ratelord_http_client(ratelord, args, "anthropic") as http:
        api = anthropic.Anthropic(base_url=args.base_url, max_retries=0, http_client=http)
        messages = [{"role": "user", "content": "Write a short poem about rate limits."}]

        def call() -> int:
            if not args.stream:
                answer = api.messages.create(
                    model=args.model, messages=messages, max_tokens=args.max_tokens
                )
                return answer.usage.input_tokens + answer.usage.output_tokens
            with api.messages.stream(
                model=args.model, messages=messages, max_tokens=args.max_tokens
            ) as stream:
                for _ in stream.text_stream:
                    pass
                final = stream.get_final_message()
            return final.usage.input_tokens + final.usage.output_tokens

        return run(args, call, lambda error: isinstance(error, anthropic.RateLimitError))


if __name__ == "__main__":
    raise SystemExit(main())
