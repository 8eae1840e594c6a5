"""The providers configured under ``providers:``, each with its polling interval."""

from __future__ import annotations

from dataclasses import dataclass

from ratelord.daemon.config import ProvidersSettings
from ratelord.providers.base import Provider
from ratelord.providers.mock import MockProvider


@dataclass(frozen=True, slots=True)
class Configured:
    provider: Provider
    poll_interval: float


def configure(settings: ProvidersSettings, now: float) -> dict[str, Configured]:
    """Build every configured provider, keyed by its own ``provider_id``."""
    built: list[Configured] = []
    if settings.mock is not None:
        built.append(
            Configured(MockProvider(settings.mock, start=now), settings.mock.poll_interval_seconds)
        )
    if settings.github is not None:
        from ratelord.providers.github import GitHubProvider

        github = GitHubProvider(
            base_url=settings.github.base_url, timeout_seconds=settings.github.timeout_seconds
        )
        built.append(Configured(github, settings.github.poll_interval_seconds))
    return {c.provider.provider_id: c for c in built}
