"""Every command the README shows, run as written (issue 15, item 14).

The README's ``console`` blocks are read line by line: each ``$ command`` runs in
``bash`` from a directory laid out like a clone (``scenarios/``, ``examples/``,
``tests/``, ``bench/`` and the README's own ``policy.yaml`` and ``ratelord.yaml``),
against a real ``ratelord-d --demo`` that also polls a fake GitHub. The lines of one
block share a shell environment (``export`` carries over) and the servers the block
starts, as they would in a reader's terminal.

* A command a reader leaves running (a daemon, ``--follow``, a proxy) must still be
  running after a few seconds; a daemon must answer ``/v1/health``.
* A synopsis (``[--flag …]``, ``a | b``) runs without its optional parts, and every
  flag it names must be in the command's ``--help``.
* What is not run is listed in ``NOT_RUN`` with the reason; a new command in the
  README is run by default, so it cannot be added untested.

Only the environment is the test's: ``RATELORD_URL``/``PORT``/``DB`` and the proxy's
port point at free ports and temporary files, and ``localhost:8090`` (the default
port, in the ``curl`` example) at the test daemon.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.fakes.github import FakeGitHub
from tests.support.daemon import BIN, TLS, RunningDaemon, free_port, make_daemon, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

#: Commands not run, each with the reason (by the command as written, comment removed).
NOT_RUN = {
    "make test": "the whole suite (~25 min); CI runs it",
    "make lint": "part of make test, which CI runs",
    "make acceptance": "part of make test, which CI runs",
    "make bench": "minutes of benchmarks on an idle machine",
    "ratelord tui": "an interactive terminal app; tests/e2e/test_tui_tmux.py drives it in tmux",
    "python bench/gen_history.py /tmp/month.db --days 30": "writes 1,000,000 events (4-5 min)",
    "ratelord-d --db /tmp/month.db": "serves the month written by the skipped line above",
    "OPENAI_API_KEY=sk-test python examples/openai_chat.py --base-url "
    "http://127.0.0.1:8099/v1 --calls 60": "60 calls at 60 RPM take a minute; "
    "tests/e2e/test_llm_sdks.py runs the same example against the same fake",
    "ratelord-d --store postgresql://ratelord@db.internal/ratelord --bind 0.0.0.0 --port 8090 "
    "\\\n    --config cluster.yaml": "needs a PostgreSQL server at db.internal and TLS "
    "files; tests/e2e/test_cluster.py runs daemons on a real local PostgreSQL",
    "make cluster": "starts PostgreSQL and three daemons until Ctrl-C; tests/e2e/test_cluster.py",
    "RATELORD_URL=http://127.0.0.1:8091,http://127.0.0.1:8092,http://127.0.0.1:8093 "
    "ratelord status": "needs the cluster of make cluster",
    "kill -9 $(cat .cluster/ratelord-1.pid)": "needs the cluster of make cluster",
}

#: Synopses with alternatives (``a | b``): the concrete commands that stand for them.
SYNOPSES = {
    "ratelord identity list | show ID | revoke ID | rotate ID --secret-ref … | quarantine ID": [
        "ratelord identity list",
        "ratelord identity show pat:dana",
        "ratelord identity rotate pat:dana --secret-ref env:GITHUB_TOKEN",
        "ratelord identity quarantine pat:dana",
        "ratelord identity revoke pat:dana",
    ],
}

#: Commands a reader leaves running; how long they must stay up.
STAYS_UP_SECONDS = 3.0
DAEMONS = re.compile(r"^(make demo|ratelord-d\b)")
SERVERS = re.compile(r"^(make demo|ratelord-d\b|ratelord (proxy|mcp)\b|python -m tests\.fakes)")
FOLLOW = re.compile(r"--follow\b")


@dataclass
class Command:
    text: str  # as written, without its comment
    block: int


@dataclass
class Shell:
    """One README block's terminal: its environment and the servers it started."""

    cwd: Path
    env: dict[str, str]
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, command: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def start(self, command: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command.removesuffix('&').strip()}"],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.PIPE,  # ratelord mcp serves stdio until its input ends
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.servers.append(proc)
        return proc

    def export(self, command: str) -> None:
        """``export A=… B=…`` changes this shell's environment."""
        dump = self.run(f"{command} && env -0")
        assert dump.returncode == 0, dump.stderr
        self.env = dict(item.split("=", 1) for item in dump.stdout.split("\0") if "=" in item)

    def close(self) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.servers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()


