"""A credential shape in any field of any write is refused with 400 and never reaches the log
(issue 15, item 7): every string of every write payload, through the daemon's real app."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ratelord.asgi.http import HTTPError
from ratelord.daemon.guard import refuse_credentials
from tests.support.inprocess import InProcessDaemon, in_process

CONFIG = {
    "providers": {
        "mock": {"principals": {"acct-1": {"pools": {"requests": {"limit": 1000}}}}},
    }
}
CREDENTIALS = [
    "ghp_" + "a1B2c3D4" * 5,
    "github_pat_" + "11ABCDEFG0" * 3,
    "sk-ant-api03-" + "x" * 30,
    "sk-proj-" + "Z9y8" * 8,
    "AKIA" + "ABCDEFGHIJKLMNOP",
    "glpat-" + "q" * 24,
    "xoxb-" + "1234-abcd" * 2,
    "AIza" + "Sy0_" * 9,
]
INTENT = {
    "agent_id": "agent-1",
    "identity_id": "id-a",
    "workload_id": "scan",
    "scope_id": "team",
    "urgency": "normal",
    "resource": "requests",
    "cost": 1,
    "labels": {"ticket": "T-1"},
}
LLM_INTENT = {
    **INTENT,
    "labels": {"ticket": "T-2"},
    "tokens": {"model": "gpt-4o", "input": 100, "output": 20},
}
#: A valid body of every write endpoint (``{lease}`` and ``{id}`` are filled in at run time).
WRITES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/intent"): INTENT,
    ("POST", "/v1/intents"): {"intents": [INTENT, LLM_INTENT]},
    ("POST", "/v1/intents/{intent_id}/check"): {},
    ("POST", "/v1/usage"): {
        "agent_id": "agent-1",
        "identity_id": "id-a",
        "resource": "requests",
        "cost": 1,
        "model": "gpt-x",
        "tokens": {"model": "gpt-x", "input": 10, "output": 5},
        "path": "/repos/x",
        "headers": {"x-ratelimit-remaining": "900"},
    },
    ("POST", "/v1/identities"): {
        "identity_id": "id-new",
        "provider_id": "mock",
        "principal": "acct-1",
        "kind": "token",
        "scope_id": "team",
        "labels": {"owner": "ops"},
    },
    ("POST", "/v1/identities/{identity_id}/{action}"): {"reason": "rotated by ops"},
    ("POST", "/v1/leases"): {
        "agent_id": "agent-1",
        "identity_id": "id-a",
        "resource": "requests",
        "units": 5,
        "labels": {"ticket": "T-1"},
    },
    ("POST", "/v1/leases/{lease_id}/report"): {"spent": 1},
    ("POST", "/v1/leases/{lease_id}/release"): {"spent": 1},
    ("POST", "/v1/policy/reload"): {},
    ("POST", "/v1/admin/rebuild"): {},
    ("POST", "/v1/admin/snapshot"): {},
    ("POST", "/v1/admin/archive"): {},
    ("POST", "/v1/admin/mock/external-usage"): {
        "principal": "acct-1",
        "resource": "requests",
        "amount": 1,
    },
    ("POST", "/v1/admin/mock/fail"): {"kind": "server", "count": 1},
}
PATHS = {
    "/v1/intents/{intent_id}/check": "/v1/intents/int-1/check",
    "/v1/identities/{identity_id}/{action}": "/v1/identities/id-a/rotate",
    "/v1/leases/{lease_id}/report": "/v1/leases/{lease}/report",
    "/v1/leases/{lease_id}/release": "/v1/leases/{lease}/release",
}


def places(body: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every way to put a credential into ``body``: (the field's path, a setter)."""
    if isinstance(body, dict):
        for key, value in body.items():
            sub = f"{path}.{key}"
            if isinstance(value, str):
                yield sub, (body, key)
            elif isinstance(value, dict | list):
                yield from places(value, sub)
        yield f"{path}.note", (body, "note")  # a field the endpoint does not know
    elif isinstance(body, list):
        for index, value in enumerate(body):
            yield from places(value, f"{path}[{index}]")


