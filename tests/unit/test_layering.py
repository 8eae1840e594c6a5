"""The layering of docs/architecture.md, checked: an import that crosses it fails here.

Every ``ratelord.*`` import in a package's source (lazy ones inside functions too)
must name the package itself or one it may depend on.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ratelord"

#: package → the ratelord packages it may import (besides itself and the version).
ALLOWED: dict[str, set[str]] = {
    "schema": set(),
    "llm": set(),
    "engine": {"llm", "schema"},
    "headers": {"engine", "llm", "schema"},
    "providers": {"engine", "headers", "schema"},
    "store": {"engine", "schema"},
    "service": {"engine", "headers", "providers", "schema"},
    "sim": {"engine", "providers", "schema", "service"},
    "history": {"engine", "providers", "schema", "store"},
    "web": set(),
    "daemon": {
        "engine",
        "headers",
        "history",
        "llm",
        "providers",
        "schema",
        "service",
        "store",
        "web",
    },
    "client": {"engine", "headers", "llm", "schema"},
    "tui": {"client", "schema"},
    "proxy": {"client", "engine", "headers", "llm", "providers", "schema"},
    "cli": {"client", "engine", "llm", "proxy", "schema", "sim", "tui"},
}
#: Single modules of a layer above that a package may borrow (generic, not daemon state).
BORROWED: dict[str, set[str]] = {
    "proxy": {"daemon.http"},  # the small ASGI layer
    "cli": {
        "daemon.logging",  # ``ratelord proxy`` logs like the daemon
        "store.backup",  # ``ratelord backup`` copies the database file itself
    },
}


def imported_packages(path: Path) -> set[str]:
    """What every import in ``path`` names after ``ratelord.``: its first component, and
    the first two as well (``daemon`` and ``daemon.http``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "ratelord":
                names = [f"ratelord.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "ratelord" and len(parts) > 1 and parts[1] != "__version__":
                found.add(parts[1] if len(parts) == 2 else f"{parts[1]}.{parts[2]}")
    return found


def package_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py")


def test_every_package_is_placed_in_a_layer() -> None:
    packages = {package_of(p) for p in SRC.rglob("*.py")} - {"__init__"}
    assert packages <= set(ALLOWED), f"add {sorted(packages - set(ALLOWED))} to ALLOWED"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_layers(package: str) -> None:
    root = SRC / package
    files = sorted(root.rglob("*.py")) if root.is_dir() else [SRC / f"{package}.py"]
    allowed = ALLOWED[package] | {package}
    crossing = {
        f"{path.relative_to(SRC)} imports ratelord.{imported}"
        for path in files
        for imported in imported_packages(path)
        if imported.split(".")[0] not in allowed and imported not in BORROWED.get(package, set())
    }
    assert not crossing, "\n".join(sorted(crossing))


def test_the_checker_sees_a_crossing(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from ratelord.daemon.runtime import Runtime\n")
    assert imported_packages(module) == {"daemon.runtime"}
