"""The report for people: Rich tables of agent groups, pools and invariants."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ratelord.sim.report import Report, Reset

_ROWS = (
    ("agents", "agents"),
    ("work items", "work_items"),
    ("intents", "intents"),
    ("  approved", "approvals"),
    ("  modified", "modifications"),
    ("  deferred", "deferrals"),
    ("  denied", "denials"),
    ("429s", "rejections_429"),
    ("5xx", "provider_errors"),
    ("completed", "completed"),
    ("dropped", "dropped"),
    ("in flight at the end", "in_flight"),
    ("units done", "work_done"),
    ("wait p50 (s)", "wait_p50_seconds"),
    ("wait p99 (s)", "wait_p99_seconds"),
)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _agents_table(report: Report) -> Table:
    """Metrics down, agent groups across: a few groups fit any terminal."""
    columns = [*report.groups, report.overall]
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("")
    for counts in columns:
        heading = f"{counts.name}\n[dim]{counts.urgency}"
        heading += "" if counts.honest else ", bypasses"
        table.add_column(heading + "[/]", justify="right")
    for label, field in _ROWS:
        cells = []
        for counts in columns:
            cell = _cell(getattr(counts, field))
            if field == "rejections_429" and counts.honest and counts.rejections_429:
                cell = f"[bold red]{cell}[/]"
            cells.append(cell)
        table.add_row(label, *cells)
    return table


def _pools_table(report: Report) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("pool", no_wrap=True)
    table.add_column("limit", justify="right")
    table.add_column("window", justify="right")
    table.add_column("utilisation at each reset (°: what was left fit no waiting call)")
    for pool in report.pools:
        resets = (
            " ".join(f"{r.utilisation:.1%}{'°' if _left_unused(r) else ''}" for r in pool.resets)
            or "no reset in the run"
        )
        table.add_row(pool.pool_id, _cell(pool.limit), f"{pool.window_seconds:,.0f}s", resets)
    return table


def _left_unused(reset: Reset) -> bool:
    """A reset marked ``°``: units were left, but fewer than any call waiting needed."""
    return reset.full and reset.used < reset.available - 0.5


def _invariants_table(report: Report) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("invariant")
    table.add_column("value", justify="right")
    table.add_column("verdict")
    for verdict in report.invariants:
        value = "n/a" if verdict.value is None else f"{verdict.value:,.4g}"
        mark = "[bold green]PASS[/]" if verdict.passed else "[bold red]FAIL[/]"
        table.add_row(verdict.check, value, mark)
    return table


def render(report: Report) -> RenderableType:
    hours = report.duration_seconds / 3600
    title = Text.assemble(
        (f"{report.scenario}", "bold"),
        f" under {report.strategy}, seed {report.seed}, "
        f"{hours:g} simulated hour{'s' if hours != 1 else ''} from {report.start}",
    )
    parts: list[RenderableType] = [title, Text(""), _agents_table(report), Text("")]
    parts.append(_pools_table(report))
    urgent = report.high_urgency
    if urgent.success_rate is not None:
        parts.append(
            Text(
                f"\nhigh urgency: {urgent.served_without_denial}/{urgent.work_items} "
                f"served without denial or 429 ({urgent.success_rate:.1%})"
            )
        )
    parts.append(Text(f"\nhonest agents' 429s: {report.honest_429s}"))
    if report.engine_events:
        events = ", ".join(f"{k} {v:,}" for k, v in report.engine_events.items())
        parts.append(Text(f"engine events: {events}", style="dim"))
    if report.invariants:
        parts += [Text(""), _invariants_table(report)]
    return Group(*parts)


def utilisation_text(report: Report, sep: str = " · ") -> str:
    """Each pool's lowest utilisation at a reset: ``99.8%``, or ``acct-a 99.8% · acct-b 12.0%``;
    ``°`` when a reset's leftover fit no waiting call (it counts as used up, see
    PoolReport.min_utilisation)."""
    shown = [
        (
            p.pool_id.rsplit(":", 1)[-1],
            f"{p.min_utilisation:.1%}{'°' if any(_left_unused(r) for r in p.resets) else ''}",
        )
        for p in report.pools
        if p.min_utilisation is not None
    ]
    if len(shown) == 1:
        return shown[0][1]
    return sep.join(f"{principal} {value}" for principal, value in shown) or "n/a"


def compare_table(reports: list[Report]) -> Table:
    """One scenario under several strategies, side by side."""
    table = Table(title=reports[0].scenario if reports else None, show_edge=False)
    table.add_column("strategy", no_wrap=True)
    table.add_column("honest 429s", justify="right")
    table.add_column("utilisation", justify="right", no_wrap=True)
    for heading in ("urgent ok", "units done", "wait p99"):
        table.add_column(heading, justify="right")
    table.add_column("checks")
    for report in reports:
        urgent = report.high_urgency.success_rate
        table.add_row(
            report.strategy,
            _cell(report.honest_429s),
            utilisation_text(report, sep="\n"),
            "n/a" if urgent is None else f"{urgent:.1%}",
            _cell(report.overall.work_done),
            f"{report.overall.wait_p99_seconds:,.1f}s",
            "[green]pass[/]" if report.passed else "[red]fail[/]",
        )
    return table