def cases() -> Iterator[Any]:
    n = 0
    for (method, route), body in WRITES.items():
        for field, _ in places(copy.deepcopy(body)):
            yield pytest.param(
                method, route, field, CREDENTIALS[n % len(CREDENTIALS)], id=f"{route}:{field}"
            )
            n += 1


def with_credential(body: dict[str, Any], field: str, credential: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for where, (container, key) in places(body):
        if where == field:
            container[key] = credential
            return body
    raise AssertionError(field)


async def log_text(d: InProcessDaemon) -> str:
    return json.dumps(await d.events())


@pytest.mark.parametrize(("method", "route", "field", "credential"), list(cases()))
async def test_a_credential_in_any_field_of_any_write_is_refused_and_never_logged(
    tmp_path: Path, method: str, route: str, field: str, credential: str
) -> None:
    async with in_process(tmp_path, config=CONFIG) as d:
        await d.http.post(
            "/v1/identities",
            json={"identity_id": "id-a", "provider_id": "mock", "principal": "acct-1"},
        )
        await d.poll("id-a")
        lease = (await d.http.post("/v1/leases", json=WRITES[("POST", "/v1/leases")])).json()
        before = await d.high_water()
        url = PATHS.get(route, route).format(lease=lease["lease_id"])
        body = with_credential(WRITES[(method, route)], field, credential)
        response = await d.http.request(method, url, json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "raw_credential"
        assert field in error["message"]
        assert credential not in response.text
        assert await d.high_water() == before
        assert credential not in await log_text(d)


async def test_every_write_endpoint_is_covered(tmp_path: Path) -> None:
    """A new write endpoint must be added to WRITES (and so to the test above)."""
    async with in_process(tmp_path, config=CONFIG) as d:
        document = (await d.http.get("/openapi.json")).json()
    posts = {("POST", path) for path, ops in document["paths"].items() if "post" in ops}
    assert posts - {("POST", "/v1/replay")} == set(WRITES)  # a replay writes nothing


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_every_credential_shape_is_refused_in_a_large_body(credential: str) -> None:
    """The cheap first pass (words every shape starts with) lets none of them through."""
    batch = {"intents": [INTENT] * 99 + [{**INTENT, "labels": {"note": credential}}]}
    with pytest.raises(HTTPError) as refused:
        refuse_credentials(json.dumps(batch).encode())
    assert "$.intents[99].labels.note" in refused.value.message


@pytest.mark.parametrize(
    "body",
    [
        # an escape must not hide a shape
        b'{"agent_id": "ghp\\u005f' + b"a1B2c3D4" * 5 + b'", "identity_id": "id-a"}',
        # nor nesting, nor a key
        b'{"labels": {"x": ["ok", {"deep": "sk-proj-' + b"Z9y8" * 8 + b'"}]}}',
        b'{"labels": {"ghp_' + b"a1B2c3D4" * 5 + b'": "v"}}',
        # a field named like a secret holding a string
        b'{"api_key": "hunter2"}',
        b'{"headers": {"x-note": "AKIAABCDEFGHIJKLMNOP"}}',
    ],
)
def test_the_guard_sees_through_escapes_nesting_and_keys(body: bytes) -> None:
    with pytest.raises(HTTPError) as refused:
        refuse_credentials(body)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(INTENT).encode(),
        b'{"costs": {"tokens": 130, "requests": 1}, "agent_id": "a", "identity_id": "b"}',
        b'{"secret_ref": "env:GITHUB_TOKEN", "token_fingerprint": "sha256:ab"}',
        b'{"headers": {"anthropic-ratelimit-tokens-remaining": "9000"}}',
        b'{"agent_id": "sk-short"}',
        b"not json at all ghp_",
    ],
)
def test_the_guard_lets_ordinary_bodies_through(body: bytes) -> None:
    refuse_credentials(body)
