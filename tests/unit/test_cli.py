"""The ``ratelord`` commands against a fake daemon behind ``httpx2.MockTransport``."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner, Result

from ratelord.cli._http import Session
from ratelord.cli.main import app

Handler = Callable[[httpx2.Request], httpx2.Response]
TOKEN = "tok-very-secret-123"


class FakeDaemon:
    """Routes ``(method, path)`` to canned answers and records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Handler]] = {}
        self.requests: list[httpx2.Request] = []
        self.sleeps: list[float] = []

    def on(self, method: str, path: str, *answers: Any, status: int = 200) -> FakeDaemon:
        """Answer with each of ``answers`` in turn (the last one repeats).

        An answer is JSON data, an ``httpx2.Response``, a handler, or an exception to raise.
        """
        self.routes[(method, path)] = [_as_handler(a, status) for a in answers]
        return self

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        handlers = self.routes.get((request.method, request.url.path))
        if not handlers:
            return httpx2.Response(404, json=_error("not_found", "no such route"))
        handler = handlers.pop(0) if len(handlers) > 1 else handlers[0]
        return handler(request)

    def run(self, *args: str) -> Result:
        session = Session(transport=httpx2.MockTransport(self), sleep=self.sleeps.append)
        env = {"RATELORD_URL": None, "RATELORD_TOKEN": None, "COLUMNS": "200"}
        return CliRunner().invoke(app, list(args), obj=session, env=env)


def _as_handler(answer: Any, status: int) -> Handler:
    if isinstance(answer, httpx2.Response):
        return lambda _request: answer
    if isinstance(answer, BaseException):

        def fail(request: httpx2.Request) -> httpx2.Response:
            raise answer

        return fail
    if callable(answer):
        return answer
    return lambda _request: httpx2.Response(status, json=answer)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": "req-1"}}


@pytest.fixture
def fake() -> FakeDaemon:
    return FakeDaemon()


# ------------------------------------------------------------------ sample answers


def identity(identity_id: str = "pat:alice", **over: Any) -> dict[str, Any]:
    return {
        "identity_id": identity_id,
        "kind": "token",
        "provider_id": "github",
        "principal": "github:user/alice",
        "scope_id": "sentinel:global",
        "labels": {"team": "infra"},
        "status": "active",
        "secret_ref": "env:GITHUB_TOKEN",
        "token_fingerprint": "sha256:1a2b3c",
        "pools": ["github:core:user/alice"],
        "registered_at": "2026-01-01T12:00:00.000Z",
        "status_reason": None,
        **over,
    }


def forecast(**over: Any) -> dict[str, Any]:
    return {
        "tte_p50_seconds": 3600.0,
        "tte_p90_seconds": 1800.0,
        "tte_p99_seconds": 900.0,
        "p_exhaustion": 0.3,
        "margin_seconds": -300.0,
        "burn_rate": 1.0,
        "burn_stddev": 0.5,
        "seconds_to_reset": 1200.0,
        "as_of": "2026-01-01T12:00:00.000Z",
        **over,
    }


def pool(pool_id: str = "github:core:user/alice", status: str = "WARN", **over: Any) -> dict:
    return {
        "pool_id": pool_id,
        "provider_id": "github",
        "resource": "core",
        "principal": "user/alice",
        "unit": "requests",
        "limit": 5000.0,
        "remaining": 3600.0,
        "used": 1400.0,
        "reset_at": "2099-01-01T00:00:00Z",
        "window": "fixed",
        "window_seconds": 3600.0,
        "members": ["pat:alice"],
        "status": status,
        "forecast": forecast(),
        "stale_seconds": 2.0,
        **over,
    }


def health(**over: Any) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": "0.1.0",
        "uptime_seconds": 3725.0,
        "started_at": "2026-01-01T11:00:00Z",
        "high_water_seq": 42,
        "reasons": [],
        "policy_version": "pv-abc123",
        **over,
    }