def readme_commands(text: str) -> list[Command]:
    """Every ``$`` line of every ``console`` block, continuation lines joined."""
    commands: list[Command] = []
    for number, block in enumerate(re.findall(r"```console\n(.*?)```", text, re.S)):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if lines[i].startswith("$ "):
                command = _without_comment(lines[i][2:])
                while i + 1 < len(lines) and _continues(command, lines[i + 1]):
                    i += 1
                    command += "\n" + _without_comment(lines[i])
                commands.append(Command(command, number))
            i += 1
    return commands


def _continues(command: str, following: str) -> bool:
    open_quote = command.count("'") % 2 == 1
    synopsis = "[" in command and following.lstrip().startswith("[")
    return open_quote or command.rstrip().endswith("\\") or synopsis


def _without_comment(line: str) -> str:
    """The README's comments are set off by two spaces or more: ``cmd   # what it does``."""
    return re.split(r"\s{2,}# ", line, maxsplit=1)[0].rstrip()


def _optional_flags(synopsis: str) -> list[str]:
    return re.findall(r"\[(--[\w-]+)", synopsis)


def _without_optional(synopsis: str) -> str:
    return re.sub(r"\s*\[[^\]]*\]", "", synopsis).strip()


# ------------------------------------------------------------------ the reader's machine


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory laid out like the clone the README's commands run in."""
    work = tmp_path_factory.mktemp("readme")
    for name in ("scenarios", "examples", "tests", "bench", "Makefile", "pyproject.toml"):
        (work / name).symlink_to(ROOT / name)
    (work / ".venv").symlink_to(BIN.parent)
    # `make demo` installs only when its stamp is older than pyproject.toml; this venv,
    # which runs the test, has ratelord installed already.
    stamp = BIN.parent / ".runtime"
    if not stamp.exists() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        stamp.touch()
    text = README.read_text(encoding="utf-8")
    (work / "policy.yaml").write_text(_yaml_block(text, "policies:"))
    (work / "ratelord.yaml").write_text(_yaml_block(text, "providers:\n  mock:"))
    return work


def _yaml_block(text: str, starts: str) -> str:
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith(starts)]
    assert len(blocks) == 1, f"one yaml block of the README starts with {starts!r}"
    return blocks[0]


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub({"ghp_readmeDanaToken000000000000000000": "dana"}) as fake:
        yield fake


@pytest.fixture(scope="module")
def demo(clone: Path, github: FakeGitHub) -> Iterator[RunningDaemon]:
    """``ratelord-d --demo`` in the clone's directory (its ``ratelord.db`` and lock there)."""
    config = {"providers": {"github": {"base_url": github.url, "poll_interval_seconds": 1}}}
    env = {"GITHUB_TOKEN": "ghp_readmeDanaToken000000000000000000"}
    daemon = make_daemon(clone / "demo", config=config, env=env, args=["--demo"])
    daemon.db_path = clone / "ratelord.db"
    daemon.args[daemon.args.index("--db") + 1] = str(daemon.db_path)
    daemon.start()
    with daemon.client() as http:
        # The README's charge example asks for an LLM identity a reader has registered.
        body = {"identity_id": "key:a", "provider_id": "openai", "principal": "org-acme"}
        assert http.post("/v1/identities", json=body).status_code == 201
        wait_for(lambda: http.get("/v1/pools").json()["pools"], what="the demo's pools")
    yield daemon
    if daemon.alive():
        daemon.stop()


def _shell(clone: Path, demo: RunningDaemon, *, own_daemon: bool) -> Shell:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATELORD_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    port = free_port() if own_daemon else demo.port
    env["RATELORD_URL"] = f"http://127.0.0.1:{port}"
    env["RATELORD_PROXY_PORT"] = str(free_port())
    env["COLUMNS"] = "80"
    if own_daemon:
        env["RATELORD_PORT"] = str(port)
        env["RATELORD_DB"] = str(clone / f"own-{port}.db")
    return Shell(clone, env)


