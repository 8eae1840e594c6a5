"""Reason templates: ``{var.field}`` and ``{var.field:format-spec}`` filled from the context.

A template is parsed once at load time into literal text and field lookups.
Rendering walks plain dict keys (never attributes, never indexing, never
``eval``), so a template can only show values the context already holds; a
missing key renders as ``?``.  Numbers without a format spec render compactly:
``5.0`` as ``5``, ``0.123456789`` as ``0.123457``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .model import PolicyError
from .variables import MAP, VARIABLES, check_path, describe_type, sample_value

MISSING = "?"

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Field:
    path: Path
    spec: str


@dataclass(frozen=True, slots=True)
class Template:
    """Literal strings and :class:`Field` lookups, rendered in order."""

    parts: tuple[str | Field, ...]

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(part.path for part in self.parts if isinstance(part, Field))

    def render(self, ctx: Mapping[str, Any]) -> str:
        return "".join(
            part if isinstance(part, str) else _render_field(part, ctx) for part in self.parts
        )


def parse_template(text: str, prefix: str = "") -> Template:
    """Parse a reason template; raises :class:`PolicyError` (message only)."""
    parts: list[str | Field] = [prefix] if prefix else []
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise PolicyError(f"bad reason template {text!r}: {exc}") from None
    for literal, name, spec, conversion in pieces:
        if literal:
            parts.append(literal)
        if name is None:
            continue
        if conversion is not None or not name or any(c in name for c in "[]()"):
            raise PolicyError(
                f"bad reason template {text!r}: write fields as {{var.field}} or "
                f"{{var.field:format}}, not {{{name}{'!' + conversion if conversion else ''}}}"
            )
        path = tuple(name.split("."))
        problem = check_path(path)
        if problem is not None:
            raise PolicyError(f"reason template: {problem}")
        field = Field(path, spec or "")
        _check_spec(field, text)
        parts.append(field)
    return Template(tuple(parts))


def literal_and_values(prefix: str, text: str, paths: Iterable[Path]) -> Template:
    """``prefix`` + ``text`` verbatim, then ``(a.b=<value>, ...)`` for the scalar paths."""
    parts: list[str | Field] = [prefix + text]
    shown = [path for path in paths if len(path) == 2 and _field_type(path) != MAP]
    for index, path in enumerate(shown):
        parts.append(f"{' (' if index == 0 else ', '}{'.'.join(path)}=")
        parts.append(Field(path, ""))
    if shown:
        parts.append(")")
    return Template(tuple(parts))


def plain(value: Any) -> str:
    """A value for people: integral floats without ``.0``, others to 6 significant digits."""
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".6g")
    return str(value)


def _render_field(field: Field, ctx: Mapping[str, Any]) -> str:
    value: Any = ctx
    for key in field.path:
        if type(value) is not dict and not isinstance(value, Mapping):
            return MISSING
        try:
            value = value[key]
        except KeyError:
            return MISSING
    if not field.spec:
        return plain(value)
    try:
        return format(value, field.spec)
    except (ValueError, TypeError):
        return plain(value)


def _field_type(path: Path) -> Any:
    return VARIABLES[path[0]].get(path[1]) if len(path) > 1 else MAP


def _check_spec(field: Field, text: str) -> None:
    """Reject a format spec that cannot format the field's type (``{intent.urgency:.0%}``)."""
    if not field.spec:
        return
    kind = _field_type(field.path) if len(field.path) <= 2 else "string"
    try:
        format(sample_value(kind), field.spec)
    except (ValueError, TypeError) as exc:
        raise PolicyError(
            f"bad reason template {text!r}: format '{field.spec}' does not fit "
            f"{'.'.join(field.path)}, a {describe_type(kind)} ({exc})"
        ) from None