def event(seq: int, event_type: str = "usage_observed", **over: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "event_id": f"ev-{seq}",
        "event_type": event_type,
        "schema_version": 1,
        "ts_event": 1767268868.0 + seq,  # 2026-01-01T12:01:08Z + seq
        "ts_ingest": 1767268868.0 + seq,
        "source": {"origin_kind": "daemon", "origin_id": "sentinel:system", "writer_id": "x"},
        "dimensions": {
            "agent_id": "sentinel:system",
            "identity_id": "id-a",
            "workload_id": "sentinel:system",
            "scope_id": "sentinel:global",
        },
        "pool_id": "mock:requests:acct-1",
        "payload": {
            "remaining": 95.0,
            "limit": 100.0,
            "reset_at": 1767272400.0,
            "pid": 17527,
            "p_exhaustion": 0.074431,
        },
        **over,
    }


def decided(seq: int, decision: str, **mods: Any) -> dict[str, Any]:
    return event(
        seq,
        "intent_decided",
        dimensions={
            "agent_id": "a1",
            "identity_id": "id-a",
            "workload_id": "build",
            "scope_id": "sentinel:global",
        },
        payload={
            "intent_id": f"in-{seq}",
            "decision": decision,
            "modifications": {"wait_seconds": 0.0, "defer_until": None, "identity_switch": None}
            | mods,
            "reason": "rule hard/r1 fired" if decision == "deny_with_reason" else None,
            "rules_fired": [],
        },
    )


def decision(kind: str = "approve", **over: Any) -> dict[str, Any]:
    return {
        "intent_id": "in-1",
        "decision": kind,
        "modifications": {"wait_seconds": 0.0, "defer_until": None, "identity_switch": None},
        "reason": None,
        "evaluation": {
            "as_of": "2026-01-01T12:00:00Z",
            "policy_version": "pv-abc123",
            "tightest_pool": "mock:requests:acct-1",
            "p_exhaustion": 0.04,
            "tte_p99_seconds": 5400.0,
            "rules_fired": [],
            "risk_summary": "",
            "pools": [
                {
                    "pool_id": "mock:requests:acct-1",
                    "cost": 85.0,
                    "remaining": 100.0,
                    "limit": 100.0,
                    "p_exhaustion": 0.04,
                    "p_exhaustion_with_intent": 0.2,
                    "tte_p99_seconds": 5400.0,
                    "seconds_to_reset": 3000.0,
                    "posture": "OK",
                }
            ],
        },
        **over,
    }


def sse(*events: dict[str, Any], extra: str = "") -> httpx2.Response:
    body = extra + "".join(
        f": ping\nid: {e['seq']}\nevent: {e['event_type']}\ndata: {json.dumps(e)}\n\n"
        for e in events
    )
    return httpx2.Response(200, text=body, headers={"content-type": "text/event-stream"})


# ------------------------------------------------------------------ errors and connection


def test_unreachable_daemon_is_one_line_and_exit_3(fake: FakeDaemon):
    fake.on("GET", "/v1/health", httpx2.ConnectError("[Errno 111] Connection refused"))
    result = fake.run("status")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        "error: cannot reach ratelord-d at http://127.0.0.1:8090 (connection refused). "
        "Start it with 'ratelord-d' or point --url/RATELORD_URL at it.\n"
    )


def test_timeout_is_reported_as_unreachable(fake: FakeDaemon):
    fake.on("GET", "/v1/identities", httpx2.ReadTimeout("timed out"))
    result = fake.run("--url", "http://10.0.0.9:9999/", "identity", "list")
    assert result.exit_code == 3
    assert (
        "cannot reach ratelord-d at http://10.0.0.9:9999 (no answer within 10 s)" in result.stderr
    )


