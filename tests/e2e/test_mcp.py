"""``ratelord mcp`` with a real MCP client session (the official SDK) over stdio,
against a real ratelord-d: list the tools, ask, report, read pools, explain."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.e2e.conftest import MOCK_CONFIG
from tests.support.daemon import RunningDaemon, free_port, register, wait_for

RATELORD = str(Path(sys.executable).parent / "ratelord")


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        content = result.structured_content
        return dict(content.get("result", content))
    return dict(json.loads(result.content[0].text))


async def test_an_mcp_client_lists_the_tools_and_gets_a_decision(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    daemon = daemon_factory(config=MOCK_CONFIG)
    with daemon.client() as http:
        register(http, "id-a", "acct-1")
        wait_for(
            lambda: http.get("/v1/pools/mock:requests:acct-1").status_code == 200,
            what="the mock pool to be polled",
        )
    server = StdioServerParameters(command=RATELORD, args=["--url", daemon.url, "mcp"])
    async with Client(server, read_timeout_seconds=30) as session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert {"ask", "report_usage", "pools", "explain"} <= tools

        decision = structured(
            await session.call_tool(
                "ask", {"identity_id": "id-a", "resource": "requests", "cost": 5}
            )
        )
        assert decision["decision"] == "approve", decision
        intent_id = decision["intent_id"]

        reported = structured(
            await session.call_tool(
                "report_usage", {"identity_id": "id-a", "intent_id": intent_id, "cost": 3}
            )
        )
        assert reported["accepted"] is True

        pools = structured(await session.call_tool("pools", {}))
        (pool,) = pools["pools"]
        assert pool["pool_id"] == "mock:requests:acct-1"

        why = structured(await session.call_tool("explain", {"intent_id": intent_id}))
        assert why["decision"] == "approve" and why["charges"] == {"mock:requests:acct-1": 5.0}

        refused = await session.call_tool("ask", {"identity_id": "id-a", "workload_id": "nope"})
        assert refused.is_error
        assert "unknown workload" in refused.content[0].text


@pytest.mark.parametrize("tool", ["ask"])
def test_the_tools_have_descriptions_an_agent_can_read(tool: str) -> None:
    from ratelord.cli.mcp import build_server
    from ratelord.client import Client

    server = build_server(Client("http://127.0.0.1:9"))
    described = {t.name: t.description for t in server._tool_manager.list_tools()}
    assert "Ask before spending" in (described[tool] or "")


async def test_the_same_tools_over_streamable_http(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    daemon = daemon_factory(config=MOCK_CONFIG)
    with daemon.client() as http:
        register(http, "id-a", "acct-1")
    port = free_port()
    server = subprocess.Popen(
        [RATELORD, "--url", daemon.url, "mcp", "--http", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # 60 s to start, as the test daemons get (under load it once missed 10 s)
        wait_for(lambda: _listening(port), timeout=60, what="ratelord mcp --http to listen")
        async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=30) as session:
            assert "ask" in {tool.name for tool in (await session.list_tools()).tools}
            answer = structured(
                await session.call_tool("ask", {"identity_id": "id-a", "resource": "requests"})
            )
            assert answer["decision"] in ("approve", "deny_with_reason")
            assert answer["intent_id"].startswith("int")
    finally:
        server.terminate()
        server.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_an_llm_ask_counts_in_the_money_budgets(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    """`ask` with a model prices the call; the second one would pass the daily budget."""
    daemon = daemon_factory(config={"budgets": [{"id": "tiny", "limit": 0.001}]})
    with daemon.client() as http:
        answer = http.post(
            "/v1/identities",
            json={"identity_id": "key:openai", "provider_id": "openai", "principal": "org"},
        )
        assert answer.status_code == 201, answer.text
    server = StdioServerParameters(command=RATELORD, args=["--url", daemon.url, "mcp"])
    call = {  # the built-in gpt-4o-mini price: 0.15 + 0.60 per million = 0.00075
        "identity_id": "key:openai",
        "model": "gpt-4o-mini",
        "input_tokens": 1000,
        "max_output_tokens": 1000,
    }
    async with Client(server, read_timeout_seconds=30) as session:
        first = structured(await session.call_tool("ask", call))
        assert first["decision"] == "approve", first
        second = structured(await session.call_tool("ask", call))
    assert second["decision"] == "deny_with_reason"
    assert "budget 'tiny' would pass its daily limit" in second["reason"]
    with daemon.client() as http:
        (budget,) = http.get("/v1/budgets").json()["budgets"]
    assert budget["spent"] == pytest.approx(0.00075) and budget["calls"] == 1
