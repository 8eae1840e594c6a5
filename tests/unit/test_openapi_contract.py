"""``/openapi.json`` says what each endpoint returns: every answer is checked against it.

The daemon's real app runs in process (:mod:`tests.support.inprocess`); each JSON
endpoint is called once with a valid request and its answer validated against the
schema the document declares for that status: a field the schema does not list, a
required one missing or a value of the wrong type fails.  An endpoint added later
without a declared shape fails :func:`test_every_json_endpoint_is_checked`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.inprocess import InProcessDaemon, in_process
from tests.unit.test_engine_forecasting import PERMISSIVE, mock_config, register

IDENTITY = {"identity_id": "id-a", "provider_id": "mock", "principal": "acct-1"}
INTENT = {"agent_id": "a", "identity_id": "id-a", "resource": "requests", "cost": 1}
LEASE = {"agent_id": "a", "identity_id": "id-a", "resource": "requests", "units": 5}

#: Endpoints whose answer is not one JSON document (streams, text, pages).
NOT_JSON = {
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/admin/rebuild"),
    ("GET", "/"),
    ("GET", "/ui"),
    ("GET", "/ui/"),
    ("GET", "/ui/{path}"),
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def violations(value: Any, schema: dict[str, Any], doc: dict[str, Any], at: str) -> list[str]:
    """Where ``value`` departs from ``schema`` (the subset of JSON Schema msgspec emits)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return violations(value, doc["components"]["schemas"][name], doc, at)
    if "anyOf" in schema:
        branches = [violations(value, s, doc, at) for s in schema["anyOf"]]
        return [] if any(not b for b in branches) else min(branches, key=len)
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at}: {value!r} is not one of {schema['enum']}"]
    kinds = schema.get("type")
    if kinds is not None:
        allowed = [kinds] if isinstance(kinds, str) else kinds
        if isinstance(value, bool) and "boolean" not in allowed:
            return [f"{at}: {value!r} is not {kinds}"]
        if not any(isinstance(value, _TYPES[k]) for k in allowed):
            return [f"{at}: {value!r} is not {kinds}"]
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        if properties is not None:
            found += [f"{at}.{k}: not in the schema" for k in value if k not in properties]
            found += [
                f"{at}.{k}: required, missing" for k in schema.get("required", ()) if k not in value
            ]
            for key, item in value.items():
                if key in properties:
                    found += violations(item, properties[key], doc, f"{at}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                found += violations(item, extra, doc, f"{at}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += violations(item, schema["items"], doc, f"{at}[{i}]")
    return found


async def call(
    d: InProcessDaemon, doc: dict[str, Any], method: str, path: str, concrete: str, **kw: Any
) -> None:
    response = await d.http.request(method, concrete, **kw)
    assert response.is_success, f"{method} {concrete}: {response.status_code} {response.text}"
    op = doc["paths"][path][method.lower()]
    declared = op["responses"].get(str(response.status_code))
    assert declared is not None, f"{method} {concrete}: undeclared status {response.status_code}"
    schema = declared["content"]["application/json"]["schema"]
    assert not violations(response.json(), schema, doc, "$"), (
        f"{method} {concrete} -> {response.status_code}: "
        + "; ".join(violations(response.json(), schema, doc, "$"))
    )


@pytest.fixture
async def daemon(tmp_path: Path) -> Any:
    config = mock_config(limit=100, window_seconds=60)
    async with in_process(tmp_path, config=config, policy=PERMISSIVE) as d:
        yield d


#: (method, documented path, concrete path, request options) in the order they run.
CALLS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("GET", "/v1/health", "/v1/health", {}),
    ("POST", "/v1/intent", "/v1/intent", {"json": INTENT}),
    ("POST", "/v1/intents", "/v1/intents", {"json": {"intents": [INTENT, INTENT]}}),
    ("POST", "/v1/intents/{intent_id}/check", "/v1/intents/int-1/check", {}),
    ("POST", "/v1/usage", "/v1/usage", {"json": INTENT}),
    ("GET", "/v1/identities", "/v1/identities", {}),
    ("GET", "/v1/identities/{identity_id}", "/v1/identities/id-a", {}),
    (
        "POST",
        "/v1/identities",
        "/v1/identities",
        {"json": {**IDENTITY, "identity_id": "id-b"}},
    ),
    (
        "POST",
        "/v1/identities/{identity_id}/{action}",
        "/v1/identities/id-b/quarantine",
        {"json": {}},
    ),
    ("GET", "/v1/pools", "/v1/pools", {}),
    ("GET", "/v1/pools/{pool_id}", "/v1/pools/mock:requests:acct-1", {}),
    ("GET", "/v1/forecasts", "/v1/forecasts", {}),
    ("GET", "/v1/budgets", "/v1/budgets", {}),
    ("GET", "/v1/graph", "/v1/graph", {}),
    ("GET", "/v1/graph/explain", "/v1/graph/explain", {"params": {"a": "id-a", "b": "id-b"}}),
    ("GET", "/v1/stats", "/v1/stats", {}),
    ("GET", "/v1/events", "/v1/events", {"params": {"limit": 50}}),
    ("GET", "/v1/policy", "/v1/policy", {}),
    ("POST", "/v1/policy/reload", "/v1/policy/reload", {}),
    ("POST", "/v1/leases", "/v1/leases", {"json": LEASE}),
    ("GET", "/v1/leases", "/v1/leases", {}),
    ("POST", "/v1/admin/snapshot", "/v1/admin/snapshot", {}),
    ("POST", "/v1/admin/archive", "/v1/admin/archive", {"json": {"older_than": "0s"}}),
    (
        "POST",
        "/v1/admin/mock/external-usage",
        "/v1/admin/mock/external-usage",
        {"json": {"principal": "acct-1", "resource": "requests", "amount": 3}},
    ),
    ("POST", "/v1/admin/mock/fail", "/v1/admin/mock/fail", {"json": {"count": 1}}),
    ("GET", "/ui/session", "/ui/session", {}),
    ("GET", "/v1/history/status", "/v1/history/status", {}),
]
#: Checked once a lease exists (its id is only known then).
LEASE_CALLS = [
    ("GET", "/v1/leases/{lease_id}", ""),
    ("POST", "/v1/leases/{lease_id}/report", "report"),
    ("POST", "/v1/leases/{lease_id}/release", "release"),
]


