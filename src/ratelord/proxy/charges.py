"""What one request costs, read from the request itself (no I/O).

- GitHub: 1 from the resource GitHub charges for the path (``/search/code`` →
  ``code_search``, ``/search/*`` → ``search``, ``/graphql`` → ``graphql``,
  else ``core``); ``GET /rate_limit`` is free, as on GitHub.
- OpenAI and Anthropic: 1 request and the token estimate of the body.
- generic: the upstream's configured ``cost`` of its ``resource``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ratelord.headers import bucket_for_path
from ratelord.proxy import llm_bridge
from ratelord.proxy.settings import UpstreamSettings

LLM_KINDS = frozenset({"openai", "anthropic"})


@dataclass(frozen=True, slots=True)
class Charge:
    """The resources one request spends and how much of each; ``model`` for LLM calls."""

    costs: dict[str, float]
    model: str | None = None

    @property
    def tokens(self) -> float | None:
        return self.costs.get("tokens")


def charge_for(upstream: UpstreamSettings, method: str, path: str, body: bytes) -> Charge | None:
    """The charge of ``method path`` with ``body`` at ``upstream``; None when it is free."""
    if upstream.kind == "github":
        if path.rstrip("/").endswith("/rate_limit"):
            return None
        return Charge({bucket_for_path(path): 1.0})
    if upstream.kind in LLM_KINDS:
        if method != "POST":
            return Charge({"requests": 1.0})  # listing models and the like
        estimate = llm_bridge.estimate(body)
        return Charge({"requests": 1.0, "tokens": round(estimate.tokens)}, estimate.model)
    return Charge({upstream.resource: upstream.cost})