def test_daemon_error_body_becomes_message_and_code(fake: FakeDaemon):
    fake.on("GET", "/v1/identities/nope", _error("not_found", "no identity 'nope'"), status=404)
    result = fake.run("identity", "show", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: no identity 'nope' [not_found]\n"


def test_error_without_a_json_body_still_gives_one_line(fake: FakeDaemon):
    fake.on("GET", "/v1/pools", httpx2.Response(502, text="<html>bad gateway</html>"))
    result = fake.run("pools")
    assert result.exit_code == 1
    assert result.stderr == "error: HTTP 502 Bad Gateway [http_502]\n"


def test_an_answer_off_the_schema_is_an_error_not_a_traceback(fake: FakeDaemon):
    fake.on("GET", "/v1/identities", {"identities": [{"identity_id": 7}]})
    result = fake.run("identity", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unexpected answer from ratelord-d:")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_token_is_sent_as_bearer_and_never_printed(fake: FakeDaemon):
    fake.on("GET", "/v1/identities", _error("unauthorized", "bad bearer token"), status=401)
    result = fake.run("--token", TOKEN, "identity", "list")
    assert fake.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert result.exit_code == 1
    assert TOKEN not in result.output


def test_url_must_be_http(fake: FakeDaemon):
    result = fake.run("--url", "localhost:8090", "status")
    assert result.exit_code == 2
    assert "http://" in result.output
    assert fake.requests == []


def test_url_comes_from_the_environment():
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"identities": []})

    session = Session(transport=httpx2.MockTransport(handler))
    result = CliRunner().invoke(
        app, ["identity", "list"], obj=session, env={"RATELORD_URL": "http://127.0.0.1:18123"}
    )
    assert result.exit_code == 0
    assert str(seen[0].url) == "http://127.0.0.1:18123/v1/identities"


# ------------------------------------------------------------------ identity


def test_identity_add_posts_the_registration_and_shows_it(fake: FakeDaemon):
    fake.on("POST", "/v1/identities", identity(), status=201)
    result = fake.run(
        "identity", "add", "pat:alice", "--provider", "github",
        "--principal", "github:user/alice", "--secret-ref", "env:GITHUB_TOKEN",
        "--label", "team=infra", "--label", "tier=1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(fake.requests[0].content) == {
        "identity_id": "pat:alice",
        "provider_id": "github",
        "principal": "github:user/alice",
        "secret_ref": "env:GITHUB_TOKEN",
        "labels": {"team": "infra", "tier": "1"},
    }
    assert "registered identity pat:alice" in result.stdout
    assert "sha256:1a2b3c" in result.stdout


def test_identity_add_refuses_what_looks_like_a_raw_secret_without_echoing_it(fake: FakeDaemon):
    result = fake.run("identity", "add", "pat:x", "--provider", "github", "--secret-ref", TOKEN)
    assert result.exit_code == 2
    assert "env:NAME or file:PATH" in result.output
    assert TOKEN not in result.output
    assert fake.requests == []


def test_identity_add_rejects_a_label_without_equals(fake: FakeDaemon):
    result = fake.run("identity", "add", "pat:x", "--provider", "github", "--label", "oops")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output


def test_identity_list_table_and_json(fake: FakeDaemon):
    answer = {"identities": [identity(), identity("pat:bob", status="revoked", principal=None)]}
    fake.on("GET", "/v1/identities", answer)
    table = fake.run("identity", "list")
    assert table.exit_code == 0
    rows = [line for line in table.stdout.splitlines() if line.startswith("pat:")]
    assert rows[0].split()[:3] == ["pat:alice", "active", "github"]
    assert rows[1].split()[:4] == ["pat:bob", "revoked", "github", "-"]
    as_json = fake.run("identity", "list", "--json")
    assert json.loads(as_json.stdout) == answer


@pytest.mark.parametrize("action", ["revoke", "quarantine"])
def test_identity_revoke_and_quarantine_send_the_reason(fake: FakeDaemon, action: str):
    status = {"revoke": "revoked", "quarantine": "quarantined"}[action]
    fake.on("POST", f"/v1/identities/pat:alice/{action}", identity(status=status))
    result = fake.run("identity", action, "pat:alice", "--reason", "leaked in CI log")
    assert result.exit_code == 0, result.output
    assert json.loads(fake.requests[0].content) == {"reason": "leaked in CI log"}
    assert f"{status} identity pat:alice" in result.stdout


