"""Token estimates of an LLM request before it is sent.

A provider's limiter charges a call when it admits it: the prompt's tokens
plus the most the call may write (``max_tokens``; OpenAI counts it even when
the answer is shorter).  ratelord reserves the same amount before asking, and
corrects the reservation from the response's ``usage`` afterwards.

Prompt tokens of OpenAI models are counted with ``tiktoken`` when it is
installed and its encoding files are available (cached or downloadable);
everything else (other vendors' models, whose tokenizers differ, or no
tiktoken) is counted with a conservative heuristic: **one token per three
bytes of UTF-8 text**, plus :data:`MESSAGE_OVERHEAD` tokens per message and
:data:`REPLY_OVERHEAD` for the reply's priming. English prose runs at about
four characters per token, so the heuristic over-counts it by about a third;
code and non-Latin scripts run closer to three bytes per token. Images count
:data:`IMAGE_TOKENS` each (a large image at high detail, the most either
provider charges by default).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import msgspec

logger = logging.getLogger("ratelord.llm")

Api = Literal[
    "openai-chat",
    "openai-responses",
    "openai-completions",
    "openai-embeddings",
    "anthropic-messages",
]
Method = Literal["tiktoken", "heuristic"]

BYTES_PER_TOKEN = 3.0
MESSAGE_OVERHEAD = 4
REPLY_OVERHEAD = 3
IMAGE_TOKENS = 1600
#: Output assumed when a request sets no limit on it (conservative: a long answer).
DEFAULT_MAX_OUTPUT_TOKENS = 4096
#: The legacy completions endpoint's documented default ``max_tokens``.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16

_IMAGE_PART_TYPES = frozenset({"image", "image_url", "input_image", "document", "input_file"})
#: Keys whose string values are not text the model reads.
_SKIPPED_KEYS = frozenset({"type", "role", "id", "tool_call_id", "call_id", "cache_control"})


class TokenEstimate(msgspec.Struct, frozen=True, kw_only=True):
    """What a request may spend: its prompt and the most it may write."""

    api: Api
    model: str | None
    input_tokens: int
    output_tokens: int
    method: Method

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


def api_for_path(path: str) -> Api | None:
    """Which API a request path calls (``/v1/chat/completions`` → ``openai-chat``)."""
    path = path.split("?", 1)[0].rstrip("/")
    if path.endswith("/chat/completions"):
        return "openai-chat"
    if path.endswith("/responses"):
        return "openai-responses"
    if path.endswith("/completions"):
        return "openai-completions"
    if path.endswith("/embeddings"):
        return "openai-embeddings"
    if path.endswith("/messages"):
        return "anthropic-messages"
    return None


def estimate_request(
    body: bytes | Mapping[str, Any],
    *,
    api: Api | None = None,
    path: str | None = None,
    default_max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
) -> TokenEstimate | None:
    """The tokens a request may spend, or ``None`` when it is not an LLM call we know.

    ``body`` is the JSON request body (bytes or already decoded); ``api`` is
    taken from ``path`` when not given.  Never raises on odd input: a body that
    is not a JSON object gives ``None``.
    """
    api = api or (api_for_path(path) if path else None)
    if api is None:
        return None
    data = _decode(body)
    if data is None:
        return None
    model = data.get("model")
    model = model if isinstance(model, str) and model else None
    counter = _counter(model)
    input_tokens, output_tokens = _ESTIMATORS[api](data, counter, default_max_output_tokens)
    return TokenEstimate(
        api=api,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        method="tiktoken" if counter is not heuristic_tokens else "heuristic",
    )


def heuristic_tokens(text: str) -> int:
    """The conservative estimate: one token per :data:`BYTES_PER_TOKEN` bytes of UTF-8."""
    if not text:
        return 0
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / BYTES_PER_TOKEN)


# ---------------------------------------------------------------------- per API

Counter = Callable[[str], int]


def _chat(data: Mapping[str, Any], count: Counter, default_out: int) -> tuple[int, int]:
    messages = data.get("messages")
    tokens = REPLY_OVERHEAD
    for message in messages if isinstance(messages, list) else ():
        tokens += MESSAGE_OVERHEAD + _text_tokens(message, count)
    tokens += _tools_tokens(data, count)
    limit = _first_int(data, "max_completion_tokens", "max_tokens")
    choices = max(1, _first_int(data, "n") or 1)
    return tokens, (default_out if limit is None else limit) * choices


def _responses(data: Mapping[str, Any], count: Counter, default_out: int) -> tuple[int, int]:
    tokens = REPLY_OVERHEAD + _text_tokens(data.get("instructions"), count)
    items = data.get("input")
    if isinstance(items, list):
        tokens += sum(MESSAGE_OVERHEAD + _text_tokens(item, count) for item in items)
    else:
        tokens += MESSAGE_OVERHEAD + _text_tokens(items, count)
    tokens += _tools_tokens(data, count)
    limit = _first_int(data, "max_output_tokens")
    return tokens, default_out if limit is None else limit


def _completions(data: Mapping[str, Any], count: Counter, default_out: int) -> tuple[int, int]:
    prompt = data.get("prompt")
    prompts = prompt if isinstance(prompt, list) else [prompt]
    tokens = sum(_text_tokens(p, count) for p in prompts)
    limit = _first_int(data, "max_tokens")
    choices = max(1, _first_int(data, "n") or 1) * max(1, len(prompts))
    return tokens, (COMPLETIONS_DEFAULT_MAX_TOKENS if limit is None else limit) * choices


def _embeddings(data: Mapping[str, Any], count: Counter, default_out: int) -> tuple[int, int]:
    return _text_tokens(data.get("input"), count), 0


def _anthropic(data: Mapping[str, Any], count: Counter, default_out: int) -> tuple[int, int]:
    tokens = _text_tokens(data.get("system"), count)
    messages = data.get("messages")
    for message in messages if isinstance(messages, list) else ():
        tokens += MESSAGE_OVERHEAD + _text_tokens(message, count)
    tokens += _tools_tokens(data, count)
    limit = _first_int(data, "max_tokens")
    return tokens, default_out if limit is None else limit


_ESTIMATORS: dict[Api, Callable[[Mapping[str, Any], Counter, int], tuple[int, int]]] = {
    "openai-chat": _chat,
    "openai-responses": _responses,
    "openai-completions": _completions,
    "openai-embeddings": _embeddings,
    "anthropic-messages": _anthropic,
}


# ---------------------------------------------------------------------- walking a body


def _text_tokens(value: Any, count: Counter) -> int:
    """Tokens of the text in ``value``: strings anywhere below it, images at a flat rate."""
    return sum(IMAGE_TOKENS if text is None else count(text) for text in _texts(value))


def _texts(value: Any) -> Iterable[str | None]:
    """Every string the model reads below ``value``; ``None`` stands for one image."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, Mapping):
        if value.get("type") in _IMAGE_PART_TYPES:
            yield None
            return
        for key, item in value.items():
            if key not in _SKIPPED_KEYS:
                yield from _texts(item)


