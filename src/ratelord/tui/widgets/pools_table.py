"""The pools table: one row per budget, coloured by posture."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from ratelord.schema import Pool
from ratelord.tui import formatting as fmt
from ratelord.tui.posture import BADGE_STYLE, SEVERITY
from ratelord.tui.widgets.synced_table import Row, SyncedTable


def badge(pool: Pool) -> Text:
    return Text(f" {pool.status} ", style=BADGE_STYLE[pool.status])


def pool_row(pool: Pool, now: float) -> Row:
    forecast = pool.forecast
    return (
        pool.pool_id,
        [
            badge(pool),
            pool.pool_id,
            f"{fmt.quantity(pool.remaining)}/{fmt.quantity(pool.limit)}",
            fmt.rate(forecast.burn_rate) if forecast else "—",
            fmt.duration(forecast.tte_p99_seconds) if forecast else "—",
            _reset_in(pool, now),
            pool.principal,
        ],
    )


def _reset_in(pool: Pool, now: float) -> str:
    seconds = fmt.seconds_until(pool.reset_at, now)
    return "—" if seconds is None else fmt.duration(seconds)


class PoolsTable(SyncedTable):
    #: The badge leads and the scope trails, so a narrow terminal still shows what matters.
    COLUMNS = (
        ("status", "status"),
        ("pool", "pool"),
        ("remaining", "remaining"),
        ("burn", "burn"),
        ("tte_p99", "P99 TTE"),
        ("reset", "reset in"),
        ("scope", "scope"),
    )

    def show(self, pools: Iterable[Pool], now: float) -> None:
        """Worst posture first, so trouble is at the top without scrolling."""
        ordered = sorted(pools, key=lambda p: (-SEVERITY[p.status], p.pool_id))
        self.sync([pool_row(pool, now) for pool in ordered])
