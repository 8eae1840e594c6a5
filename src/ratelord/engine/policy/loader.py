"""Reading policy YAML: from a file, from text, or the built-in default.

The YAML is read with PyYAML's safe loader (no Python tags), with two
additions: every mapping remembers the line it starts on, so errors can point
at it, and a key written twice in one mapping is an error instead of the
last one silently winning.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .compiled import CompiledPolicy
from .compiler import compile_document
from .model import PolicyError

BUILT_IN_SOURCE = "built-in"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LineDict(dict[Any, Any]):
    """A mapping from the YAML file that knows its (1-based) line."""

    __slots__ = ("line",)

    def __init__(self, items: dict[Any, Any], line: int) -> None:
        super().__init__(items)
        self.line = line


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    seen: set[str] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key_node.value}'", key_node.start_mark
                )
            seen.add(key_node.value)
    return _LineDict(loader.construct_mapping(node, deep=True), node.start_mark.line + 1)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def policy_version(text: str) -> str:
    """The content hash that identifies a policy text: ``sha256:`` and 12 hex digits."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]


def load_policy_text(text: str, source: str = "<string>") -> CompiledPolicy:
    """Parse, validate and compile policy YAML; raises :class:`PolicyError`."""
    try:  # the reader refuses unprintable characters as soon as it is made
        loader = _Loader(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"YAML error: {exc}", source=source) from None
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        kind = "YAML" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise PolicyError(
            f"{kind}: {exc.problem or exc.context}",
            source=source,
            line=None if mark is None else mark.line + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"YAML error: {exc}", source=source) from None
    finally:
        loader.dispose()
    if data is None:
        raise PolicyError("the policy is empty (expected 'policies: [...]')", source=source)
    return compile_document(data, source=source, version=policy_version(text))


def load_policy_file(path: str | Path) -> CompiledPolicy:
    """Load a policy file; a missing or unreadable file is a :class:`PolicyError` too."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError("no such file", source=source) from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"not UTF-8 text ({exc.reason})", source=source) from None
    except OSError as exc:
        raise PolicyError(f"cannot read the file: {exc.strerror}", source=source) from None
    return load_policy_text(text, source)


@functools.cache
def default_policy() -> CompiledPolicy:
    """The built-in policy (``default.yaml`` in this package), used when none is configured."""
    text = resources.files(__package__).joinpath("default.yaml").read_text(encoding="utf-8")
    return load_policy_text(text, BUILT_IN_SOURCE)
