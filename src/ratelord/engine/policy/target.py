"""Policy targets: which intents and pools a policy's rules apply to.

``global`` applies everywhere; ``<dimension>:<glob>`` matches one id of the
context with :mod:`fnmatch` rules (``*``, ``?``, ``[seq]``; case-sensitive,
``*`` also matches ``:`` and ``/``).  Pool ids contain colons
(``github:core:user/alice``): only the first colon separates the dimension.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import PolicyError

GLOBAL = "global"

#: dimension → (context variable, key) holding the id the glob is matched against.
DIMENSIONS: dict[str, tuple[str, str]] = {
    "pool": ("pool", "id"),
    "identity": ("intent", "identity_id"),
    "agent": ("intent", "agent_id"),
    "workload": ("intent", "workload_id"),
    "scope": ("intent", "scope_id"),
}

_FORMS = "global, " + ", ".join(f"{name}:<glob>" for name in DIMENSIONS)


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    dimension: str | None = None  # None for global
    _match: Callable[[str], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def is_global(self) -> bool:
        return self.dimension is None

    def matches(self, ctx: Mapping[str, Any]) -> bool:
        if self._match is None:
            return True
        var, key = DIMENSIONS[self.dimension or ""]
        source = ctx.get(var)
        value = source.get(key) if isinstance(source, Mapping) else None
        return isinstance(value, str) and self._match(value) is not None


def parse_target(text: Any) -> Target:
    """Parse ``global`` or ``dimension:glob``; raises :class:`PolicyError` (message only)."""
    if not isinstance(text, str):
        raise PolicyError(f"target must be a string ({_FORMS}), not {text!r}")
    if text == GLOBAL:
        return Target(GLOBAL)
    dimension, colon, glob = text.partition(":")
    if not colon or dimension not in DIMENSIONS or not glob:
        raise PolicyError(f"bad target {text!r} (use {_FORMS})")
    return Target(text, dimension, re.compile(fnmatch.translate(glob)).match)
