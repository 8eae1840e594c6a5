"""Compile ratelord's sources to bytecode once, before the suite starts its processes.

The suite starts hundreds of ``ratelord-d``, ``ratelord`` and fake-server processes.
An editable install leaves ``src/`` uncompiled (pip compiles only what it copies into
site-packages), and where ``PYTHONDONTWRITEBYTECODE`` is set (as on the machines
this suite runs on) no process writes the bytecode it compiled: each one compiled
all of ratelord again, about 0.15-0.2 s of CPU per start.  ``compileall`` writes the
files explicitly, as ``pip install`` does for site-packages, and skips those whose
bytecode is current; Python still checks every file's timestamp on import, so an
edited source is never run from stale bytecode.
"""

from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What the suite's processes import: ratelord, and the fakes and helpers that run as
#: their own processes (``python -m tests.fakes``).
SOURCES = (ROOT / "src", ROOT / "tests" / "support", ROOT / "tests" / "fakes")


def compile_sources() -> None:
    """Write current bytecode for :data:`SOURCES` (quietly; a read-only tree only runs slower)."""
    for source in SOURCES:
        compileall.compile_dir(source, quiet=2)