def test_identity_rotate_sends_only_what_was_given(fake: FakeDaemon):
    fake.on("POST", "/v1/identities/pat:alice/rotate", identity())
    result = fake.run("identity", "rotate", "pat:alice", "--secret-ref", "file:/run/tok")
    assert result.exit_code == 0, result.output
    assert json.loads(fake.requests[0].content) == {"secret_ref": "file:/run/tok"}


# ------------------------------------------------------------------ events


def test_events_prints_one_coloured_line_per_event_oldest_first(fake: FakeDaemon):
    answer = {
        "events": [decided(3, "deny_with_reason"), event(1), decided(2, "approve")],
        "next_after_seq": 3,
    }
    fake.on("GET", "/v1/events", answer)
    result = fake.run("events", "--limit", "3", "--agent", "a1", "--type", "intent_decided")
    assert result.exit_code == 0, result.output
    params = fake.requests[0].url.params
    assert (params["limit"], params["agent_id"], params["type"]) == ("3", "a1", "intent_decided")
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["#1", "#2", "#3"]
    assert lines[1].startswith("12:01:10")
    assert lines[1].endswith("[a1] build -> APPROVED")
    assert lines[2].endswith("[a1] build -> DENIED (rule hard/r1 fired)")
    assert lines[0].endswith(
        "pool=mock:requests:acct-1 remaining=95 limit=100 reset_at=13:00:00 pid=17527"
        " p_exhaustion=0.07443"
    )


def test_events_json_is_the_daemons_answer(fake: FakeDaemon):
    answer = {"events": [event(1)], "next_after_seq": 1}
    fake.on("GET", "/v1/events", answer)
    result = fake.run("events", "--json")
    assert json.loads(result.stdout) == answer


def test_follow_resumes_after_a_drop_without_duplicates_or_gaps(fake: FakeDaemon):
    def resumed(request: httpx2.Request) -> httpx2.Response:
        assert request.headers["last-event-id"] == "3"
        assert request.url.params["after_seq"] == "3"
        return sse(event(4))

    fake.on("GET", "/v1/events", {"events": [event(1), event(2)], "next_after_seq": 2})
    fake.routes[("GET", "/v1/events")] = [
        *fake.routes[("GET", "/v1/events")],
        lambda _r: sse(event(2), event(3)),  # 2 again: the stream overlaps what was printed
        _as_handler(httpx2.ConnectError("[Errno 111] Connection refused"), 200),
        resumed,
        _as_handler(KeyboardInterrupt(), 200),  # the user presses Ctrl-C
    ]
    result = fake.run("events", "--follow", "--json")
    assert result.exit_code == 130
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [1, 2, 3, 4]
    assert result.stderr.count("connection lost (connection refused)") == 1
    assert fake.sleeps == [0.5, 1.0, 0.5]
    stream_params = fake.requests[1].url.params
    assert (stream_params["stream"], stream_params["after_seq"]) == ("true", "2")


def test_follow_waits_out_a_starting_daemon_but_not_a_refusal(fake: FakeDaemon):
    starting = httpx2.Response(503, json=_error("unavailable", "ratelord-d is starting"))
    refused = httpx2.Response(400, json=_error("invalid_parameter", "bad after_seq"))
    fake.on("GET", "/v1/events", {"events": [], "next_after_seq": 5})
    fake.routes[("GET", "/v1/events")] += [_as_handler(starting, 0), _as_handler(refused, 0)]
    result = fake.run("events", "--follow")
    assert result.exit_code == 1
    assert "connection lost (ratelord-d is starting)" in result.stderr
    assert result.stderr.endswith("error: bad after_seq [invalid_parameter]\n")
    assert fake.sleeps == [0.5]


