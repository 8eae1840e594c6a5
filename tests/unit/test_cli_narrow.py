"""The CLI's default output, designed for an 80-column terminal (issue 15, items 16 and 17).

Every table command runs with ``COLUMNS=80`` against answers with long ids and big
numbers: no line is wider than the terminal and nothing is cut with ``…``.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner, Result

from ratelord.cli._http import Session
from ratelord.cli.main import app, hoist_global_options
from tests.unit.test_cli import DESCRIBED, FakeDaemon, _error, decision, forecast, health, identity
from tests.unit.test_cli import pool as pool_answer

LONG_PRINCIPAL = "user/a-rather-long-github-login"


def run(fake: FakeDaemon, *args: str, columns: int = 80) -> Result:
    session = Session(transport=httpx2.MockTransport(fake), sleep=fake.sleeps.append)
    env = {"RATELORD_URL": None, "RATELORD_TOKEN": None, "COLUMNS": str(columns)}
    return CliRunner().invoke(app, list(args), obj=session, env=env)


def big_pool(resource: str, status: str = "OK", **over: Any) -> dict[str, Any]:
    return pool_answer(
        f"github:{resource}:{LONG_PRINCIPAL}",
        status,
        limit=1_000_000.0,
        remaining=987_654.321,
        forecast=forecast(burn_rate=123.456, tte_p99_seconds=90061.0),
        **over,
    )


def lease(holder: str, pool_id: str) -> dict[str, Any]:
    return {
        "lease_id": "ls_0123456789abcdef",
        "status": "active",
        "holder": holder,
        "identity_id": "pat:alice-continuous-integration",
        "pool_id": pool_id,
        "urgency": "normal",
        "requested": 15_000.0,
        "granted": 12_345.0,
        "spent": 1_234.5,
        "available": 11_110.5,
        "expires_at": "2099-01-01T00:00:00Z",
        "rate": 12.5,
    }


def money_budget() -> dict[str, Any]:
    return {
        "budget_id": "technical-writers-daily",
        "period": "day",
        "limit": 12_500.0,
        "spent": 4_321.42,
        "unsettled": 0.02,
        "remaining": 8_178.58,
        "forecast_end": 13_100.31,
        "period_end": "2026-01-02T00:00:00Z",
        "seconds_to_end": 7200.0,
        "calls": 12,
        "currency": "USD",
        "agent": "writer-with-a-long-name",
        "labels": {"team": "documentation"},
    }


@pytest.fixture
def fake() -> FakeDaemon:
    pools = [big_pool("core", "CRIT"), big_pool("search", "WARN"), big_pool("graphql")]
    ids = [
        identity(
            "app:release-bot-installation-4242",
            kind="app_installation",
            principal=f"github:{LONG_PRINCIPAL}",
            scope_id="repo:acme-corporation/api-gateway",
            labels={"team": "infrastructure", "env": "production"},
        ),
        identity("pat:alice", status="quarantined"),
    ]
    held = [lease("crawler-with-a-long-name-01", p["pool_id"]) for p in pools]
    long_decision = decision()
    long_decision["evaluation"]["pools"] = [
        {**long_decision["evaluation"]["pools"][0], "pool_id": p["pool_id"], "cost": 1500.0}
        for p in pools
    ]
    detail = big_pool(
        "core",
        history=[{"ts": "2026-01-01T11:00:00Z", "remaining": 5000.0 - i} for i in range(300)],
        top_consumers={
            "agents": [{"id": "crawler-with-a-long-name-01", "used": 900.0}],
            "identities": [{"id": "app:release-bot-installation-4242", "used": 1400.0}],
            "scopes": [{"id": "sentinel:global", "used": 1400.0}],
        },
    )
    return (
        FakeDaemon()
        .on("GET", "/v1/health", health(policy_version="sha256:99d8e59c92fb"))
        .on("GET", "/v1/pools", {"pools": pools})
        .on("GET", "/v1/budgets", {"budgets": [money_budget()]})
        .on("GET", f"/v1/pools/github:core:{LONG_PRINCIPAL}", detail)
        .on("GET", "/v1/identities", {"identities": ids})
        .on("GET", "/v1/leases", {"leases": held})
        .on("POST", "/v1/intent", long_decision)
        .on("GET", "/v1/policy", {"version": "pv", "source": "p.yaml", "policy": DESCRIBED})
    )


TABLE_COMMANDS = [
    ["status"],
    ["pools"],
    ["pools", f"github:core:{LONG_PRINCIPAL}"],
    ["identity", "list"],
    ["leases"],
    ["intent", "--agent", "a", "--identity", "pat:alice", "--resource", "core", "--cost", "5"],
    ["policy", "show"],
]


@pytest.mark.parametrize("args", TABLE_COMMANDS, ids=" ".join)
def test_every_table_fits_80_columns_and_cuts_nothing(fake: FakeDaemon, args: list[str]):
    result = run(fake, *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, "\n".join(too_wide)
    assert "…" not in result.stdout and "..." not in result.stdout, result.stdout


def test_the_pools_table_keeps_whole_numbers_and_the_posture(fake: FakeDaemon):
    out = run(fake, "pools").stdout
    assert "988k/1M" in out  # no fraction of a request, no '1,388/5,…'
    header = out.splitlines()[0].split()
    assert header[:3] == ["POOL", "STATUS", "LEFT"]
    assert "CRIT" in out and "WARN" in out


def test_the_history_sparkline_follows_the_terminal_width(fake: FakeDaemon):
    pool_id = f"github:core:{LONG_PRINCIPAL}"

    def spark(columns: int) -> str:
        out = run(fake, "pools", pool_id, columns=columns).stdout
        line = next(x for x in out.splitlines() if x.startswith("history"))
        assert len(line) <= columns
        return line

    assert len(spark(80)) < len(spark(140))


def test_no_internal_sentinel_is_shown(fake: FakeDaemon):
    fake.on("GET", "/v1/identities", {"identities": [identity(scope_id="sentinel:global")]})
    fake.on("GET", "/v1/identities/pat:alice", identity(scope_id="sentinel:global"))
    for args in (["identity", "list"], ["identity", "show", "pat:alice"]):
        out = run(fake, *args).stdout
        assert "sentinel" not in out
        assert "global" in out


def test_one_pool_is_not_1_pools():
    one = FakeDaemon().on("GET", "/v1/health", health()).on("GET", "/v1/pools", {"pools": []})
    one.on("GET", "/v1/pools", {"pools": [pool_answer()]})
    out = run(one, "status").stdout
    assert "1 pool:" in out and "1 pools" not in out


def test_url_is_accepted_after_the_subcommand():
    seen: list[str] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return httpx2.Response(200, json={"pools": []})

    fake = FakeDaemon().on("GET", "/v1/health", answer)
    result = run(fake, "version", "--url", "http://elsewhere:9000", "--json")
    assert result.exit_code == 0, result.output
    assert seen == ["http://elsewhere:9000/v1/health"]


def test_global_options_are_hoisted_but_not_past_a_double_dash():
    assert hoist_global_options(["pools", "--json", "--url=http://a", "--token", "t"]) == [
        "--url=http://a", "--token", "t", "pools", "--json",
    ]  # fmt: skip
    assert hoist_global_options(["sim", "--", "--url"]) == ["sim", "--", "--url"]


def test_401_says_how_to_pass_a_token():
    fake = FakeDaemon().on(
        "GET", "/v1/pools", _error("unauthorized", "missing or wrong bearer token"), status=401
    )
    result = run(fake, "pools")
    assert result.exit_code == 1
    assert "--token" in result.stderr and "RATELORD_TOKEN" in result.stderr
