"""Across the network: a bearer token per client with scopes, TLS, and no token in the log."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.daemon import RunningDaemon, wait_for

pytestmark = pytest.mark.e2e

Factory = Callable[..., RunningDaemon]
TOKENS = {"READER": "r-" + "x7" * 16, "AGENT": "a-" + "k3" * 16, "OPS": "o-" + "m9" * 16}
CONFIG = {
    "auth": {
        "tokens": [
            {"name": "dashboard", "token_ref": "env:READER", "scopes": ["read"]},
            {"name": "agents", "token_ref": "env:AGENT", "scopes": ["read", "ask"]},
            {"name": "ops", "token_ref": "env:OPS", "scopes": ["read", "ask", "admin"]},
        ]
    }
}
INTENT = {"agent_id": "a", "identity_id": "pat:a", "resource": "core"}
IDENTITY = {"identity_id": "pat:a", "provider_id": "github", "principal": "alice"}


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[name]}"}


def test_each_client_may_do_what_its_scopes_say(daemon_factory: Factory) -> None:
    d = daemon_factory(config=CONFIG, env=TOKENS)
    with d.client() as http:
        assert http.get("/v1/health").status_code == 200  # public
        assert http.get("/v1/pools").status_code == 401
        assert http.get("/v1/pools", headers={"authorization": "Bearer nope"}).status_code == 401
        assert http.get("/v1/pools", headers=bearer("READER")).status_code == 200
        refused = http.post("/v1/intent", json=INTENT, headers=bearer("READER"))
        assert refused.status_code == 403
        assert "'dashboard' lacks the 'ask' scope" in refused.json()["error"]["message"]
        no_admin = http.post("/v1/identities", json=IDENTITY, headers=bearer("AGENT"))
        assert no_admin.status_code == 403
        assert http.post("/v1/identities", json=IDENTITY, headers=bearer("OPS")).status_code == 201
        # The 'ask' scope reaches a decision (an unobserved pool is refused, but decided).
        assert http.post("/v1/intent", json=INTENT, headers=bearer("AGENT")).status_code == 200
        # Batches and leases are what an agent does too: 'ask' is enough, 'read' is not.
        writes = {
            "/v1/intents": {"intents": [INTENT]},
            "/v1/leases": {**INTENT, "units": 5, "ttl_seconds": 30},
        }
        for path, body in writes.items():
            assert http.post(path, json=body, headers=bearer("READER")).status_code == 403, path
            assert http.post(path, json=body, headers=bearer("AGENT")).status_code < 300, path
        # A what-if replay runs in a sandbox and changes nothing: a reader may run it.
        replay = http.post("/v1/replay", json={"since": "1h"}, headers=bearer("READER"))
        assert replay.status_code == 200, replay.text
    d.stop()
    logs = d.logs()
    assert all(token not in logs for token in TOKENS.values())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_tls_with_a_certificate_and_key(daemon_factory: Factory, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    config = {**CONFIG, "server": {"tls_cert": str(cert), "tls_key": str(key)}}
    d = daemon_factory(config=config, env=TOKENS, start=False)
    d.start(wait=False)
    url, trusted = f"https://127.0.0.1:{d.port}", ssl.create_default_context(cafile=str(cert))

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/v1/health", verify=trusted).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=20, what="the daemon over HTTPS")
    pools = httpx.get(f"{url}/v1/pools", headers=bearer("READER"), verify=trusted)
    assert pools.status_code == 200
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not spoken
        httpx.get(f"http://127.0.0.1:{d.port}/v1/health", timeout=2)
