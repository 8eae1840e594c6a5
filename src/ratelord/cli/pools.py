"""``ratelord pools [ID]`` and ``ratelord pools explain A B``: budgets, forecasts, sharing."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.text import Text
from typer.core import TyperGroup

from ratelord.cli import _output as out
from ratelord.cli._http import api, decode, path_id
from ratelord.schema import Forecast, MoneyBudget, Pool, display_id

#: z-scores of the burn-rate quantiles (the daemon's forecast model, SPEC §5).
QUANTILES = (("P50", 0.0), ("P90", 1.2816), ("P99", 2.3263))
TOP_CONSUMERS = 5


class _PoolsGroup(TyperGroup):
    """``pools ID`` reads as ``pools show ID``: any first word that is not a subcommand is an id."""

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:  # type: ignore[override]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_PoolsGroup,
    invoke_without_command=True,
    subcommand_metavar="[ID | explain A B]",
    help="Pools (real budgets): posture, forecast, consumers. 'pools ID' shows one.",
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the daemon's JSON answer.")]


@app.callback()
def pools(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List pools with posture and forecast, and money budgets (GET /v1/pools, /v1/budgets)."""
    if ctx.invoked_subcommand is not None:
        return
    answer = api(ctx).get("/v1/pools")
    money = api(ctx).get("/v1/budgets")["budgets"]
    if json_out:
        out.print_json({**answer, "budgets": money} if money else answer)
        return
    listed = decode(answer["pools"], list[Pool])
    if not listed:
        out.console().print("no pools yet (register an identity with 'ratelord identity add')")
    else:
        out.console().print(pools_table(listed, now=time.time()))
    if money:
        out.console().print(budgets_table(decode(money, list[MoneyBudget])))


@app.command("show", hidden=True)
def show(
    ctx: typer.Context,
    pool_id: Annotated[str, typer.Argument(metavar="ID", help="e.g. github:core:user/alice")],
    json_out: JsonFlag = False,
) -> None:
    """Show one pool: budget, forecast cone to the reset, history, top consumers."""
    answer = api(ctx).get(f"/v1/pools/{path_id(pool_id)}")
    if json_out:
        out.print_json(answer)
        return
    console = out.console()
    console.print(pool_detail(answer, now=time.time(), width=console.width))


@app.command("explain")
def explain(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="A", help="An identity id.")],
    b: Annotated[str, typer.Argument(metavar="B", help="Another identity id.")],
    json_out: JsonFlag = False,
) -> None:
    """Explain why two identities share a pool, or why they are isolated."""
    answer = api(ctx).get("/v1/graph/explain", {"a": a, "b": b})
    if json_out:
        out.print_json(answer)
        return
    out.console().print(explanation(answer))


# ------------------------------------------------------------------ rendering


def pools_table(listed: list[Pool], *, now: float) -> RenderableType:
    """One line per pool that fits 80 columns: the P50 and utilisation are in ``pools ID``."""
    grid = out.table(
        "POOL", "STATUS", "LEFT", "BURN", "TTE P99", "P(EXH)", "RESET IN", wrap=("POOL",)
    )
    for pool in sorted(listed, key=lambda p: p.pool_id):
        forecast = pool.forecast
        grid.add_row(
            pool.pool_id,
            out.styled(pool.status, out.POSTURE_STYLE),
            out.fmt_budget(pool.remaining, pool.limit),
            out.fmt_rate(forecast.burn_rate if forecast else None),
            out.fmt_duration(forecast.tte_p99_seconds) if forecast else "-",
            out.fmt_percent(forecast.p_exhaustion if forecast else None),
            _reset_in(pool, now),
        )
    return grid


def budgets_table(listed: list[MoneyBudget]) -> RenderableType:
    """Money budgets: committed of the limit this period, and the forecast to its end."""
    grid = out.table(
        "BUDGET",
        "APPLIES TO",
        "SPENT",
        "LIMIT",
        "FORECAST",
        "ENDS IN",
        wrap=("BUDGET", "APPLIES TO"),
    )
    for budget in listed:
        scope = [
            f"{k}={v}"
            for k, v in (
                ("agent", budget.agent),
                ("workload", budget.workload),
                ("key", budget.identity),
            )
            if v
        ] + [f"{k}={v}" for k, v in budget.labels.items()]
        over = budget.forecast_end > budget.limit
        grid.add_row(
            f"{budget.budget_id} ({budget.period})",
            ", ".join(scope) or "everything",
            f"{budget.spent:,.2f}",
            f"{budget.limit:,.2f} {budget.currency}",
            Text(f"{budget.forecast_end:,.2f}", style="yellow" if over else ""),
            out.fmt_duration(budget.seconds_to_end),
        )
    return grid


