"""Rule parameters: optional settings of an action, checked at load time.

``shape`` takes ``wait_seconds`` (a fixed wait instead of the computed pacing
wait) or ``min_wait_seconds`` / ``max_wait_seconds`` (bounds on the computed
wait).  ``switch_identity`` takes ``identities``, globs of the identities it
may switch to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .model import Action, PolicyError

#: A rule's params: seconds as floats, identity globs as a tuple of strings.
Params = dict[str, Any]

_SECONDS = ("wait_seconds", "min_wait_seconds", "max_wait_seconds")
#: Each parameter and the one action it belongs to.
PARAMS: dict[str, Action] = {
    **dict.fromkeys(_SECONDS, Action.SHAPE),
    "identities": Action.SWITCH_IDENTITY,
}


def parse_params(node: Any, action: Action) -> Params:
    """Validate a rule's ``params`` mapping; raises :class:`PolicyError` (message only)."""
    if not isinstance(node, Mapping):
        raise PolicyError(f"params must be a mapping, not {node!r}")
    params: Params = {}
    for key, value in node.items():
        if key not in PARAMS:
            raise PolicyError(f"unknown param {key!r} (known: {', '.join(PARAMS)})")
        if PARAMS[key] is not action:
            raise PolicyError(f"param {key!r} only applies to action '{PARAMS[key].value}'")
        params[key] = _seconds(key, value) if key in _SECONDS else _globs(key, value)
    if "wait_seconds" in params and len(params) > 1:
        raise PolicyError(
            "'wait_seconds' fixes the wait: do not combine it with min/max_wait_seconds"
        )
    low, high = params.get("min_wait_seconds"), params.get("max_wait_seconds")
    if low is not None and high is not None and low > high:
        raise PolicyError(f"min_wait_seconds ({low:g}) is above max_wait_seconds ({high:g})")
    return params


def _seconds(key: str, value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise PolicyError(f"param {key!r} must be a number of seconds >= 0, not {value!r}")
    return float(value)


def _globs(key: str, value: Any) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(glob, str) and glob for glob in value)
    ):
        raise PolicyError(
            f"param {key!r} must be a non-empty list of identity globs, not {value!r}"
        )
    return tuple(value)
