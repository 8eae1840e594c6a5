"""The pool detail chart: observed remaining (past) and the P50/P90/P99 forecast cone (future)."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from ratelord.schema import Pool
from ratelord.tui.api import HistoryPoint
from ratelord.tui.cone import forecast_cone, history_series

LINE_COLORS = {"observed": "cyan", "P50": "green", "P90": "orange", "P99": "red"}


class UsageChart(PlotextPlot):
    def show(self, pool: Pool, history: list[HistoryPoint], now: float) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"{pool.pool_id}: remaining {pool.unit}")
        plt.xlabel("minutes from now (reset at right edge)")
        observed = history_series(history, now)
        cone = forecast_cone(pool, now)
        for series in [observed, *cone]:
            if series.minutes:
                plt.plot(
                    series.minutes,
                    series.values,
                    label=series.label,
                    color=LINE_COLORS[series.label],
                    marker="braille",
                )
        plt.vline(0, "white")
        if pool.limit:
            plt.ylim(0, pool.limit)
        self.refresh()
