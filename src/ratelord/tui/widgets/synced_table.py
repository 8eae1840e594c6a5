"""A DataTable that is refreshed in place from a full list of rows every poll."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import RenderableType
from textual.widgets import DataTable

Row = tuple[str, Sequence[RenderableType]]


class SyncedTable(DataTable[RenderableType]):
    """Rows are keyed; ``sync()`` redraws only changed cells and keeps the cursor on its row."""

    COLUMNS: Sequence[tuple[str, str]] = ()
    """``(key, label)`` of each column, declared by subclasses."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._keys: list[str] = []
        self._cells: dict[str, Sequence[RenderableType]] = {}

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)

    @property
    def keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._keys)

    @property
    def selected_key(self) -> str | None:
        if not self._keys or not 0 <= self.cursor_row < len(self._keys):
            return None
        return self._keys[self.cursor_row]

    def sync(self, rows: Sequence[Row]) -> None:
        keys = [key for key, _ in rows]
        if keys == self._keys:
            for key, cells in rows:
                before = self._cells[key]
                for index, (column, _) in enumerate(self.COLUMNS):
                    if cells[index] != before[index]:
                        self.update_cell(key, column, cells[index])
                self._cells[key] = cells
            return
        selected = self.selected_key
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._keys = keys
        self._cells = dict(rows)
        if selected in keys:
            self.move_cursor(row=keys.index(selected))

    def row_text(self, key: str) -> list[str]:
        """Plain text of a row's cells (for tests and screen readers)."""
        return [str(cell) for cell in self.get_row(key)]
