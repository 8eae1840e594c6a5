"""Schema fuzzing of every operation of ``/openapi.json``, admin ones included (issue 15, item 8).

Schemathesis generates requests from the published schema against the real
daemon: data the schema allows (positive) and data it forbids (negative).
Nothing may answer 5xx; what the schema forbids must be refused (schemathesis'
own ``negative_data_rejection``); and what it allows must never be refused for
a reason the schema could have said: a 400 to positive data may only name a
rule between fields or with the daemon's state (a range, a combination, an
unconfigured workload), never a field's own shape.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import negative_data_rejection, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode

from tests.support.daemon import RunningDaemon, register

pytestmark = pytest.mark.e2e

CONFIG = {
    "providers": {
        "mock": {
            "poll_interval_seconds": 1,
            "principals": {"acct-1": {"pools": {"requests": {"limit": 1000}}}},
        }
    }
}
#: Error codes of a field's own shape: the schema says these, so positive data never gets one.
SCHEMA_CODES = {
    "invalid_request",
    "malformed_json",
    "invalid_parameter",
    "invalid_secret_ref",
    "unknown_provider",
}
#: Examples per operation and kind of data: the whole run stays well under a minute.
EXAMPLES = 30


def error_code(response: Any) -> str | None:
    try:
        return str(json.loads(response.content)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def test_every_operation_answers_as_its_schema_says(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    d = daemon_factory(config=CONFIG)
    with d.client() as http:
        register(http, "id-a", "acct-1")
    schema = schemathesis.openapi.from_url(f"{d.url}/openapi.json")
    problems: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} ({mode.value})"
            fuzz(operation, mode, label, d.url, problems)
    assert operations >= 30, f"only {operations} operations in /openapi.json"
    assert not problems, "\n\n".join(f"{k}: {v}" for k, v in sorted(problems.items()))


def fuzz(
    operation: Any, mode: GenerationMode, label: str, url: str, problems: dict[str, str]
) -> None:
    """Run ``EXAMPLES`` cases of ``operation``; note the first problem under ``label``."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        if operation.path == "/v1/events" and case.query:
            case.query.pop("stream", None)  # a stream never ends; its tests are elsewhere
        response = case.call(base_url=url, timeout=10)
        if response.status_code == 413:  # too large to read: refused before any validation
            return
        try:
            case.validate_response(response, checks=[not_a_server_error, negative_data_rejection])
        except (AssertionError, FailureGroup) as exc:
            problems.setdefault(label, str(exc)[:800])
            return
        if mode is GenerationMode.POSITIVE and error_code(response) in SCHEMA_CODES:
            problems.setdefault(label, f"refused data its schema allows: {response.text[:300]}")

    with contextlib.suppress(Unsatisfiable):  # nothing to negate: no parameters, no body
        run()
