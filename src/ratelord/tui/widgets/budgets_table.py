"""The money budgets view: committed this period of the limit, and the forecast to its end."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from ratelord.schema import MoneyBudget
from ratelord.tui import formatting as fmt
from ratelord.tui.widgets.synced_table import Row, SyncedTable


def budget_row(budget: MoneyBudget) -> Row:
    over = budget.forecast_end > budget.limit
    return (
        budget.budget_id,
        [
            f"{budget.budget_id} ({budget.period})",
            f"{budget.spent:,.2f} / {budget.limit:,.2f} {budget.currency}",
            Text(f"{budget.forecast_end:,.2f}", style="yellow" if over else ""),
            fmt.duration(budget.seconds_to_end),
        ],
    )


class BudgetsTable(SyncedTable):
    COLUMNS = (
        ("budget", "budget"),
        ("spent", "spent / limit"),
        ("forecast", "forecast"),
        ("ends", "ends in"),
    )

    def show(self, budgets: Iterable[MoneyBudget]) -> None:
        """Hidden while no budget is configured."""
        rows = [budget_row(b) for b in sorted(budgets, key=lambda b: b.budget_id)]
        self.display = bool(rows)
        self.sync(rows)
