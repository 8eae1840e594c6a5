"""``ratelord leases``: the live leases — holder, pool, size, spent, expiry."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import RenderableType

from ratelord.cli import _output as out
from ratelord.cli._http import api, decode
from ratelord.schema import Lease


def leases(
    ctx: typer.Context,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the daemon's JSON answer.")
    ] = False,
) -> None:
    """List live leases: units a holder spends without asking (GET /v1/leases)."""
    answer = api(ctx).get("/v1/leases")
    if json_out:
        out.print_json(answer)
        return
    listed = decode(answer["leases"], list[Lease])
    if not listed:
        out.console().print(
            "no live leases (the SDK takes them at high call rates, or with guard(lease=True))"
        )
        return
    out.console().print(leases_table(listed, now=time.time()))


def leases_table(listed: list[Lease], *, now: float) -> RenderableType:
    grid = out.table(
        "HOLDER", "POOL", "GRANTED", "SPENT", "LEFT", "RATE", "EXPIRES IN", wrap=("HOLDER", "POOL")
    )
    for lease in sorted(listed, key=lambda x: (x.holds, x.holder)):
        grid.add_row(
            lease.holder,
            lease.holds,
            out.fmt_number(lease.granted),
            out.fmt_number(lease.spent),
            out.fmt_number(lease.available),
            out.fmt_rate(lease.rate),
            out.fmt_duration(out.seconds_until(lease.expires_at, now)),
        )
    return grid