def pool_detail(answer: dict[str, Any], *, now: float, width: int = 80) -> RenderableType:
    pool = decode(answer, Pool)
    title = Text.assemble((pool.pool_id, "bold"), "  ", out.styled(pool.status, out.POSTURE_STYLE))
    window = f"{pool.window}" + (
        f", {out.fmt_duration(pool.window_seconds)}" if pool.window_seconds else ""
    )
    budget = (
        f"{out.fmt_count(pool.remaining)} of {out.fmt_count(pool.limit)} {pool.unit} left"
        f" ({out.fmt_percent(_utilization(pool))} used)"
    )
    parts: list[RenderableType] = [
        title,
        out.details(
            [
                ("provider", pool.provider_id),
                ("resource", pool.resource),
                ("principal", pool.principal),
                ("budget", budget),
                ("window", window),
                ("reset", f"in {_reset_in(pool, now)} ({out.fmt_instant(pool.reset_at)})"),
                ("members", ", ".join(pool.members) or "-"),
                ("stale", out.fmt_duration(pool.stale_seconds)),
                ("drift", f"{pool.drift_count} correction(s)"),
            ]
        ),
    ]
    if pool.forecast is not None:
        parts += ["", _forecast(pool, pool.forecast)]
    history = [float(h["remaining"]) for h in answer.get("history") or []]
    if history:
        span = _span(history)
        room = width - len("history  ") - 2 - len(span)
        parts += [
            "",
            Text.assemble(("history  ", "bold"), out.sparkline(history, max(room, 8)), "  ", span),
        ]
    consumers = answer.get("top_consumers") or {}
    if any(consumers.get(kind) for kind in ("agents", "identities")):
        parts += ["", _consumers(consumers)]
    return Group(*parts)


def _forecast(pool: Pool, forecast: Forecast) -> RenderableType:
    horizon = forecast.seconds_to_reset
    cone = out.table("QUANTILE", "BURN", "EXHAUSTS IN", "LEFT AT RESET")
    cold = ", cold start" if forecast.cold_start else ""
    title = f"forecast as of {out.fmt_instant(forecast.as_of)} ({forecast.model}{cold})"
    ttes = (forecast.tte_p50_seconds, forecast.tte_p90_seconds, forecast.tte_p99_seconds)
    for (name, z), tte in zip(QUANTILES, ttes, strict=True):
        burn = forecast.burn_rate + z * forecast.burn_stddev
        cone.add_row(name, out.fmt_rate(burn), out.fmt_duration(tte), _left_at(pool, burn, horizon))
    risk = out.details(
        [
            ("P(exhaustion before reset)", _risk_text(forecast.p_exhaustion)),
            ("margin (TTE P99 - reset)", out.fmt_duration(forecast.margin_seconds)),
        ]
    )
    return Group(out.heading(title), cone, risk)


def _left_at(pool: Pool, burn: float, horizon: float | None) -> str:
    """Projected remaining at the reset if the pool burns at ``burn`` until then."""
    if pool.remaining is None or horizon is None:
        return "-"
    return out.fmt_count(max(0.0, pool.remaining - burn * max(horizon, 0.0)))


def _risk_text(p: float) -> Text:
    style = "bold red" if p >= 0.5 else "yellow" if p >= 0.1 else "green"
    return Text(out.fmt_percent(p), style=style)


def _consumers(consumers: dict[str, Any]) -> RenderableType:
    grid = out.table("AGENT", "USED", "IDENTITY", "USED", wrap=("AGENT", "IDENTITY"))
    agents = _top(consumers.get("agents"))
    identities = _top(consumers.get("identities"))
    for i in range(max(len(agents), len(identities))):
        agent = agents[i] if i < len(agents) else ("", "")
        ident = identities[i] if i < len(identities) else ("", "")
        grid.add_row(*agent, *ident)
    return Group(out.heading("top consumers this window"), grid)


def _top(rows: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    ranked = sorted(rows or [], key=lambda r: -float(r.get("used", 0)))[:TOP_CONSUMERS]
    return [(display_id(str(r.get("id"))), out.fmt_number(r.get("used"))) for r in ranked]


_VERDICT_STYLE = {"shared": "bold yellow", "isolated": "green", "unknown": "yellow"}


def explanation(answer: dict[str, Any]) -> RenderableType:
    """``SHARED``/``ISOLATED``/``UNKNOWN``, the explanation, the principals, the shared pools."""
    word = str(answer.get("verdict") or ("shared" if answer.get("shared") else "isolated"))
    verdict = Text(word.upper(), style=_VERDICT_STYLE.get(word, "yellow"))
    a, b = answer.get("a", "?"), answer.get("b", "?")
    rows = [
        ("why", answer.get("explanation")),
        (f"{a} principal", answer.get("a_principal") or "unknown"),
        (f"{b} principal", answer.get("b_principal") or "unknown"),
        ("shared pools", ", ".join(answer.get("shared_pools") or []) or "none"),
    ]
    return Group(Text.assemble(verdict, f"  {a} and {b}"), out.details(rows))


def _utilization(pool: Pool) -> float | None:
    if pool.limit is None or pool.remaining is None or pool.limit <= 0:
        return None
    return 1.0 - pool.remaining / pool.limit


def _reset_in(pool: Pool, now: float) -> str:
    seconds = out.seconds_until(pool.reset_at, now)
    return "-" if seconds is None else out.fmt_duration(max(seconds, 0.0))


def _span(values: list[float]) -> str:
    return f"{out.fmt_count(values[0])} → {out.fmt_count(values[-1])}"