async def test_every_answer_matches_the_document(daemon: InProcessDaemon) -> None:
    doc = (await daemon.http.get("/openapi.json")).json()
    await register(daemon, "id-a", "acct-1")
    for method, path, concrete, options in CALLS:
        await call(daemon, doc, method, path, concrete, **options)
    lease = (await daemon.http.post("/v1/leases", json=LEASE)).json()
    assert lease["status"] == "active", lease
    for method, path, action in LEASE_CALLS:
        concrete = f"/v1/leases/{lease['lease_id']}" + (f"/{action}" if action else "")
        body = {"json": {"spent": 1}} if action else {}
        await call(daemon, doc, method, path, concrete, **body)


async def test_every_json_endpoint_is_checked(daemon: InProcessDaemon) -> None:
    doc = (await daemon.http.get("/openapi.json")).json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    checked = {(m, p) for m, p, _, _ in CALLS} | {(m, p) for m, p, _ in LEASE_CALLS}
    unchecked = documented - checked - NOT_JSON
    without_shape = sorted(
        (m, p)
        for m, p in documented - NOT_JSON
        for status, answer in doc["paths"][p][m.lower()]["responses"].items()
        if status.startswith("2") and "content" not in answer
    )
    assert not without_shape, f"JSON endpoints without a declared answer: {without_shape}"
    assert sorted(unchecked) == sorted(
        {
            ("GET", "/v1/history"),
            ("GET", "/v1/history/state"),
            ("GET", "/v1/history/events/{seq}"),
            ("POST", "/v1/replay"),
        }
    ), "check the new endpoint's answer in CALLS"