def test_follow_filters_the_stream_client_side_too(fake: FakeDaemon):
    fake.on("GET", "/v1/events", {"events": [], "next_after_seq": 10})
    fake.routes[("GET", "/v1/events")] += [
        lambda _r: sse(event(11), decided(12, "approve")),
        _as_handler(KeyboardInterrupt(), 200),
    ]
    result = fake.run("events", "-f", "--type", "intent_decided")
    assert result.stdout.splitlines()[0].split()[1] == "#12"
    assert len(result.stdout.splitlines()) == 1


def test_follow_exits_3_when_the_daemon_is_down_from_the_start(fake: FakeDaemon):
    fake.on("GET", "/v1/events", httpx2.ConnectError("[Errno 111] Connection refused"))
    result = fake.run("events", "--follow")
    assert result.exit_code == 3
    assert fake.sleeps == []


# ------------------------------------------------------------------ status and pools


def test_status_shows_health_policy_and_posture(fake: FakeDaemon):
    fake.on("GET", "/v1/health", health(status="degraded", reasons=["github: 3 poll errors"]))
    fake.on("GET", "/v1/pools", {"pools": [pool(), pool("mock:requests:acct-1", "CRIT")]})
    result = fake.run("status")
    assert result.exit_code == 0, result.output
    first, second, reason, summary, *table = result.stdout.splitlines()
    assert "0.1.0  degraded" in first
    assert "up 1h 02m" in second
    assert "policy pv-abc123" in second
    assert "github: 3 poll errors" in reason
    assert summary == "posture CRIT  2 pools: 0 OK, 1 WARN, 1 CRIT"
    assert any(row.startswith("mock:requests:acct-1") and "CRIT" in row for row in table)


def test_status_json_combines_health_and_pools(fake: FakeDaemon):
    fake.on("GET", "/v1/health", health())
    fake.on("GET", "/v1/pools", {"pools": [pool()]})
    data = json.loads(fake.run("status", "--json").stdout)
    assert data["health"]["status"] == "ok"
    assert [p["pool_id"] for p in data["pools"]] == ["github:core:user/alice"]
    assert data["url"] == "http://127.0.0.1:8090"


def test_pools_table(fake: FakeDaemon):
    fake.on("GET", "/v1/pools", {"pools": [pool(forecast=None, remaining=None)]})
    fake.on("GET", "/v1/budgets", {"budgets": []})
    result = fake.run("pools")
    assert result.exit_code == 0, result.output
    row = next(r for r in result.stdout.splitlines() if r.startswith("github:core"))
    assert row.split()[:3] == ["github:core:user/alice", "WARN", "-/5,000"]


def test_pools_lists_money_budgets_with_their_forecast(fake: FakeDaemon):
    fake.on("GET", "/v1/pools", {"pools": [pool()]})
    budget = {
        "budget_id": "writer-daily",
        "period": "day",
        "limit": 1.0,
        "spent": 0.42,
        "unsettled": 0.02,
        "remaining": 0.58,
        "forecast_end": 1.31,
        "period_end": "2026-01-02T00:00:00Z",
        "seconds_to_end": 7200.0,
        "calls": 12,
        "currency": "USD",
        "agent": "writer",
        "labels": {"team": "docs"},
    }
    fake.on("GET", "/v1/budgets", {"budgets": [budget]}, {"budgets": [budget]})
    result = fake.run("pools")
    assert result.exit_code == 0, result.output
    row = next(r for r in result.stdout.splitlines() if r.startswith("writer-daily"))
    assert "agent=writer, team=docs" in row
    assert "0.42" in row and "1.00 USD" in row and "1.31" in row and "2h" in row
    data = json.loads(fake.run("pools", "--json").stdout)
    assert data["budgets"][0]["budget_id"] == "writer-daily"


