"""``ratelord status``: is the daemon healthy, and how are the pools doing?"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.text import Text

from ratelord.cli import _output as out
from ratelord.cli._http import api, decode
from ratelord.cli.pools import pools_table
from ratelord.schema import Health, Pool

_HEALTH_STYLE = {"ok": "green", "degraded": "yellow", "initializing": "yellow", "stopping": "red"}


def status(
    ctx: typer.Context,
    json_out: Annotated[
        bool, typer.Option("--json", help='Print {"url", "health", "pools"} as JSON.')
    ] = False,
) -> None:
    """Daemon health, policy version and a posture summary of every pool."""
    daemon = api(ctx)
    health_answer = daemon.get("/v1/health")
    pools_answer = daemon.get("/v1/pools")
    if json_out:
        out.print_json({"url": daemon.url, "health": health_answer, "pools": pools_answer["pools"]})
        return
    health = decode(health_answer, Health)
    pools = decode(pools_answer["pools"], list[Pool])
    console = out.console()
    console.print(
        Text.assemble(
            ("ratelord-d ", "bold"),
            health.version,
            "  ",
            out.styled(health.status, _HEALTH_STYLE),
            f"  at {daemon.url}",
        )
    )
    console.print(
        f"up {out.fmt_duration(health.uptime_seconds)}  seq {health.high_water_seq:,}"
        f"  policy {health.policy_version or 'built-in'}",
        style="dim",
    )
    cluster = health.cluster
    if cluster is not None:
        lag = (
            f", {cluster.replication_lag_events} events behind" if cluster.role != "leader" else ""
        )
        console.print(
            f"cluster: {cluster.role} (leader {cluster.leader or 'being elected'}, "
            f"epoch {cluster.epoch}{lag})"
        )
    for reason in health.reasons:
        console.print(f"  ! {reason}", style="yellow")
    console.print(_summary(pools))
    if pools:
        console.print(pools_table(pools, now=time.time()))


def _summary(pools: list[Pool]) -> Text:
    if not pools:
        return Text("no pools yet (register an identity with 'ratelord identity add')")
    counts = {s: sum(1 for p in pools if p.status == s) for s in ("OK", "WARN", "CRIT")}
    worst = out.worst_posture(p.status for p in pools)
    line = Text.assemble(
        "posture ", out.styled(worst, out.POSTURE_STYLE), f"  {out.plural(len(pools), 'pool')}: "
    )
    for i, (name, count) in enumerate(counts.items()):
        line.append(", " if i else "")
        line.append(f"{count} {name}", style=out.POSTURE_STYLE[name] if count else "dim")
    return line
