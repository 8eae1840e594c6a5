"""Smoke test: ``ratelord tui`` in a real terminal (tmux), read back with ``capture-pane``."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_tui import POOL_1, TUI_CONFIG
from tests.support.daemon import BIN, RunningDaemon

pytestmark = [pytest.mark.e2e, pytest.mark.tmux, pytest.mark.slow]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def tui_command(url: str) -> list[str]:
    """``ratelord --url URL tui``, or ``ratelord-tui`` where the CLI has no tui command."""
    probe = subprocess.run([str(BIN / "ratelord"), "tui", "--help"], capture_output=True)
    if probe.returncode == 0:
        return [str(BIN / "ratelord"), "--url", url, "tui"]
    return [str(BIN / "ratelord-tui"), "--url", url]


def test_ratelord_tui_runs_in_a_real_terminal_and_quits_on_q(
    daemon_factory: Callable[..., RunningDaemon], tmp_path: Path
) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (CI installs it)")
    daemon = daemon_factory(config=TUI_CONFIG)
    with daemon.client() as http:
        body = {"identity_id": "id-a", "provider_id": "mock", "principal": "acct-1"}
        assert http.post("/v1/identities", json=body).status_code == 201

    server = f"ratelord-tui-test-{daemon.port}"  # a private tmux server, not the user's
    rc_file = tmp_path / "exit-code"
    shell = f"{shlex.join(tui_command(daemon.url))}; echo $? > {shlex.quote(str(rc_file))}"
    tmux = ["tmux", "-L", server]

    def screen() -> str:
        capture = [*tmux, "capture-pane", "-p", "-t", "tui"]
        return subprocess.run(capture, capture_output=True, text=True).stdout

    env_term = ["env", "TERM=xterm-256color", "sh", "-c", shell]
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "tui", "-x", "120", "-y", "40", *env_term], check=True
    )
    try:
        wait_for(lambda: POOL_1 in screen() and "Connected" in screen(), 60, "the dashboard")
        text = screen()
        assert "ratelord-d" in text and "risk" in text
        assert "id-a" in text
        subprocess.run([*tmux, "send-keys", "-t", "tui", "q"], check=True)
        wait_for(rc_file.exists, 20, "the dashboard to exit")
        wait_for(lambda: rc_file.read_text().strip() != "", 5, "the exit code")
        assert rc_file.read_text().strip() == "0"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
