"""``/openapi.json``, generated from the route table and the msgspec wire models."""

from __future__ import annotations

from typing import Any

import msgspec

from ratelord import __version__
from ratelord.asgi.http import Router
from ratelord.providers.catalog import DISCOVERS_PRINCIPAL
from ratelord.schema import ErrorBody

_ERRORS = {
    "400": "Bad input (never retried)",
    "401": "Missing or wrong bearer token (when one is configured)",
    "404": "Not found",
    "405": "Method not allowed",
    "409": "Conflicts with the registry (identity exists, or is revoked)",
    "413": "Body too large",
    "503": "Initializing, stopping or store read-only (see Retry-After)",
}


def openapi_document(router: Router) -> dict[str, Any]:
    types: list[Any] = [ErrorBody]
    for route in router.routes:
        types += [t for t in (route.request, route.response) if t is not None]
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    refs = dict(zip(map(id, types), schemas, strict=True))
    if "IdentityCreate" in components:  # the providers an identity may name (routes checks)
        provider = components["IdentityCreate"]["properties"]["provider_id"]
        provider["enum"] = list(DISCOVERS_PRINCIPAL)
    error = {"content": {"application/json": {"schema": refs[id(ErrorBody)]}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in router.routes:
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": _operation_id(route.method, route.path),
            "responses": {str(route.status): {"description": "OK"}},
        }
        if route.response is not None:
            op["responses"][str(route.status)]["content"] = {
                "application/json": {"schema": refs[id(route.response)]}
            }
        for code, text in _ERRORS.items():
            op["responses"][code] = {"description": text, **error}
        if route.request is not None:
            op["requestBody"] = {
                "required": route.path != "/v1/identities/{identity_id}/{action}",
                "content": {"application/json": {"schema": refs[id(route.request)]}},
            }
        param_schemas = route.schemas or {}
        params = [
            {
                "name": name.split(":")[0],
                "in": "path",
                "required": True,
                "schema": param_schemas.get(name.split(":")[0], {"type": "string", "minLength": 1}),
            }
            for name in _path_params(route.path)
        ]
        params += [
            {
                "name": name,
                "in": "query",
                "required": name in route.required_query,
                "schema": param_schemas.get(name)
                or (
                    {"type": "string", "minLength": 1}
                    if name in route.required_query
                    else {"type": "string"}
                ),
            }
            for name in (*route.query, *route.required_query)
        ]
        if params:
            op["parameters"] = params
        path = route.path.replace(":path}", "}")
        paths.setdefault(path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ratelord-d",
            "version": __version__,
            "description": "Ask before you spend: forecasts, policy and arbitration "
            "for shared API budgets.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation_id(method: str, path: str) -> str:
    cleaned = path.strip("/").replace(":path", "").replace("{", "").replace("}", "")
    return f"{method.lower()}_{cleaned.replace('/', '_')}"


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
