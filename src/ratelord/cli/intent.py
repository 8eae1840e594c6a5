"""``ratelord intent``: ask the daemon as an agent would, and show why it decided so."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group, RenderableType
from rich.text import Text

from ratelord.cli import _output as out
from ratelord.cli._errors import EXIT_DENIED
from ratelord.cli._http import api, decode
from ratelord.schema import Decision, Evaluation


class Urgency(StrEnum):
    background = "background"
    low = "low"
    normal = "normal"
    high = "high"


def intent(
    ctx: typer.Context,
    agent: Annotated[str, typer.Option(help="Agent id: who asks.")],
    identity: Annotated[str, typer.Option(help="Identity id the work is charged to.")],
    workload: Annotated[str | None, typer.Option(help="Workload id (maps to costs).")] = None,
    scope: Annotated[str | None, typer.Option(help="Scope id, e.g. repo:acme/api.")] = None,
    urgency: Annotated[Urgency, typer.Option(help="How urgent the work is.")] = Urgency.normal,
    resource: Annotated[str | None, typer.Option(help="Resource charged, e.g. core.")] = None,
    cost: Annotated[
        float | None,
        typer.Option(min=0, help="Units spent from --resource, or units of --workload."),
    ] = None,
    charge: Annotated[
        list[str] | None,
        typer.Option(
            metavar="RESOURCE=AMOUNT",
            help="Charge several resources in one ask (repeat): --charge requests=1 "
            "--charge tokens=130.",
        ),
    ] = None,
    fail_on_deny: Annotated[
        bool, typer.Option("--fail-on-deny", help="Exit 2 when the intent is denied.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the decision JSON.")] = False,
) -> None:
    """Submit a test intent (POST /v1/intent) and show the decision.

    Exits 0 whatever the decision, unless --fail-on-deny is given.
    """
    body: dict[str, Any] = {"agent_id": agent, "identity_id": identity, "urgency": urgency.value}
    optional = {"workload_id": workload, "scope_id": scope, "resource": resource, "cost": cost}
    body.update({k: v for k, v in optional.items() if v is not None})
    if charge:
        body["costs"] = _parse_charges(charge)
    answer = api(ctx).post("/v1/intent", body)
    decision = decode(answer, Decision)
    if json_out:
        out.print_json(answer)
    else:
        out.console().print(render_decision(decision))
    if fail_on_deny and not decision.allowed:
        raise typer.Exit(EXIT_DENIED)


def _parse_charges(charges: list[str]) -> dict[str, float]:
    costs: dict[str, float] = {}
    for item in charges:
        resource, sep, amount = item.partition("=")
        try:
            if not sep or not resource:
                raise ValueError
            costs[resource.strip()] = float(amount)
        except ValueError:
            raise typer.BadParameter(
                f"{item!r} is not RESOURCE=AMOUNT (e.g. tokens=130)", param_hint="--charge"
            ) from None
    return costs


def render_decision(decision: Decision) -> RenderableType:
    mods = decision.modifications
    # The reason gets its own row below, so the headline stays short.
    label = out.decision_label(decision.decision, msgspec.structs.asdict(mods), None)
    rows: list[tuple[str, RenderableType | None]] = [
        ("intent", decision.intent_id),
        ("wait", out.fmt_duration(mods.wait_seconds) if mods.wait_seconds else None),
        ("defer until", out.fmt_instant(mods.defer_until) if mods.defer_until else None),
        ("switch to", mods.identity_switch),
        ("reason", decision.reason),
    ]
    ev = decision.evaluation
    if ev is not None:
        rows += _evaluation_rows(ev)
    parts: list[RenderableType] = [Text.assemble("decision  ", label), out.details(rows)]
    if ev is not None and ev.pools:
        parts += ["", _pools(ev)]
    return Group(*parts)


def _evaluation_rows(ev: Evaluation) -> list[tuple[str, RenderableType | None]]:
    forecast = ev.tightest_pool is not None  # no pool (unknown identity): nothing was forecast
    return [
        ("rules fired", ", ".join(ev.rules_fired) or "none"),
        ("tightest pool", ev.tightest_pool),
        ("P(exhaustion)", out.fmt_percent(ev.p_exhaustion) if forecast else None),
        ("TTE P99", out.fmt_duration(ev.tte_p99_seconds) if forecast else None),
        ("risk", ev.risk_summary or None),
        ("policy", ev.policy_version),
    ]


def _pools(ev: Evaluation) -> RenderableType:
    grid = out.table(
        "POOL", "COST", "LEFT", "P(EXH)", "WITH INTENT", "TTE P99", "STATUS", wrap=("POOL",)
    )
    for risk in ev.pools:
        grid.add_row(
            risk.pool_id,
            out.fmt_number(risk.cost),
            out.fmt_budget(risk.remaining, risk.limit),
            out.fmt_percent(risk.p_exhaustion),
            out.fmt_percent(risk.p_exhaustion_with_intent),
            out.fmt_duration(risk.tte_p99_seconds),
            out.styled(risk.posture, out.POSTURE_STYLE),
        )
    return grid