def test_pool_detail_sends_the_id_raw_and_draws_the_cone(fake: FakeDaemon):
    detail = pool(
        history=[{"ts": "2026-01-01T11:00:00Z", "remaining": r} for r in (5000, 4200, 3600)],
        top_consumers={
            "agents": [{"id": "crawler", "used": 900.0}, {"id": "ci", "used": 500.0}],
            "identities": [{"id": "pat:alice", "used": 1400.0}],
        },
    )
    fake.on("GET", "/v1/pools/github:core:user/alice", detail)
    result = fake.run("pools", "github:core:user/alice")
    assert result.exit_code == 0, result.output
    assert fake.requests[0].url.raw_path == b"/v1/pools/github:core:user/alice"
    lines = result.stdout.splitlines()

    def row(name: str) -> list[str]:
        return next(line for line in lines if line.split()[:1] == [name]).split()

    # remaining 3600, 1200 s to reset: P50 burns 1/s → 2400 left; P99 burns 1+2.3263·0.5/s.
    assert row("P50") == ["P50", "1/s", "1h", "00m", "2,400"]
    assert row("P99")[-1] == "1,004"  # whole requests, never 1,004.22
    assert any("█" in line and "5,000 → 3,600" in line for line in lines)
    assert row("crawler")[:4] == ["crawler", "900", "pat:alice", "1,400"]


def test_pools_explain(fake: FakeDaemon):
    answer = {
        "a": "id-a",
        "b": "id-b",
        "shared": True,
        "shared_pools": ["mock:requests:acct-1"],
        "explanation": "shared: both are charged to principal acct-1 at mock",
        "a_principal": "acct-1",
        "b_principal": "acct-1",
    }
    fake.on("GET", "/v1/graph/explain", answer)
    result = fake.run("pools", "explain", "id-a", "id-b")
    assert result.exit_code == 0, result.output
    assert dict(fake.requests[0].url.params) == {"a": "id-a", "b": "id-b"}
    assert result.stdout.startswith("SHARED  id-a and id-b")
    assert "shared: both are charged to principal acct-1" in result.stdout
    assert "id-b principal  acct-1" in result.stdout
    assert json.loads(fake.run("pools", "explain", "id-a", "id-b", "--json").stdout) == answer


# ------------------------------------------------------------------ intent


def test_intent_sends_the_request_and_prints_the_decision(fake: FakeDaemon):
    fake.on("POST", "/v1/intent", decision())
    result = fake.run(
        "intent", "--agent", "a1", "--identity", "id-a", "--workload", "build",
        "--resource", "requests", "--cost", "85", "--urgency", "high",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(fake.requests[0].content) == {
        "agent_id": "a1",
        "identity_id": "id-a",
        "workload_id": "build",
        "resource": "requests",
        "cost": 85.0,
        "urgency": "high",
    }
    out = result.stdout
    assert out.startswith("decision  APPROVED")
    assert "tightest pool  mock:requests:acct-1" in out
    assert "P(exhaustion)  4.0%" in out
    assert "TTE P99        1h 30m" in out


def test_modified_intent_shows_the_wait(fake: FakeDaemon):
    mods = {"wait_seconds": 2.5, "defer_until": None, "identity_switch": None}
    fake.on("POST", "/v1/intent", decision("approve_with_modifications", modifications=mods))
    result = fake.run("intent", "--agent", "a1", "--identity", "id-a")
    assert result.stdout.startswith("decision  MODIFIED (wait 2.5s)")
    assert "wait           2.5s" in result.stdout


def test_unevaluated_denial_shows_no_forecast(fake: FakeDaemon):
    unknown = decision("deny_with_reason", reason="unknown identity 'nobody'")
    unknown["evaluation"] |= {"tightest_pool": None, "p_exhaustion": None, "pools": []}
    unknown["evaluation"]["tte_p99_seconds"] = None
    fake.on("POST", "/v1/intent", unknown)
    result = fake.run("intent", "--agent", "a1", "--identity", "nobody")
    assert result.exit_code == 0
    assert "unknown identity 'nobody'" in result.stdout
    assert "TTE P99" not in result.stdout
    assert "P(exhaustion)" not in result.stdout


def test_denied_intent_gives_the_reason_once(fake: FakeDaemon):
    denied = decision("deny_with_reason", reason="hard rule global-safety/never-exhaust fired")
    fake.on("POST", "/v1/intent", denied)
    result = fake.run("intent", "--agent", "a1", "--identity", "id-a")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].strip() == "decision  DENIED"
    assert result.stdout.count("never-exhaust fired") == 1


