"""What one request costs, read from the request itself (no I/O).

- GitHub: 1 from the resource GitHub charges for the path (``/search/code`` →
  ``code_search``, ``/search/*`` → ``search``, ``/graphql`` → ``graphql``,
  else ``core``); ``GET /rate_limit`` is free, as on GitHub.
- OpenAI and Anthropic: what :func:`ratelord.llm.charges_for` says of the
  body's token estimate (a request and its tokens, per model); calls that are
  not completions (listing models and the like) cost one request.
- generic: the upstream's configured ``cost`` of its ``resource``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ratelord import llm
from ratelord.headers import bucket_for_path
from ratelord.proxy.settings import UpstreamSettings

LLM_KINDS = frozenset({"openai", "anthropic"})


@dataclass(frozen=True, slots=True)
class Charge:
    """The resources one request spends and how much of each; the estimate of LLM calls."""

    costs: dict[str, float]
    estimate: llm.TokenEstimate | None = None


def charge_for(upstream: UpstreamSettings, method: str, path: str, body: bytes) -> Charge | None:
    """The charge of ``method path`` with ``body`` at ``upstream``; None when it is free."""
    if upstream.kind == "github":
        if path.rstrip("/").endswith("/rate_limit"):
            return None
        return Charge({bucket_for_path(path): 1.0})
    if upstream.kind in LLM_KINDS:
        estimate = llm.estimate_request(body, path=path) if method == "POST" else None
        if estimate is None:
            return Charge({"requests": 1.0})
        return Charge(llm.charges_for(estimate), estimate)
    return Charge({upstream.resource: upstream.cost})
