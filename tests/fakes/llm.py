"""A local OpenAI- or Anthropic-shaped API with continuously refilling rate limits.

Shapes follow /work/shared/PROVIDERS.md:

- OpenAI ``POST /v1/chat/completions`` (JSON, or SSE with ``stream: true``
  and the final usage chunk when ``stream_options.include_usage``), headers
  ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (reset: a Go
  duration until full), 429 ``rate_limit_exceeded`` in OpenAI's error body.
- Anthropic ``POST /v1/messages`` (JSON or SSE: ``message_start`` …
  ``message_delta`` with usage), headers
  ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` (reset:
  RFC 3339), 429 ``rate_limit_error``.  With ``otpm`` it keeps Anthropic's
  separate input- and output-token buckets (``tpm`` is then the input's):
  the prompt is charged to ``input-tokens``, ``max_tokens`` to
  ``output-tokens``, and ``tokens-*`` repeats the tighter of the two.

Both buckets are token buckets that refill continuously (capacity ``rpm`` /
``tpm``, refilled over a minute; tests may shorten the ``minute`` to run a
long scenario faster with the same shape).  A call is charged at admission what the
provider charges: 1 request and its prompt tokens (one per 4 bytes of
message text) plus ``max_tokens``; when either bucket lacks that, it is a 429.
Every completion writes exactly ``max_tokens`` tokens in ``chunks`` pieces,
``chunk_delay`` seconds apart when streamed.

Run it alone (benchmarks): ``python -m tests.fakes.llm --port 0 --kind openai``
prints ``ready <port>`` and serves until killed.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from tests.fakes.server import LocalServer

__all__ = ["FakeLLM", "TokenBucket"]

Kind = Literal["openai", "anthropic"]


@dataclass
class TokenBucket:
    """A continuously refilling budget: ``capacity`` per ``minute`` seconds, full at the start."""

    capacity: float
    level: float
    at: float
    minute: float = 60.0

    @classmethod
    def full(cls, capacity: float, now: float, minute: float = 60.0) -> TokenBucket:
        return cls(capacity, capacity, now, minute)

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.capacity / self.minute)
        self.at = now

    def seconds_to_full(self) -> float:
        return (self.capacity - self.level) * self.minute / self.capacity


def prompt_tokens(body: dict[str, Any]) -> int:
    """One token per 4 bytes of the messages' text (the fake's own tokenizer)."""
    text = "".join(_texts(body.get("messages", []))) + "".join(_texts([body.get("system")]))
    return max(1, len(text.encode()) // 4)


def _texts(items: Iterable[Any]) -> Iterator[str]:
    for item in items:
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from _texts([item.get("content")])
        elif isinstance(item, list):
            yield from _texts(item)


class FakeLLM(LocalServer):
    """The server on a free loopback port, from a background thread."""

    def __init__(
        self,
        kind: Kind = "openai",
        *,
        rpm: float = 60,
        tpm: float = 4000,
        keys: Iterable[str] = ("sk-test-fake-key-0000000000000000",),
        chunks: int = 5,
        chunk_delay: float = 0.0,
        minute: float = 60.0,
        otpm: float | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.rpm, self.tpm = rpm, tpm
        self.keys = set(keys)
        self.chunks, self.chunk_delay = chunks, chunk_delay
        self._lock = threading.Lock()
        now = time.monotonic()
        self.requests = TokenBucket.full(rpm, now, minute)
        self.tokens = TokenBucket.full(tpm, now, minute)
        self.output = TokenBucket.full(otpm, now, minute) if otpm else None
        self.calls = 0
        self.rejected = 0  # 429s sent
        self.charged = 0  # tokens charged at admission

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ admission

    def admit(self, prompt: int, output: int) -> tuple[bool, dict[str, str]]:
        """Charge one call if every bucket holds its share; the headers to send."""
        with self._lock:
            now = time.monotonic()
            charges = [(self.requests, 1.0)]
            if self.output is None:
                charges.append((self.tokens, prompt + output))
            else:
                charges += [(self.tokens, prompt), (self.output, output)]
            for bucket, _ in charges:
                bucket.refill(now)
            ok = all(bucket.level >= cost for bucket, cost in charges)
            if ok:
                for bucket, cost in charges:
                    bucket.level -= cost
                self.calls += 1
                self.charged += prompt + output
            else:
                self.rejected += 1
            return ok, self._headers()

    def _headers(self) -> dict[str, str]:
        if self.kind == "openai":
            return {
                "x-ratelimit-limit-requests": f"{self.rpm:.0f}",
                "x-ratelimit-remaining-requests": f"{int(self.requests.level)}",
                "x-ratelimit-reset-requests": f"{self.requests.seconds_to_full():.3f}s",
                "x-ratelimit-limit-tokens": f"{self.tpm:.0f}",
                "x-ratelimit-remaining-tokens": f"{int(self.tokens.level)}",
                "x-ratelimit-reset-tokens": f"{self.tokens.seconds_to_full():.3f}s",
            }
        buckets = [("requests", self.requests), ("tokens", self.tokens)]
        if self.output is not None:
            tighter = min(self.tokens, self.output, key=lambda b: b.level / b.capacity)
            buckets = [
                ("requests", self.requests),
                ("input-tokens", self.tokens),
                ("output-tokens", self.output),
                ("tokens", tighter),
            ]
        headers = {}
        for name, bucket in buckets:
            full_at = datetime.fromtimestamp(time.time() + bucket.seconds_to_full(), UTC)
            headers[f"anthropic-ratelimit-{name}-limit"] = f"{bucket.capacity:.0f}"
            headers[f"anthropic-ratelimit-{name}-remaining"] = f"{int(bucket.level)}"
            headers[f"anthropic-ratelimit-{name}-reset"] = full_at.isoformat(
                timespec="seconds"
            ).replace("+00:00", "Z")
        return headers

    # ------------------------------------------------------------------ answers

    def error(self, status: int, code: str, message: str) -> bytes:
        if self.kind == "openai":
            body: dict[str, Any] = {
                "error": {"message": message, "type": "tokens", "param": None, "code": code}
            }
        else:
            body = {"type": "error", "error": {"type": code, "message": message}}
        return json.dumps(body).encode()

    def completion(self, model: str, prompt: int, output: int) -> dict[str, Any]:
        text = "ok " * output
        if self.kind == "openai":
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "length",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": output,
                    "total_tokens": prompt + output,
                },
            }
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "max_tokens",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": output},
        }

    def events(self, model: str, prompt: int, output: int, usage: bool) -> Iterator[bytes]:
        """The SSE events of a streamed completion, one chunk of text per event."""
        pieces = [output // self.chunks + (i < output % self.chunks) for i in range(self.chunks)]
        if self.kind == "openai":
            for piece in pieces:
                delta = {"choices": [{"index": 0, "delta": {"content": "ok " * piece}}]}
                yield _sse(None, {"id": "chatcmpl-fake", "model": model, **delta})
            if usage:
                total = {"prompt_tokens": prompt, "completion_tokens": output}
                total["total_tokens"] = prompt + output
                yield _sse(
                    None, {"id": "chatcmpl-fake", "model": model, "choices": [], "usage": total}
                )
            yield b"data: [DONE]\n\n"
            return
        start = {"type": "message_start", "message": {**self.completion(model, prompt, 1)}}
        start["message"].update(content=[], usage={"input_tokens": prompt, "output_tokens": 1})
        yield _sse("message_start", start)
        yield _sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        for piece in pieces:
            yield _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "ok " * piece},
                },
            )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "max_tokens"},
                "usage": {"output_tokens": output},
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})


def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _handler_for(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    path = "/v1/chat/completions" if fake.kind == "openai" else "/v1/messages"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path.split("?")[0] != path:
                return self._json(404, fake.error(404, "not_found", f"no route {self.path}"))
            if self._key() not in fake.keys:
                return self._json(401, fake.error(401, "invalid_api_key", "Incorrect API key"))
            try:
                body = json.loads(raw)
            except ValueError:
                return self._json(400, fake.error(400, "invalid_request_error", "bad JSON"))
            prompt = prompt_tokens(body)
            output = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
            ok, headers = fake.admit(prompt, output)
            if not ok:
                code = "rate_limit_exceeded" if fake.kind == "openai" else "rate_limit_error"
                message = "Rate limit reached. Please try again in 1s."
                return self._json(
                    429, fake.error(429, code, message), {**headers, "retry-after": "1"}
                )
            model = str(body.get("model", "fake-model"))
            if body.get("stream"):
                usage = fake.kind == "anthropic" or bool(
                    (body.get("stream_options") or {}).get("include_usage")
                )
                return self._stream(fake.events(model, prompt, output, usage), headers)
            self._json(200, json.dumps(fake.completion(model, prompt, output)).encode(), headers)

        def _key(self) -> str:
            bearer = self.headers.get("authorization", "").removeprefix("Bearer ").strip()
            # Anthropic takes x-api-key (its SDK now sends a bearer token instead)
            return (
                self.headers.get("x-api-key", "")
                if fake.kind == "anthropic" and not bearer
                else bearer
            )

        def _json(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream(self, events: Iterator[bytes], headers: dict[str, str]) -> None:
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for index, event in enumerate(events):
                if index and fake.chunk_delay:
                    time.sleep(fake.chunk_delay)
                self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kind", choices=["openai", "anthropic"], default="openai")
    parser.add_argument("--rpm", type=float, default=1e9)
    parser.add_argument("--tpm", type=float, default=1e12)
    parser.add_argument("--otpm", type=float, default=None, help="Anthropic's output bucket")
    parser.add_argument("--minute", type=float, default=60.0, help="seconds to refill fully")
    parser.add_argument("--key", action="append", default=[])
    args = parser.parse_args()
    fake = FakeLLM(
        args.kind,
        rpm=args.rpm,
        tpm=args.tpm,
        otpm=args.otpm,
        minute=args.minute,
        keys=args.key or ["sk-test"],
    ).start(args.port)
    print(f"ready {fake.port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
