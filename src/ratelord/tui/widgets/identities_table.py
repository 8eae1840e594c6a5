"""The identities view: each identity with the quota of the pool that limits it most."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from ratelord.schema import Identity, Pool, display_id
from ratelord.tui import formatting as fmt
from ratelord.tui.posture import POSTURE_COLOR, tightest_pool
from ratelord.tui.widgets.synced_table import Row, SyncedTable

STATUS_STYLE = {"active": "", "revoked": "dim", "quarantined": "bold magenta"}


def identity_row(identity: Identity, pools_by_id: dict[str, Pool], now: float) -> Row:
    pool = tightest_pool(identity, pools_by_id)
    if pool is None:
        remaining: Text | str = "—"
        reset = "—"
    else:
        remaining = Text(
            f"{fmt.quantity(pool.remaining)}/{fmt.quantity(pool.limit)}",
            style=POSTURE_COLOR[pool.status],
        )
        seconds = fmt.seconds_until(pool.reset_at, now)
        reset = "—" if seconds is None else fmt.duration(seconds)
    return (
        identity.identity_id,
        [
            identity.identity_id,
            Text(identity.status, style=STATUS_STYLE.get(identity.status, "")),
            remaining,
            reset,
            display_id(identity.scope_id),
            identity.principal or "—",
            identity.kind,
        ],
    )


class IdentitiesTable(SyncedTable):
    #: Quota and reset come right after the id, so a narrow terminal still shows them.
    COLUMNS = (
        ("identity", "identity"),
        ("status", "status"),
        ("remaining", "remaining"),
        ("reset", "reset in"),
        ("scope", "scope"),
        ("principal", "principal"),
        ("kind", "kind"),
    )

    def show(
        self, identities: Iterable[Identity], pools_by_id: dict[str, Pool], now: float
    ) -> None:
        ordered = sorted(identities, key=lambda i: i.identity_id)
        self.sync([identity_row(identity, pools_by_id, now) for identity in ordered])