# ------------------------------------------------------------------ the test


def test_the_readme_shows_commands_in_console_blocks():
    commands = [c.text for c in readme_commands(README.read_text(encoding="utf-8"))]
    assert "ratelord status" in commands
    assert not [c for c in NOT_RUN if c not in commands], "NOT_RUN names a command gone"
    assert not [c for c in SYNOPSES if c not in commands], "SYNOPSES names a command gone"


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))
BLOCKS = sorted({c.block for c in COMMANDS})


@pytest.mark.timeout(300)
@pytest.mark.parametrize("number", BLOCKS, ids=lambda n: f"block{n}")
def test_every_readme_command_works_as_written(clone: Path, demo: RunningDaemon, number: int):
    block = [c.text for c in COMMANDS if c.block == number]
    own = any(DAEMONS.match(c) for c in block)
    shell = _shell(clone, demo, own_daemon=own)
    failures: list[str] = []
    try:
        for command in block:
            print(f"$ {command}", flush=True)
            problem = _run(shell, command, demo)
            if problem:
                failures.append(f"$ {command}\n{problem}")
    finally:
        shell.close()
    assert not failures, "\n\n".join(failures)


def _run(shell: Shell, command: str, demo: RunningDaemon) -> str | None:
    """Run one README line; return what went wrong, or None."""
    if command in NOT_RUN:
        return None
    if command in SYNOPSES:
        return next(filter(None, (_run(shell, c, demo) for c in SYNOPSES[command])), None)
    if "[" in command:
        return _synopsis(shell, command, demo)
    if command.startswith("export "):
        shell.export(command)
        return None
    command = command.replace("localhost:8090", shell.env["RATELORD_URL"].removeprefix("http://"))
    if SERVERS.match(command) or FOLLOW.search(command):
        return _stays_up(shell, command)
    done = shell.run(command)
    if done.returncode != 0 or "error:" in done.stderr:
        return f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    if command.startswith("curl") and '"decision"' not in done.stdout:
        return f"no decision in {done.stdout[:500]!r}"
    return None


def _synopsis(shell: Shell, synopsis: str, demo: RunningDaemon) -> str | None:
    flat = " ".join(synopsis.split())
    concrete = _without_optional(flat)
    helped = shell.run(f"{concrete.split(' --')[0]} --help")
    missing = [flag for flag in _optional_flags(flat) if flag not in helped.stdout]
    if helped.returncode != 0 or missing:
        return f"--help exit {helped.returncode}, flags missing from it: {missing}"
    return _run(shell, concrete, demo)


def _stays_up(shell: Shell, command: str) -> str | None:
    proc = shell.start(command)
    deadline = time.monotonic() + STAYS_UP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            return f"exited {proc.returncode} within {STAYS_UP_SECONDS}s:\n{output[-2000:]}"
        time.sleep(0.1)
    if DAEMONS.match(command):
        url = shell.env["RATELORD_URL"]
        try:
            wait_for(
                lambda: _healthy(url),
                timeout=30,
                what=f"{command} to answer at {url}",
            )
        except AssertionError as exc:
            return str(exc)
    return None


def _healthy(url: str) -> bool:
    """Up and serving (a daemon that wants a token answers 401, which is serving too)."""
    try:
        answer = httpx.get(f"{url}/v1/health", timeout=1, verify=TLS)
    except httpx.HTTPError:
        return False
    return answer.status_code == 401 or answer.json().get("status") == "ok"


def test_kill_hup_on_the_pid_in_the_lock_file_reloads_the_policy(clone: Path, demo: RunningDaemon):
    """The README's alternative to ``ratelord reload``: ``kill -HUP $(cat ratelord.db.lock)``."""
    done = _shell(clone, demo, own_daemon=False).run("kill -HUP $(cat ratelord.db.lock)")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: "(SIGHUP)" in demo.logs(), timeout=10, what="a reload on SIGHUP")
    assert demo.alive()
