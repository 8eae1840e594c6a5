"""What the proxy needs to know about an LLM call: its model and token estimate before,
its real token count after (from the JSON body, or from a stream's usage chunks).

Interim: the minimum, until :mod:`ratelord.llm` lands; then these two
functions delegate to it.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

#: Output tokens assumed when a request sets no maximum (conservative: ask for more).
DEFAULT_MAX_OUTPUT = 4096
#: Bytes of prompt per token (a conservative heuristic: real ratios are 3.5–4.5).
BYTES_PER_TOKEN = 3.0
#: A JSON answer larger than this is not scanned for usage.
MAX_SCANNED_BODY = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Estimate:
    model: str | None
    tokens: float


def estimate(body: bytes) -> Estimate:
    """The model and a conservative token estimate of an OpenAI/Anthropic-shaped request."""
    try:
        request = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        request = {}
    if not isinstance(request, dict):
        request = {}
    model = request.get("model")
    prompt = sum(
        len(json.dumps(request.get(key), ensure_ascii=False))
        for key in ("messages", "input", "prompt", "system", "tools")
        if key in request
    )
    output = next(
        (
            request[key]
            for key in ("max_completion_tokens", "max_tokens", "max_output_tokens")
            if isinstance(request.get(key), int)
        ),
        DEFAULT_MAX_OUTPUT,
    )
    return Estimate(model if isinstance(model, str) else None, prompt / BYTES_PER_TOKEN + output)


class UsageMeter:
    """Reads the token usage out of an answer as it streams past, without holding it up.

    JSON answers are kept (bounded) and read at the end; Server-Sent Events are
    read line by line and only the usage they carry is kept (OpenAI's final
    usage chunk, Anthropic's ``message_start`` and ``message_delta``).
    """

    def __init__(self, content_type: str, content_encoding: str = "") -> None:
        self._sse = content_type.startswith("text/event-stream")
        # gzip and deflate are read through a copy; other encodings are not read.
        self._decoder = (
            zlib.decompressobj(32 + zlib.MAX_WBITS)
            if content_encoding in ("gzip", "deflate")
            else None
        )
        self._buffer = bytearray()
        self._usage: dict[str, int] = {}
        self._overflow = False

    def feed(self, chunk: bytes) -> None:
        if self._overflow:
            return
        if self._decoder is not None:
            try:
                chunk = self._decoder.decompress(chunk)
            except zlib.error:
                self._overflow = True
                return
        self._buffer += chunk
        if self._sse:
            *lines, rest = bytes(self._buffer).split(b"\n")
            self._buffer = bytearray(rest)
            for line in lines:
                if line.startswith(b"data:") and b'"usage"' in line:
                    self._read(line[5:])
        elif len(self._buffer) > MAX_SCANNED_BODY:
            self._overflow = True
            self._buffer.clear()

    def tokens(self) -> float | None:
        """The answer's total tokens, or None when it did not say."""
        if not self._sse and self._buffer:
            self._read(bytes(self._buffer))
        if "total_tokens" in self._usage:
            return float(self._usage["total_tokens"])
        parts = [self._usage.get(k) for k in ("input_tokens", "output_tokens", "prompt_tokens")]
        if not any(p is not None for p in parts):
            return None
        completion = self._usage.get("completion_tokens", 0)
        return float(sum(p or 0 for p in parts) + completion)

    def _read(self, data: bytes) -> None:
        try:
            message: Any = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(message, dict):
            return
        usage = message.get("usage")
        if usage is None and isinstance(message.get("message"), dict):
            usage = message["message"].get("usage")  # Anthropic's message_start
        if isinstance(usage, dict):
            for key, value in usage.items():
                if isinstance(value, int) and value >= 0:
                    # Anthropic sends input tokens at the start and output at the end.
                    self._usage[key] = max(value, self._usage.get(key, 0))


def meter_for(content_type: str, content_encoding: str) -> UsageMeter | None:
    """A meter for an answer of this type, or None when its encoding cannot be read."""
    encoding = content_encoding.strip().lower()
    if encoding not in ("", "identity", "gzip", "deflate"):
        return None
    return UsageMeter(content_type.strip().lower(), encoding)
