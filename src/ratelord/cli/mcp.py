"""``ratelord mcp``: ratelord-d's ask/report/read as tools of a Model Context Protocol server.

Agents built on any MCP client can ask before they spend, natively::

    ratelord mcp                       # stdio (what desktop and CLI agents launch)
    ratelord mcp --http --port 8765    # streamable HTTP at http://127.0.0.1:8765/mcp

Tools: ``ask`` (an intent: a resource and cost, several ``costs``, or an LLM
call's model and tokens), ``report_usage`` (what a call really spent, and the
provider's rate-limit headers), ``pools`` (posture, remaining and forecast of
every pool, or one), ``explain`` (why an intent was decided as it was).  Built
on the official ``mcp`` SDK (``pip install 'ratelord[mcp]'``); every tool is a
call to the daemon's HTTP API, so the server holds no state of its own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import typer

from ratelord import llm
from ratelord.cli._errors import CliError, as_cli_error
from ratelord.cli._http import api
from ratelord.client import Client, RatelordError
from ratelord.client.events import IntentDecided, event_from

INSTRUCTIONS = (
    "ratelord governs shared, rate-limited budgets (API requests, LLM tokens, money). "
    "Call `ask` before spending and do what it says: wait `wait_seconds`, retry after "
    "`defer_until`, or stop when denied. After the call, `report_usage` with the intent id."
)


def mcp(
    ctx: typer.Context,
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP instead of stdio.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to bind with --http.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind with --http.")] = 8765,
) -> None:
    """Serve ratelord's tools over the Model Context Protocol (stdio, or --http)."""
    server = build_server(api(ctx))
    if http:
        server.run("streamable-http", host=host, port=port)
    else:
        server.run("stdio")


def build_server(daemon: Client) -> Any:
    """The MCP server with ratelord's tools, each a call to ``daemon``."""
    try:
        from mcp.server.mcpserver import MCPServer
    except ImportError as exc:
        raise CliError("ratelord mcp needs the MCP SDK: pip install 'ratelord[mcp]'") from exc
    server = MCPServer("ratelord", instructions=INSTRUCTIONS)

    @server.tool()
    def ask(
        identity_id: str,
        agent_id: str = "mcp-agent",
        resource: str | None = None,
        cost: float | None = None,
        costs: dict[str, float] | None = None,
        workload_id: str | None = None,
        urgency: Literal["background", "low", "normal", "high"] = "normal",
        model: str | None = None,
        input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        provider: Literal["openai", "anthropic"] = "openai",
    ) -> dict[str, Any]:
        """Ask before spending. Charge one `resource` (with `cost`), several `costs`
        ({resource: amount}), a configured `workload_id`, or an LLM call: `model`,
        `input_tokens` and `max_output_tokens` (its request and tokens, per model).
        Returns the decision: approve, approve_with_modifications (wait `wait_seconds`
        or until `defer_until`) or deny_with_reason."""
        body: dict[str, Any] = {"agent_id": agent_id, "identity_id": identity_id}
        body["urgency"] = urgency
        optional = {"resource": resource, "cost": cost, "workload_id": workload_id}
        body |= {k: v for k, v in optional.items() if v is not None}
        if model is not None:
            estimate = llm.TokenEstimate(
                api="anthropic-messages" if provider == "anthropic" else "openai-chat",
                model=model,
                input_tokens=input_tokens or 0,
                output_tokens=max_output_tokens or 0,
                method="heuristic",
            )
            body["costs"] = llm.charges_for(estimate) | (costs or {})
            body["tokens"] = {  # what money budgets price
                "model": model,
                "input": input_tokens or 0,
                "output": max_output_tokens or 0,
            }
        elif costs:
            body["costs"] = costs
        decision = _call(daemon.post, "/v1/intent", body)
        modifications = decision.get("modifications") or {}
        return {
            "intent_id": decision["intent_id"],
            "decision": decision["decision"],
            "wait_seconds": modifications.get("wait_seconds", 0.0),
            "defer_until": modifications.get("defer_until"),
            "identity_switch": modifications.get("identity_switch"),
            "reason": decision.get("reason"),
            "risk": (decision.get("evaluation") or {}).get("risk_summary"),
        }

    @server.tool()
    def report_usage(
        identity_id: str,
        intent_id: str | None = None,
        agent_id: str = "mcp-agent",
        cost: float | None = None,
        costs: dict[str, float] | None = None,
        model: str | None = None,
        headers: dict[str, str] | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> dict[str, Any]:
        """Report what a call really spent (`cost`, or `costs` per resource) and/or the
        provider's rate-limit response `headers` (with the request's `model` for LLM
        providers; its real `input_tokens` and `output_tokens` correct money budgets).
        With `intent_id`, corrects that intent's reservation."""
        body: dict[str, Any] = {"agent_id": agent_id, "identity_id": identity_id}
        optional = {"intent_id": intent_id, "cost": cost, "model": model, "headers": headers}
        body |= {k: v for k, v in optional.items() if v is not None}
        if model is not None and (input_tokens is not None or output_tokens is not None):
            body["tokens"] = {
                "model": model,
                "input": input_tokens or 0,
                "output": output_tokens or 0,
            }
        if costs:
            body["costs"] = costs
        return dict(_call(daemon.post, "/v1/usage", body))

    @server.tool()
    def pools(pool_id: str | None = None) -> dict[str, Any]:
        """Every pool (or one): posture, remaining of limit, window, and the forecast
        (burn rate, P50/P99 time to exhaustion, probability of running out before the reset)."""
        if pool_id is not None:
            return dict(_call(daemon.get, f"/v1/pools/{pool_id}"))
        return dict(_call(daemon.get, "/v1/pools"))

    @server.tool()
    def explain(intent_id: str) -> dict[str, Any]:
        """Why an intent was decided as it was: the decision, its reason, the rules that
        fired and the pools it was charged to."""
        found = _call(daemon.get, "/v1/events", {"type": "intent_decided", "limit": 1000})
        for event in reversed(found.get("events", [])):
            decided = event_from(event)
            if isinstance(decided, IntentDecided) and decided.payload.intent_id == intent_id:
                return {"at": event.get("occurred_at"), **msgspec.to_builtins(decided.payload)}
        raise _tool_error(f"no decision of intent {intent_id!r} among the last 1,000")

    return server


def _call(method: Any, *args: Any) -> Any:
    """The daemon's answer; its refusal becomes the tool's error, with the daemon's message."""
    try:
        return method(*args)
    except (CliError, RatelordError) as exc:
        failure = exc if isinstance(exc, CliError) else as_cli_error(exc)
        raise _tool_error(failure.message) from None


def _tool_error(message: str) -> Exception:
    """An error the agent sees as the tool's result (not a crash of the server)."""
    from mcp.server.mcpserver.exceptions import ToolError

    return ToolError(message)
