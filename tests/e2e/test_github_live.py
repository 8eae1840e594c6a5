"""Opt-in: the provider against the real api.github.com (needs ``GITHUB_TOKEN``).

Run with ``GITHUB_TOKEN=... .venv/bin/pytest -m github_live tests/e2e/test_github_live.py``.
``/rate_limit`` is free; discovering the principal with ``/user`` costs one ``core`` request.
"""

from __future__ import annotations

import os
import time

import pytest

from ratelord.providers.base import ProviderIdentity
from ratelord.providers.github import GitHubProvider

pytestmark = [
    pytest.mark.github_live,
    pytest.mark.skipif(not os.environ.get("GITHUB_TOKEN"), reason="GITHUB_TOKEN is not set"),
]


async def test_real_github_rate_limits() -> None:
    provider = GitHubProvider(base_url=os.environ.get("GITHUB_API_URL", "https://api.github.com"))
    identity = ProviderIdentity(
        identity_id="pat:live",
        provider_id="github",
        principal=None,
        kind="token",
        secret_ref="env:GITHUB_TOKEN",
    )
    now = time.time()
    try:
        result = await provider.poll(identity, now)
    finally:
        await provider.aclose()

    assert result.principal is not None
    assert result.principal.startswith("github:user/")
    by_name = {obs.resource: obs for obs in result.observations}
    assert {"core", "search"} <= set(by_name)
    core = by_name["core"]
    assert core.limit is not None and core.limit >= 60
    assert 0 <= core.remaining <= core.limit
    assert core.reset_at is not None and now - 5 <= core.reset_at <= now + 3600 + 5
