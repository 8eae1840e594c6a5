"""``ratelord policy check FILE`` (offline) and ``ratelord policy show`` (the daemon's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from ratelord.cli import _output as out
from ratelord.cli._errors import CliError
from ratelord.cli._http import api

app = typer.Typer(help="Check a policy file, or show the policy in force.")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the policy as JSON.")]


@app.command("check")
def check(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="A policy.yaml to validate.")],
    json_out: JsonFlag = False,
) -> None:
    """Validate a policy file without a daemon: exit 0 and list its rules, or exit 1 with why."""
    # The policy engine (CEL compiler) loads only for this command.
    from ratelord.engine.policy import PolicyError, load_policy_file

    try:
        compiled = load_policy_file(path)
    except PolicyError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    described = compiled.describe()
    if json_out:
        out.print_json(described)
        return
    out.console().print(Text(f"{path}: valid", style="bold green"))
    out.console().print(render_policy(described))


@app.command("show")
def show(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Show the policy the daemon enforces now (GET /v1/policy)."""
    answer = api(ctx).get("/v1/policy")
    if json_out:
        out.print_json(answer)
        return
    out.console().print(render_policy(answer))


def render_policy(described: dict[str, Any]) -> RenderableType:
    """A header with version and source, then one row per rule in evaluation order."""
    head = out.details(
        [("version", str(described.get("version", "-"))), ("source", described.get("source"))]
    )
    grid = out.table("POLICY", "TARGET", "KIND", "RULE", "PRIO", "ACTION", "WHEN")
    for policy in described.get("policies") or []:
        first = True
        for rule in policy.get("rules") or []:
            grid.add_row(
                str(policy.get("id", "")) if first else "",
                str(policy.get("target", "")) if first else "",
                str(policy.get("kind", "")) if first else "",
                str(rule.get("name", "")),
                str(rule.get("priority", "")),
                Text(str(rule.get("action", "")), style=_ACTION_STYLE.get(rule.get("action"), "")),
                str(rule.get("when", "")),
            )
            first = False
    return Group(head, "", grid)


_ACTION_STYLE = {
    "deny": "red",
    "defer": "yellow",
    "shape": "yellow",
    "switch_identity": "cyan",
    "approve": "green",
}
