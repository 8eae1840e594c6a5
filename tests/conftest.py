"""Test-suite-wide plugins and settings: the acceptance matrix, pytester, Hypothesis, xdist.

The suite runs on several pytest-xdist workers (``-n auto`` in ``pyproject.toml``),
next to daemons, browsers and simulators competing for the same cores: a
Hypothesis example is judged on what it asserts, never on how long it took.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support import bytecode, shared

pytest_plugins = ["tests.acceptance_plugin", "tests.support.postgres", "pytester"]

settings.register_profile("ratelord", deadline=None)
settings.load_profile("ratelord")


#: Workers per core: most end-to-end tests wait on a process (a daemon, a browser), not a core.
WORKERS_PER_CORE = 2
MAX_WORKERS = 8


@pytest.hookimpl(optionalhook=True)  # known only when pytest-xdist is installed
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many workers ``-n auto`` starts: none for a run of named test files.

    Each worker imports the test plugins and collects on its own (seconds on a
    loaded machine), which a run of a file or two does not win back; a folder or
    the whole suite gets two workers per core.
    """
    if config.args and all(Path(arg.split("::")[0]).is_file() for arg in config.args):
        return 0
    return min(MAX_WORKERS, WORKERS_PER_CORE * (os.cpu_count() or 1))


def pytest_configure(config: pytest.Config) -> None:
    """Ratelord compiled once, before the workers and the processes they start import it."""
    if not hasattr(config, "workerinput"):
        bytecode.compile_sources()


@pytest.fixture(scope="session", autouse=True)
def _shared_results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Workers of one run share results of ``shared.once_per_run`` under the run's base temp.

    pytest-xdist gives each worker the folder ``<the run's base temp>/popen-gwN``.
    """
    if hasattr(request.config, "workerinput"):
        shared.directory = tmp_path_factory.getbasetemp().parent / "shared"
        shared.directory.mkdir(exist_ok=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    """A virtualenv made before pytest-xdist joined the dev tools runs on one process.

    Without this, ``addopts``' ``-n`` would stop every run with "unrecognized
    arguments" until ``make install`` is run again.
    """
    if importlib.util.find_spec("xdist") is not None:
        return
    group = parser.getgroup("xdist", "pytest-xdist is not installed (make install)")
    group._addoption("-n", "--numprocesses", dest="numprocesses", help="ignored")
    group.addoption("--dist", dest="dist", help="ignored")
