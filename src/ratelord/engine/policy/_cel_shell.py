"""Import the ``cel`` package without its interactive shell, which ratelord never runs.

``cel/__init__.py`` imports ``cel.cli``, a REPL built on Typer, Rich,
prompt_toolkit and Pygments: about 0.2 s of CPU, a third of what ``ratelord-d``
spends importing before it serves (and the test suite starts hundreds of daemons).
Importing this module (the policy package does, before anything imports ``cel``)
registers a stand-in for ``cel.cli`` that imports the real module
on the first read of one of its names, so the shell still works if asked for.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from typing import Any


class _ImportedOnFirstUse(types.ModuleType):
    """``cel.cli`` that runs the real module's code the first time a name is read."""

    def __init__(self, spec: importlib.machinery.ModuleSpec) -> None:
        super().__init__(spec.name)
        self._real_spec = spec

    def __getattr__(self, name: str) -> Any:
        real = importlib.util.module_from_spec(self._real_spec)
        assert self._real_spec.loader is not None
        self._real_spec.loader.exec_module(real)
        vars(self).update(vars(real))  # later reads find the names without this method
        return getattr(real, name)


def _defer() -> None:
    """Stand in for ``cel.cli`` unless ``cel`` is imported already."""
    if "cel" in sys.modules:
        return
    package = importlib.util.find_spec("cel")
    if package is None or package.submodule_search_locations is None:
        return
    spec = importlib.machinery.PathFinder.find_spec(
        "cel.cli", list(package.submodule_search_locations)
    )
    if spec is not None and spec.loader is not None:
        sys.modules["cel.cli"] = _ImportedOnFirstUse(spec)


_defer()
