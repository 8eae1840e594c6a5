"""``ratelord policy check FILE`` (offline) and ``ratelord policy show`` (the daemon's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.padding import Padding
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
    # {"version", "source", "policy": <the same describe() view as 'policy check'>}
    out.console().print(render_policy(answer["policy"]))


def render_policy(described: dict[str, Any]) -> RenderableType:
    """Version and source, then each policy with its rules in priority order."""
    parts: list[RenderableType] = [
        out.details(
            [("version", str(described.get("version", "-"))), ("source", described.get("source"))]
        )
    ]
    for policy in described.get("policies") or []:
        head = Text.assemble(
            ("\n" + str(policy.get("id", "?")), "bold"),
            f"  target {policy.get('target', '?')}  kind {policy.get('kind', '?')}",
        )
        rules = out.table("RULE", "PRIO", "ACTION", "WHEN", wrap=("RULE", "WHEN"))
        for rule in policy.get("rules") or []:
            action = str(rule.get("action", ""))
            rules.add_row(
                str(rule.get("name", "")),
                str(rule.get("priority", "")),
                Text(action, style=_ACTION_STYLE.get(action, "")),
                str(rule.get("when", "")),
            )
        parts += [head, Padding(rules, (0, 0, 0, 2))]
    return Group(*parts)


_ACTION_STYLE = {
    "deny": "red",
    "defer": "yellow",
    "shape": "yellow",
    "switch_identity": "cyan",
    "approve": "green",
}