@pytest.mark.parametrize(("flags", "code"), [((), 0), (("--fail-on-deny",), 2)])
def test_denied_intent_exits_0_unless_asked(fake: FakeDaemon, flags: tuple[str, ...], code: int):
    denied = decision("deny_with_reason", reason="hard rule global-safety/never-exhaust fired")
    fake.on("POST", "/v1/intent", denied)
    result = fake.run("intent", "--agent", "a1", "--identity", "id-a", "--json", *flags)
    assert result.exit_code == code
    assert json.loads(result.stdout)["decision"] == "deny_with_reason"


def test_intent_rejects_an_unknown_urgency(fake: FakeDaemon):
    result = fake.run("intent", "--agent", "a1", "--identity", "id-a", "--urgency", "asap")
    assert result.exit_code == 2
    assert fake.requests == []


# ------------------------------------------------------------------ policy, reload, rebuild

DESCRIBED = {
    "version": "pv-abc123",
    "source": "/etc/ratelord/policy.yaml",
    "policies": [
        {
            "id": "global-safety",
            "target": "global",
            "kind": "hard",
            "rules": [
                {"name": "never-exhaust", "when": "pool.remaining < intent.cost",
                 "action": "defer", "priority": 100},
                {"name": "floor", "when": "pool.remaining < 10", "action": "deny", "priority": 90},
            ],
        }
    ],
}  # fmt: skip


SHOWN = {"version": "pv-abc123", "source": DESCRIBED["source"], "policy": DESCRIBED}


def test_policy_show_lists_rules(fake: FakeDaemon):
    fake.on("GET", "/v1/policy", SHOWN)
    result = fake.run("policy", "show")
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines[0].split() == ["version", "pv-abc123"]
    assert "global-safety  target global  kind hard" in lines
    assert next(x for x in lines if "never-exhaust" in x).split()[:3] == [
        "never-exhaust", "100", "defer",
    ]  # fmt: skip
    assert next(x for x in lines if "floor" in x).split()[:3] == ["floor", "90", "deny"]


def test_reload_success_prints_the_new_version(fake: FakeDaemon):
    fake.on("POST", "/v1/policy/reload", {"version": "pv-new", "changed": True})
    result = fake.run("reload")
    assert result.exit_code == 0
    assert result.stdout == "policy reloaded: version pv-new\n"


def test_rejected_reload_says_the_old_policy_stays(fake: FakeDaemon):
    message = "policy.yaml: policy shed, rule r1: unknown variable 'pool.nope'"
    fake.on("POST", "/v1/policy/reload", _error("policy_rejected", message), status=400)
    fake.on("GET", "/v1/policy", SHOWN)
    result = fake.run("reload")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {message} [policy_rejected]; "
        "the previous policy (version pv-abc123) stays in force\n"
    )


def test_rejected_reload_does_not_repeat_what_the_daemon_said(fake: FakeDaemon):
    message = "bad rule (the previous policy pv-1 stays in force)"
    fake.on("POST", "/v1/policy/reload", _error("policy_rejected", message), status=400)
    result = fake.run("reload")
    assert result.exit_code == 1
    assert result.stderr == f"error: {message} [policy_rejected]\n"


def _ndjson(*lines: dict[str, Any]) -> httpx2.Response:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    return httpx2.Response(200, text=body, headers={"content-type": "application/x-ndjson"})


