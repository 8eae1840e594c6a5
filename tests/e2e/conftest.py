from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import RunningDaemon, make_daemon

pytestmark = pytest.mark.e2e

#: A small mock-provider setup most end-to-end tests start from.
MOCK_CONFIG: dict[str, Any] = {
    "providers": {
        "mock": {
            "principals": {
                "acct-1": {"pools": {"requests": {"limit": 5000, "window_seconds": 3600}}},
                "acct-2": {"pools": {"requests": {"limit": 5000, "window_seconds": 3600}}},
            }
        }
    }
}


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., RunningDaemon]]:
    """``daemon_factory(config=..., policy=..., env=..., start=True)`` → a running daemon.

    Every daemon it made is stopped at teardown.
    """
    made: list[RunningDaemon] = []

    def factory(*, start: bool = True, name: str = "d", **kwargs: Any) -> RunningDaemon:
        daemon = make_daemon(tmp_path / f"{name}{len(made)}", **kwargs)
        made.append(daemon)
        return daemon.start() if start else daemon

    yield factory
    for daemon in made:
        if daemon.alive():
            daemon.kill()


@pytest.fixture
def daemon(daemon_factory: Callable[..., RunningDaemon]) -> RunningDaemon:
    """A running daemon with no config file (built-in defaults, demo provider off)."""
    return daemon_factory()


@pytest.fixture
def mock_daemon(daemon_factory: Callable[..., RunningDaemon]) -> RunningDaemon:
    """A running daemon with the mock provider configured (principals acct-1, acct-2)."""
    return daemon_factory(config=MOCK_CONFIG)
