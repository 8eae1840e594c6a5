"""Numeric and enum fields are bounded and validated as /openapi.json says (#15, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.inprocess import in_process

CONFIG = {
    "providers": {"mock": {"principals": {"acct-1": {"pools": {"requests": {"limit": 100}}}}}}
}
REFUSED = [
    ("POST", "/v1/admin/mock/fail", {"count": 10**30}),
    ("POST", "/v1/admin/mock/fail", {"count": 10**9}),
    ("POST", "/v1/admin/mock/fail", {"kind": "bogus"}),
    ("POST", "/v1/admin/mock/fail", {"retry_after": -1}),
    ("POST", "/v1/admin/mock/external-usage",
     {"principal": "acct-1", "resource": "requests", "amount": 1e300}),
    ("POST", "/v1/intent", {"agent_id": "a\n", "identity_id": "b"}),
    ("POST", "/v1/identities",
     {"identity_id": "x", "provider_id": "mock", "principal": "acct-1", "secret_ref": "file:/a\n"}),
    ("POST", "/v1/identities/x/revoke", {"secret_ref": "env:X"}),
    ("POST", "/v1/replay", {"clones": 5000}),
    ("POST", "/v1/replay", {"since": "the day before"}),
    ("GET", "/v1/history/events/²", None),
    ("GET", "/v1/history/events/99999999999999999999999", None),
    ("GET", "/v1/history?bucket=5", None),
    ("GET", "/v1/history?since=", None),
    ("GET", "/v1/events?after_seq=", None),
    ("GET", "/v1/events?limit=1_0", None),
    ("GET", "/v1/events?stream=yes", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body"), REFUSED, ids=[f"{m} {p} {b}" for m, p, b in REFUSED]
)
async def test_out_of_bounds_input_is_a_precise_400(
    tmp_path: Path, method: str, path: str, body: object
) -> None:
    async with in_process(tmp_path, config=CONFIG) as d:
        response = await d.http.request(method, path, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"]


async def test_openapi_is_as_strict_as_validation(tmp_path: Path) -> None:
    async with in_process(tmp_path, config=CONFIG) as d:
        doc = (await d.http.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert schemas["InjectFailure"]["properties"]["count"]["maximum"] == 1000
    assert "auth" in schemas["InjectFailure"]["properties"]["kind"]["enum"]
    assert schemas["IdentityCreate"]["properties"]["provider_id"]["enum"]
    assert "pattern" in str(schemas["IdentityCreate"]["properties"]["secret_ref"])
    params = {p["name"]: p["schema"] for p in doc["paths"]["/v1/events"]["get"]["parameters"]}
    assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert params["stream"] == {"type": "boolean"}
    history = {p["name"]: p["schema"] for p in doc["paths"]["/v1/history"]["get"]["parameters"]}
    assert "anyOf" in history["since"] and "pattern" in history["bucket"]