def test_rebuild_reports_an_equal_result(fake: FakeDaemon):
    fake.on(
        "POST",
        "/v1/admin/rebuild",
        _ndjson(
            {"phase": "replay", "done": 500, "total": 1000},
            {"phase": "replay", "done": 1000, "total": 1000},
            {"result": {"events": 1000, "seconds": 0.42, "equal": True, "snapshot_seq": 1000,
                        "differences": []}},
        ),
    )  # fmt: skip
    result = fake.run("rebuild")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "rebuild equal to a full replay"
    assert lines[1].split() == ["events", "replayed", "1,000"]


def test_rebuild_that_differs_exits_1_and_lists_differences(fake: FakeDaemon):
    result_line = {
        "result": {"events": 10, "seconds": 0.1, "equal": False, "snapshot_seq": 10,
                   "differences": ["pools.mock:requests:acct-1.remaining: 15 != 100"]},
    }  # fmt: skip
    fake.on("POST", "/v1/admin/rebuild", _ndjson(result_line))
    result = fake.run("rebuild", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == result_line["result"]
    assert result.stderr == "error: rebuilt state differs from a full replay (1 differences)\n"


def test_rebuild_stream_without_result_is_an_error(fake: FakeDaemon):
    fake.on("POST", "/v1/admin/rebuild", _ndjson({"phase": "replay", "done": 1, "total": 2}))
    result = fake.run("rebuild")
    assert result.exit_code == 1
    assert "without a result" in result.stderr


# ------------------------------------------------------------------ version and help


def test_version_with_and_without_a_daemon(fake: FakeDaemon):
    fake.on("GET", "/v1/health", health(version="9.9.9"))
    data = json.loads(fake.run("version", "--json").stdout)
    assert data["daemon"] == "9.9.9"
    assert data["cli"]
    fake.on("GET", "/v1/health", httpx2.ConnectError("refused"))
    result = fake.run("version")
    assert result.exit_code == 0
    assert "ratelord-d not reachable at http://127.0.0.1:8090" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        [], ["identity"], ["identity", "add"], ["events"], ["status"], ["pools"],
        ["pools", "explain"], ["intent"], ["policy", "check"], ["policy", "show"], ["reload"],
        ["rebuild"], ["tui"], ["version"],
    ],
)  # fmt: skip
def test_help_everywhere(fake: FakeDaemon, command: list[str]):
    result = fake.run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage: ratelord" in result.stdout
    assert fake.requests == []


# ------------------------------------------------------------------ policy check (no daemon)

GOOD_POLICY = """\
policies:
  - id: shed-background
    target: pool:github:*
    kind: soft
    rules:
      - name: background-yields
        when: 'risk.p_exhaustion > 0.2 && intent.urgency == "background"'
        action: deny
"""


def test_policy_check_accepts_a_valid_file_offline(fake: FakeDaemon, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD_POLICY)
    result = fake.run("policy", "check", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{path}: valid")
    assert "background-yields" in result.stdout
    described = json.loads(fake.run("policy", "check", str(path), "--json").stdout)
    assert "shed-background" in [p["id"] for p in described["policies"]]
    assert fake.requests == []


def test_policy_check_rejects_a_bad_rule_in_one_line(fake: FakeDaemon, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD_POLICY.replace("risk.p_exhaustion > 0.2", "risk.nope > 0.2"))
    result = fake.run("policy", "check", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: {path}")
    assert "background-yields" in result.stderr


def test_policy_check_of_a_missing_file(fake: FakeDaemon, tmp_path):
    result = fake.run("policy", "check", str(tmp_path / "absent.yaml"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "absent.yaml" in result.stderr


# ------------------------------------------------------------------ start-up


def test_the_simulator_is_loaded_only_when_used():
    probe = "import sys, ratelord.cli.main; print('ratelord.sim' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_sim_is_listed_and_runs_through_the_lazy_path(fake: FakeDaemon):
    if importlib.util.find_spec("ratelord.cli.sim") is None:
        pytest.skip("the simulator is not installed")
    assert "sim" in fake.run("--help").stdout
    result = fake.run("sim", "--help")
    assert result.exit_code == 0
    assert "Usage: ratelord sim" in result.stdout
