"""ratelord imports the ``cel`` package without cel's interactive shell, which still works."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import ratelord.daemon.main
import cel
shell = ("prompt_toolkit", "typer", "rich", "pygments")
print(sorted({m.split(".")[0] for m in sys.modules} & set(shell)))
print(cel.evaluate("size(xs) + 1", {"xs": [1, 2]}))
print(callable(cel.cli.main), "prompt_toolkit" in sys.modules)
"""


def test_the_daemon_imports_cel_without_its_shell_and_the_shell_still_loads_on_use() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == ["[]", "3", "True True"], done.stdout + done.stderr
