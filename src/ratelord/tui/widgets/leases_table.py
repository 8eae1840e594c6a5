"""The leases view: who holds units of which pool, how many are spent, when they expire."""

from __future__ import annotations

from collections.abc import Iterable

from ratelord.schema import Lease
from ratelord.tui import formatting as fmt
from ratelord.tui.widgets.synced_table import Row, SyncedTable


def lease_row(lease: Lease, now: float) -> Row:
    seconds = fmt.seconds_until(lease.expires_at, now)
    return (
        lease.lease_id,
        [
            lease.holder,
            lease.holds,
            fmt.quantity(lease.granted),
            fmt.quantity(lease.spent),
            "—" if seconds is None else fmt.duration(seconds),
        ],
    )


class LeasesTable(SyncedTable):
    COLUMNS = (
        ("holder", "holder"),
        ("pool", "pool"),
        ("size", "size"),
        ("spent", "spent"),
        ("expires", "expires in"),
    )

    def show(self, leases: Iterable[Lease], now: float) -> None:
        ordered = sorted(leases, key=lambda x: (x.holds, x.holder, x.lease_id))
        self.sync([lease_row(lease, now) for lease in ordered])
