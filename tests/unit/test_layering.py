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
    "asgi": {"schema"},
    "engine": {"llm", "schema"},
    "headers": {"engine", "llm", "schema"},
    "providers": {"engine", "headers", "schema"},
    "store": {"engine", "schema"},
    "service": {"engine", "headers", "providers", "schema"},
    "sim": {"engine", "providers", "schema", "service"},
    "history": {"engine", "providers", "schema", "store"},
    "web": set(),
    "daemon": {
        "asgi",
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
    "proxy": {"asgi", "client", "engine", "headers", "llm", "providers", "schema"},
    "cli": {"asgi", "client", "engine", "llm", "proxy", "schema", "sim", "tui"},
}
#: Single modules of a layer above that a package may borrow (generic, not daemon state).
BORROWED: dict[str, set[str]] = {
    "cli": {"store.backup"},  # ``ratelord backup`` copies the database file itself
}


#: Libraries that reach the network, a database or an event loop.
IO_LIBRARIES = {"aiohttp", "asyncio", "http", "httpx", "httpx2", "psycopg", "requests", "socket"}
IO_LIBRARIES |= {"sqlite3", "urllib3", "uvicorn"}
#: package → the I/O libraries it must not import, and why.
NO_IO: dict[str, tuple[set[str], str]] = {
    "engine": (IO_LIBRARIES, "the engine is deterministic: no network, store or event loop"),
    "schema": (IO_LIBRARIES, "the wire models are plain data"),
    "tui": (IO_LIBRARIES - {"asyncio"}, "the dashboard reads the daemon through ratelord.client"),
}


def imported_modules(path: Path) -> set[str]:
    """The full name of every module ``path`` imports (lazy imports inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "ratelord":
                found.update(f"ratelord.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def imported_packages(path: Path) -> set[str]:
    """The ratelord packages ``path`` imports (``daemon`` for ``ratelord.daemon.runtime``)."""
    return {
        name.split(".")[1]
        for name in imported_modules(path)
        if name.startswith("ratelord.") and name != "ratelord.__version__"
    }


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
    borrowed = BORROWED.get(package, set())
    crossing = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in files
        for name in imported_modules(path)
        if name.startswith("ratelord.")
        and name != "ratelord.__version__"
        and name.split(".")[1] not in allowed
        and ".".join(name.split(".")[1:3]) not in borrowed
    }
    assert not crossing, "\n".join(sorted(crossing))


@pytest.mark.parametrize("package", sorted(NO_IO))
def test_pure_layers_do_no_io(package: str) -> None:
    forbidden, why = NO_IO[package]
    root = SRC / package
    files = sorted(root.rglob("*.py")) if root.is_dir() else [SRC / f"{package}.py"]
    found = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in files
        for name in imported_modules(path)
        if name.split(".")[0] in forbidden
    }
    assert not found, f"{why}:\n" + "\n".join(sorted(found))


def test_the_checker_sees_a_crossing(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from ratelord.daemon.runtime import Runtime\n")
    assert imported_packages(module) == {"daemon"}


def test_the_checker_sees_io(tmp_path: Path) -> None:
    module = tmp_path / "io.py"
    module.write_text("def f():\n    import httpx\n    from socket import socket\n")
    assert imported_modules(module) == {"httpx", "socket"}
