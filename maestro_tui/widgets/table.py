"""A DataTable refreshed by position: row i shows the i-th item; only changed cells are touched.

Keying rows by their content (a plan id, a config id) made every change of order — a
new episode on top, a config climbing the leaderboard — a rebuild: all rows removed, added
again, measured again. Here the table's rows are positions; an item that moves changes the
cells of the rows it leaves and enters, nothing else is re-measured, and the cursor follows
the item it was on (or, where that is better, stays on its row: see FOLLOW).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from engine.text import visible


def _cell(value: object) -> object:
    """A cell as data: a str (a DataTable would read it as markup) becomes Text, and no Text holds a control character."""
    if isinstance(value, str):
        return Text(visible(value, one_line=True))
    if isinstance(value, Text):
        shown = visible(value.plain, one_line=True)
        return value if shown == value.plain else Text(shown, style=value.style)
    return value


class SyncedTable(DataTable):
    """A DataTable whose `sync(rows)` shows `rows` ((item key, cells) in order) by diff."""

    FOLLOW = True  # the cursor follows its item when it moves; False: it stays on its row
    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.keys: list[str] = []  # the item shown at each row

    def sync(self, rows: Sequence[tuple[str, Sequence[object]]]) -> None:
        selected = self.selected_key()
        rows = [(key, [_cell(c) for c in cells]) for key, cells in rows]
        columns = list(self.columns.values())
        shown = len(self.keys)
        for i, (_, cells) in enumerate(rows[:shown]):
            old = self.get_row(str(i))
            for column, before, after in zip(columns, old, cells):
                if before != after:
                    # measuring a cell is most of what an update costs: only when it may not fit
                    wider = len(str(after)) > column.content_width
                    self.update_cell(str(i), column.key, after, update_width=wider)
        for i in range(shown, len(rows)):
            self.add_row(*rows[i][1], key=str(i))
        for i in range(len(rows), shown):
            self.remove_row(str(i))
        self.keys = [key for key, _ in rows]
        if self.FOLLOW and selected in self.keys and self.keys.index(selected) != self.cursor_row:
            self.move_cursor(row=self.keys.index(selected), animate=False)

    def selected_key(self) -> str | None:
        """The item under the cursor."""
        row = self.cursor_row
        return self.keys[row] if self.keys and 0 <= row < len(self.keys) else None

    def cells_of(self, key: str) -> list[object]:
        """The cells of the row showing item `key` (KeyError when none does)."""
        try:
            return self.get_row(str(self.keys.index(key)))
        except ValueError:
            raise KeyError(key) from None
