"""Results computed once per test run and shared by every pytest-xdist worker.

A simulator run costs seconds of CPU, and several tests read the same run (a
scenario's invariants, its goals, a baseline to compare with).  ``functools.cache``
is per process, and pytest-xdist spreads those tests over workers, so each worker
ran the scenario again.  :func:`once_per_run` keeps ``functools.cache``'s
meaning for the whole run: the first worker to ask computes the result while the
others wait on a file lock, then read the pickle it left.  On one process it is
``functools.cache`` alone.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Where the workers of this run leave their results; set by ``tests/conftest.py``
#: to a folder under the run's temporary base, left unset on a run without workers.
directory: Path | None = None


def once_per_run(fn: Callable[P, T]) -> Callable[P, T]:
    """``functools.cache`` whose results the workers of one test run share."""

    @functools.cache
    @functools.wraps(fn)
    def shared(*args: P.args, **kwargs: P.kwargs) -> T:
        if directory is None:
            return fn(*args, **kwargs)
        call = f"{fn.__module__}.{fn.__qualname__}{args!r}{sorted(kwargs.items())!r}"
        path = directory / hashlib.sha256(call.encode()).hexdigest()[:32]
        with (path.with_suffix(".lock")).open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if path.exists():
                with path.open("rb") as saved:
                    result: T = pickle.load(saved)  # noqa: S301 - written by this run
                return result
            result = fn(*args, **kwargs)
            partial = path.with_suffix(f".{os.getpid()}")
            partial.write_bytes(pickle.dumps(result))
            partial.replace(path)
            return result

    return shared