def _tools_tokens(data: Mapping[str, Any], count: Counter) -> int:
    """Tool and function schemas reach the model as text: count their JSON."""
    tokens = 0
    for key in ("tools", "functions", "response_format", "text"):
        value = data.get(key)
        if isinstance(value, list | Mapping) and value:
            tokens += count(msgspec.json.encode(value).decode())
    return tokens


def _first_int(data: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _decode(body: bytes | Mapping[str, Any]) -> Mapping[str, Any] | None:
    if isinstance(body, Mapping):
        return body
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------- tiktoken

_encoders: dict[str, Counter] = {}
_tiktoken_failed = False


def _counter(model: str | None) -> Counter:
    """tiktoken's counter for ``model`` when it can be had, else the heuristic.

    One failed attempt (not installed, encoding files not downloadable) turns
    tiktoken off for the life of the process, so no call waits on it twice.
    """
    global _tiktoken_failed
    if _tiktoken_failed:
        return heuristic_tokens
    key = model or ""
    counter = _encoders.get(key)
    if counter is not None:
        return counter
    try:
        import tiktoken  # optional; ratelord works without it

        try:
            encoding = tiktoken.encoding_for_model(key)
        except KeyError:  # not an OpenAI model: its tokenizer is not tiktoken's
            _encoders[key] = heuristic_tokens
            return heuristic_tokens
    except Exception as exc:  # ImportError, or no network to fetch the encoding
        _tiktoken_failed = True
        logger.info("counting tokens with the heuristic (tiktoken unavailable: %s)", exc)
        return heuristic_tokens

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    _encoders[key] = count
    return count
