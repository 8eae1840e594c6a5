"""The CEL context ("activation") built for the rules that run through CEL.

Handing a value to CEL costs far more than running a compiled program: the
binding tries int and other conversions before it accepts a double or a string
(measured: ~0.4 µs for an int, ~1.2 µs for a double, ~1.7 µs for a string, ~2.5 µs
per entry of a map plus the map itself; ~0.3 µs to run a small program).  Hence:

* conditions in the common subset of CEL do not use CEL at run time at all:
  they run as Python closures reading the caller's context (:mod:`.native`);
  what follows concerns the others (``int()``, ``size()``, macros, ...), and
  the context is built only when a policy has some;
* conditions are compiled against *flat* variables: ``pool.remaining`` is
  rewritten as ``pool__remaining`` (see :mod:`.expression`); whole maps are passed
  only where a condition needs one: labels, ``has(pool.id)``, a variable used whole;
* only the fields some CEL rule reads are passed (:class:`ContextPlan`);
* the context is kept between evaluations and only values that changed since
  the previous one are converted again (:class:`ReusedContext`).  Consecutive
  intents share most values (time, statuses, labels, often the agent and cost).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import cel

from .variables import VARIABLES

Path = tuple[str, ...]
T = TypeVar("T")

_FLAT = re.compile(r"\b(" + "|".join(VARIABLES) + r")__(\w+)")


def flat_name(var: str, field: str) -> str:
    """The CEL variable that stands for ``var.field`` in a compiled condition."""
    return f"{var}__{field}"


def readable(message: str) -> str:
    """A CEL message with flat names turned back into ``var.field``."""
    return _FLAT.sub(r"\1.\2", message)


@dataclass(frozen=True, slots=True)
class ContextPlan:
    """Which flat ``var.field`` values and which maps (whole, or some fields) to pass."""

    flat: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    nested: tuple[tuple[str, tuple[str, ...] | None], ...]

    @classmethod
    def of(cls, flat: Iterable[Path], nested: Iterable[Path]) -> ContextPlan:
        flat_fields: dict[str, set[str]] = {}
        for var, field in flat:
            flat_fields.setdefault(var, set()).add(field)
        maps: dict[str, set[str] | None] = {}
        for path in nested:
            var = path[0]
            if len(path) == 1:
                maps[var] = None
            elif var not in maps:
                maps[var] = {path[1]}
            elif (fields := maps[var]) is not None:
                fields.add(path[1])
        return cls(
            flat=tuple(
                (var, tuple((field, flat_name(var, field)) for field in sorted(fields)))
                for var, fields in sorted(flat_fields.items())
            ),
            nested=tuple(
                (var, None if fields is None else tuple(sorted(fields)))
                for var, fields in sorted(maps.items())
            ),
        )

    def build(self, ctx: Mapping[str, Any]) -> dict[str, Any]:
        """The variables for CEL: numbers as floats, absent keys left out.

        On the hot path: written for speed (no helper calls per field).
        """
        variables: dict[str, Any] = {}
        for var, pairs in self.flat:
            source = ctx.get(var)
            if type(source) is not dict and not isinstance(source, Mapping):
                continue
            for field, name in pairs:
                try:
                    value = source[field]
                except KeyError:
                    continue
                variables[name] = float(value) if type(value) is int else value
        for var, fields in self.nested:
            source = ctx.get(var)
            if type(source) is not dict and not isinstance(source, Mapping):
                continue
            values = {}
            for key in source if fields is None else fields:
                if key in source:
                    value = source[key]
                    values[key] = float(value) if type(value) is int else value
            variables[var] = values
        return variables


class ReusedContext:
    """One ``cel.Context`` reused across evaluations; only changed values are converted.

    The result is the same as a fresh ``cel.Context(variables)`` every time, with
    one difference that makes it safer: a value CEL cannot take is left out (the
    rules reading it fail and are reported) instead of failing every rule.
    Evaluations from several threads take turns (:meth:`run`).
    """

    def __init__(self) -> None:
        self._context = cel.Context()
        self._values: dict[str, Any] = {}
        self._lock = threading.Lock()

    def run(self, program: Callable[[cel.Context], T], variables: dict[str, Any]) -> T:
        """``program(context)`` with the context set to ``variables``; one caller at a time."""
        with self._lock:
            return program(self._update(variables))

    def _update(self, variables: dict[str, Any]) -> cel.Context:
        values = self._values
        if variables.keys() != values.keys():
            return self._rebuild(variables)
        for name, value in variables.items():
            old = values[name]
            if type(old) is type(value) and old == value:
                continue
            if not _add(self._context, name, value):
                return self._rebuild(variables)  # the old value must not linger
            values[name] = _snapshot(value)
        return self._context

    def _rebuild(self, variables: dict[str, Any]) -> cel.Context:
        context, values = cel.Context(), {}
        for name, value in variables.items():
            if _add(context, name, value):
                values[name] = _snapshot(value)
        self._context, self._values = context, values
        return context


def _add(context: cel.Context, name: str, value: Any) -> bool:
    """Set a variable; False for a value CEL cannot represent (the rules reading it fail)."""
    try:
        context.add_variable(name, value)
    except Exception:  # the binding raises ValueError; a foreign boundary all the same
        return False
    return True


def _snapshot(value: Any) -> Any:
    """What to compare the next value with: a copy if the caller could mutate it."""
    return dict(value) if type(value) is dict else value
