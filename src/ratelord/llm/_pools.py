"""Which pools an LLM call draws from, and how much from each.

LLM providers limit each model separately, but their rate-limit headers do not
name the model: the model comes from the request.  A per-model pool's
resource is the header's bucket and the model joined by ``@``:
``tokens@gpt-4o-mini``, ``input-tokens@claude-sonnet-4-5``, so the pool id
reads ``openai:tokens@gpt-4o-mini:org-acme``.  Characters that cannot appear
in a resource (``:`` separates a pool id's parts, whitespace is refused) become
``_``.
"""

from __future__ import annotations

import re
from typing import Literal

from ratelord.llm._estimate import Api, TokenEstimate
from ratelord.llm._usage import Usage

__all__ = [
    "Family",
    "charges_for",
    "family_of",
    "model_resource",
    "split_model_resource",
    "usage_costs",
]

Family = Literal["openai", "anthropic"]

SEPARATOR = "@"
_UNSAFE = re.compile(r"[\s:@]")
#: A resource is at most 200 characters (the API's identifier bound).
_MAX_RESOURCE = 200


def model_resource(bucket: str, model: str | None) -> str:
    """``tokens`` + ``gpt-4o-mini`` → ``tokens@gpt-4o-mini``; no model: the bucket alone."""
    if not model:
        return bucket
    return f"{bucket}{SEPARATOR}{_UNSAFE.sub('_', model)}"[:_MAX_RESOURCE]


def split_model_resource(resource: str) -> tuple[str, str | None]:
    """The inverse of :func:`model_resource` (the model as made safe)."""
    bucket, sep, model = resource.partition(SEPARATOR)
    return bucket, (model or None) if sep else None


def family_of(api: Api) -> Family:
    return "anthropic" if api.startswith("anthropic") else "openai"


def charges_for(estimate: TokenEstimate) -> dict[str, float]:
    """resource → cost of one call: a request and its tokens, per model.

    OpenAI (and compatible endpoints) limit ``requests`` and ``tokens``
    (prompt plus ``max_tokens``); Anthropic limits ``requests``,
    ``input-tokens`` and ``output-tokens`` (the output bucket is charged
    ``max_tokens`` at admission).
    """
    model = estimate.model
    requests = model_resource("requests", model)
    if family_of(estimate.api) == "anthropic":
        return {
            requests: 1.0,
            model_resource("input-tokens", model): float(estimate.input_tokens),
            model_resource("output-tokens", model): float(estimate.output_tokens),
        }
    return {requests: 1.0, model_resource("tokens", model): float(estimate.total)}


def usage_costs(estimate: TokenEstimate, usage: Usage) -> dict[str, float]:
    """resource → what the call really spent, on the pools :func:`charges_for` charged.

    The resources are named after the *request's* model (the pools the call was
    charged to), not the answer's, which may name a dated snapshot.
    """
    model = estimate.model
    if family_of(estimate.api) == "anthropic":
        return {
            model_resource("input-tokens", model): float(usage.input_tokens),
            model_resource("output-tokens", model): float(usage.output_tokens),
        }
    return {model_resource("tokens", model): float(usage.total)}
