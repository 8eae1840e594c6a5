"""``ratelord sim``: run a scenario through the real engine on a virtual clock.

Needs no daemon.  Exit codes: 0 every invariant held, 1 an invariant failed,
2 the scenario could not be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from ratelord.cli import _output as out
from ratelord.cli._errors import CliError
from ratelord.sim import (
    Report,
    ScenarioError,
    compare_table,
    load_scenario,
    render,
    run_scenario,
)
from ratelord.sim.runner import Progress as ProgressCallback

EXIT_INVARIANT_FAILED = 1
EXIT_BAD_SCENARIO = 2


class Strategy(StrEnum):
    ratelord = "ratelord"
    none = "none"
    token_bucket = "token-bucket"  # noqa: S105 (a strategy name, not a secret)
    leases = "leases"


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr, only where a person watches it."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=1.0)
        yield lambda done: bar.update(task, completed=done)


def sim(
    scenario: Annotated[
        Path, typer.Argument(help="Scenario YAML (see docs/simulator.md).", show_default=False)
    ],
    strategy: Annotated[
        Strategy, typer.Option(help="Who decides when agents call.")
    ] = Strategy.ratelord,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (default: the scenario's).", show_default=False)
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Run every strategy and compare them side by side.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Simulate agents sharing rate-limited pools, governed by ratelord or a baseline.

    Deterministic: the same scenario and seed give byte-identical --json output.
    Exits 1 when an invariant of the scenario fails (2 when the scenario is invalid).
    """
    try:
        loaded = load_scenario(scenario)
    except ScenarioError as exc:
        raise CliError(str(exc), exit_code=EXIT_BAD_SCENARIO) from None
    strategies = list(Strategy) if compare else [strategy]
    reports: list[Report] = []
    for chosen in strategies:
        with _progress(f"{loaded.name} · {chosen.value}", not json_output) as progress:
            reports.append(run_scenario(loaded, chosen.value, seed=seed, progress=progress))
    if json_output:
        body = b",\n".join(r.to_json() for r in reports)
        typer.echo((b"[\n" + body + b"\n]" if compare else body).decode())
    elif compare:
        out.console().print(compare_table(reports))
    else:
        out.console().print(render(reports[0]))
    if not reports[0].passed:
        raise typer.Exit(EXIT_INVARIANT_FAILED)
