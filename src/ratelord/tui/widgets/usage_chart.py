"""The pool detail charts: observed remaining (history) and the P50/P90/P99 forecast cone.

Two charts rather than one shared axis: history spans minutes, the cone spans the whole time to
the reset, and on one axis the history would shrink to a few columns at the left edge.
"""

from __future__ import annotations

from textual_plotext import PlotextPlot

from ratelord.schema import HistoryPoint, Pool
from ratelord.tui.cone import Series, forecast_cone, history_series

LINE_COLORS = {"observed": "cyan", "P50": "green", "P90": "orange", "P99": "red"}


class _PoolChart(PlotextPlot):
    """Remaining budget over time; with ``limit`` the y axis runs from 0 to it."""

    def draw(self, title: str, xlabel: str, series: list[Series], limit: float | None) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        plt.xlabel(xlabel)
        drawn = [s for s in series if s.minutes]
        for line in drawn:
            plt.plot(
                line.minutes,
                line.values,
                label=line.label,
                color=LINE_COLORS[line.label],
                marker="braille",
            )
        if not drawn:
            plt.text("no data yet", 0, 0)
        if limit:
            plt.ylim(0, limit)
        self.refresh()


class HistoryChart(_PoolChart):
    def show(self, pool: Pool, history: list[HistoryPoint], now: float) -> None:
        series = history_series(history, now)
        # Auto-scaled: over a few minutes the change is small next to the whole limit.
        self.draw(f"usage history ({pool.unit} remaining)", "minutes ago", [series], None)


class ConeChart(_PoolChart):
    def show(self, pool: Pool, now: float) -> None:
        cone = forecast_cone(pool, now)
        self.draw("forecast to reset: P50 / P90 / P99", "minutes from now", cone, pool.limit)
