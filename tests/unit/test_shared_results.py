"""Results shared by the pytest-xdist workers of a run (``tests/support/shared.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import shared


def test_a_result_is_computed_once_for_every_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "directory", tmp_path)
    calls: list[int] = []

    def square(n: int) -> int:
        calls.append(n)
        return n * n

    # Two workers: two processes, each with its own cache of the same function.
    worker_a, worker_b = shared.once_per_run(square), shared.once_per_run(square)
    assert worker_a(3) == 9
    assert worker_b(3) == 9
    assert worker_b(4) == 16
    assert worker_a(4) == 16
    assert calls == [3, 4]


def test_without_workers_it_is_a_plain_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "directory", None)
    calls: list[int] = []

    @shared.once_per_run
    def double(n: int) -> int:
        calls.append(n)
        return 2 * n

    assert double(2) == double(2) == 4
    assert calls == [2]
