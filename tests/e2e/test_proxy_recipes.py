"""The recipes of docs/proxy.md, each run against the real tool through ``ratelord proxy``:
the anthropic SDK, curl, a Node.js fetch script, and an upstream over verified TLS."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import trustme

from tests.fakes.llm import FakeLLM
from tests.support.daemon import RunningDaemon, events, make_daemon, register, wait_for
from tests.support.proxy import RunningProxy, start_proxy

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-test-recipes-openai-000000000000"
ANTHROPIC_KEY = "sk-ant-test-recipes-anthropic-00000"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proxy"


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeLLM]]:
    with (
        FakeLLM("openai", rpm=1000, tpm=1_000_000, keys=[OPENAI_KEY]) as openai_fake,
        FakeLLM("anthropic", rpm=1000, tpm=1_000_000, keys=[ANTHROPIC_KEY]) as anthropic_fake,
    ):
        yield {"openai": openai_fake, "anthropic": anthropic_fake}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = make_daemon(
        tmp_path_factory.mktemp("daemon"),
        env={"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY},
    ).start()
    with running.client() as http:
        register(http, "openai:acme", "org-acme", "openai", secret_ref="env:OPENAI_API_KEY")
        register(
            http, "anthropic:acme", "org-acme", "anthropic", secret_ref="env:ANTHROPIC_API_KEY"
        )
    yield running
    running.kill()


@pytest.fixture(scope="module")
def proxy(
    daemon: RunningDaemon, fakes: dict[str, FakeLLM], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    upstreams = {name: {"kind": name, "url": fake.url} for name, fake in fakes.items()}
    running = start_proxy(daemon, upstreams, tmp_path_factory.mktemp("proxy"))
    yield running
    running.stop()
    for secret in (OPENAI_KEY, ANTHROPIC_KEY):
        assert secret not in running.logs() and secret not in daemon.logs()


def test_the_anthropic_sdk(proxy: RunningProxy, fakes: dict[str, FakeLLM]) -> None:
    with anthropic.Anthropic(
        base_url=f"{proxy.url}/anthropic", api_key=ANTHROPIC_KEY, max_retries=0
    ) as client:
        message = client.messages.create(
            model="claude-fake-model", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.usage.output_tokens == 64
        with client.messages.stream(
            model="claude-fake-model", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            text = "".join(stream.text_stream)
    assert text.count("ok") == 32
    assert fakes["anthropic"].calls == 2


def test_curl(proxy: RunningProxy, fakes: dict[str, FakeLLM]) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    result = subprocess.run(
        [
            "curl",
            "-sS",
            f"{proxy.url}/openai/v1/chat/completions",
            "-H",
            f"Authorization: Bearer {OPENAI_KEY}",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps({**body, "max_tokens": 20}),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(result.stdout)["usage"]["completion_tokens"] == 20


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_a_node_fetch_script(proxy: RunningProxy) -> None:
    result = subprocess.run(
        ["node", str(EXAMPLES / "chat.mjs"), f"{proxy.url}/openai/v1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"OPENAI_API_KEY": OPENAI_KEY, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "status 200, 21 tokens"


# ---------------------------------------------------------------------------- TLS


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def tls_upstream(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server whose certificate only a private CA vouches for."""
    ca = trustme.CA()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield f"https://127.0.0.1:{server.server_address[1]}", ca_file
    server.shutdown()
    server.server_close()


# The stdlib server drops the socket of the handshake the proxy refused without closing it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_tls_upstreams_are_verified(
    daemon: RunningDaemon, tls_upstream: tuple[str, Path], tmp_path: Path
) -> None:
    url, ca_file = tls_upstream
    upstreams = {
        "trusted": {"url": url, "ca_file": str(ca_file)},
        "untrusted": {"url": url},
    }
    running = start_proxy(daemon, upstreams, tmp_path)
    try:
        headers = {"authorization": f"Bearer {OPENAI_KEY}"}
        # Generic upstreams charge 1 'requests' of the identity (openai:acme here), a pool no
        # answer ever names: each call is a first call, one at a time.  The refused handshake
        # gives its reservation back before the 502, so the trusted call may go next.
        refused = httpx.get(f"{running.url}/untrusted/echo", headers=headers)
        assert refused.status_code == 502
        assert "CERTIFICATE_VERIFY_FAILED" in refused.json()["error"]["message"]
        ok = httpx.get(f"{running.url}/trusted/echo?x=1", headers=headers)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"path": "/echo?x=1"}
    finally:
        running.stop()


def test_a_busy_key_spends_from_the_proxys_leases_not_one_ask_per_call(
    proxy: RunningProxy, daemon: RunningDaemon, fakes: dict[str, FakeLLM]
) -> None:
    fake = fakes["openai"]
    messages = [{"role": "user", "content": "Say ok."}]
    with (
        openai.OpenAI(base_url=f"{proxy.url}/openai/v1", api_key=OPENAI_KEY, max_retries=0) as sdk,
        daemon.client() as http,
    ):

        def call(_: int = 0) -> int:
            answer = sdk.chat.completions.create(
                model="gpt-4o-mini", max_tokens=5, messages=messages
            )
            assert answer.usage is not None
            return answer.usage.total_tokens

        call()  # the pools are observed (a first call probes them) before the burst
        wait_for(lambda: events(http, type="usage_reported", identity_id="openai:acme"))
        mark = events(http)[-1]["seq"]
        calls, rejected = fake.calls, fake.rejected
        with ThreadPoolExecutor(4) as pool:
            assert all(tokens > 0 for tokens in pool.map(call, range(150)))
        assert (fake.calls - calls, fake.rejected - rejected) == (150, 0)
        asked = events(http, after_seq=mark, type="intent_decided", identity_id="openai:acme")
        assert len(asked) < 75, f"{len(asked)} of 150 calls were asked for one by one"

        def reported() -> set[str]:
            spent = events(http, after_seq=mark, type="lease_reported")
            return {e["pool_id"] for e in spent if e["payload"]["spent"] > 0}

        pools = wait_for(lambda: len(reported()) == 2 and reported(), what="lease reports")
        assert pools == {
            "openai:requests@gpt-4o-mini:org-acme",
            "openai:tokens@gpt-4o-mini:org-acme",
        }
