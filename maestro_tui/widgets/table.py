"""A DataTable refreshed by position: row i shows the i-th item; only changed cells are touched.

Keying rows by their content (a plan id, a config id) made every change of order — a
new episode on top, a config climbing the leaderboard — a rebuild: all rows removed, added
again, measured again. Here the table's rows are positions; an item that moves changes the
cells of the rows it leaves and enters, nothing else is re-measured, and the cursor follows
the item it was on (or, where that is better, stays on its row: see FOLLOW).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.renderables.styled import Styled
from textual.widgets import DataTable

from engine.text import visible


def _cell(value: object) -> object:
    """A cell as data: a str (a DataTable would read it as markup) becomes Text, and no Text holds a control character.

    A Text's own line breaks stay (a row of ROW_HEIGHT 2 shows two lines): our code puts them between
    lines it made visible; any other control character is shown escaped.
    """
    if isinstance(value, str):
        return Text(visible(value, one_line=True))
    if isinstance(value, Text):
        lines = value.plain.split("\n")
        shown = [visible(line, one_line=True) for line in lines]
        return value if shown == lines else Text("\n".join(shown), style=value.style, justify=value.justify)
    return value


def _content(value: object) -> object:
    """What a cell shows, as a key: a Text by its words and styles (a Text is not hashable), anything else itself."""
    if isinstance(value, Text):
        return (value.plain, value.style, tuple(value.spans), value.justify, value.overflow, value.no_wrap)
    return value


def _same(a: object, b: object) -> bool:
    """Whether a cell shows the same: a Text by its words and its styles (rich's == looks at the words and spans only)."""
    if isinstance(a, Text) and isinstance(b, Text):
        return (a.plain, a.style, a.spans, a.justify) == (b.plain, b.style, b.spans, b.justify)
    return type(a) is type(b) and a == b


class SyncedTable(DataTable):
    """A DataTable whose `sync(rows)` shows `rows` ((item key, cells) in order) by diff."""

    FOLLOW = True  # the cursor follows its item when it moves; False: it stays on its row
    ROW_HEIGHT = 1  # lines per row
    RENDERED_CELLS = 4096  # cells kept rendered by what they show (about five screens of a full table)

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.keys: list[str] = []  # the item shown at each row
        self._rendered: dict[tuple, object] = {}

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int, cursor: bool = False,
                     hover: bool = False) -> list[list[Segment]]:
        """A cell's lines, rendered once for what the cell shows wherever it is.

        DataTable keeps a rendered cell under a count that every change bumps: one new episode on top, and
        every cell on screen is rendered again through rich, at about a third of a millisecond a cell, most of
        what a frame costs while a session streams (benchmarks/bench_tui.py). Here a cell is kept by its
        content and how it is drawn; its place (the row and column rich puts in the segments, for the mouse)
        is added to the kept lines, so a row that moves down is not rendered again. The body is DataTable's
        own `_render_cell` (textual is pinned: the snapshots would show a change of what it draws).
        """
        if row_index < 0 or column_index < 0:  # the header, row labels: DataTable's own cache keeps them
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        row = self.rows[row_key]
        fixed = row_index < self.fixed_rows or column_index < self.fixed_columns
        key = (_content(self._data[row_key][self._column_locations.get_key(column_index)]), row.height, base_style,
               width, cursor, hover, self._show_hover_cursor, self._pseudo_class_state, fixed)
        lines = self._rendered.get(key)
        if lines is None:
            if len(self._rendered) >= self.RENDERED_CELLS:
                self._rendered.clear()
            cell = self._get_row_renderables(row_index).cells[column_index]
            component_style, post_style = self._get_styles_to_render_cell(
                False, False, fixed, hover, cursor, self.show_cursor, self._show_hover_cursor,
                self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
            options = self.app.console_options.update_dimensions(width, row.height).update(no_wrap=row.height == 1)
            lines = self._rendered[key] = self.app.console.render_lines(
                Styled(Padding(cell, (0, self.cell_padding)), pre_style=base_style + component_style,
                       post_style=post_style), options)
        place = Style.from_meta({"row": row_index, "column": column_index})
        return [list(Segment.apply_style(line, post_style=place)) for line in lines]

    def sync(self, rows: Sequence[tuple[str, Sequence[object]]]) -> None:
        selected = self.selected_key()
        rows = [(key, [_cell(c) for c in cells]) for key, cells in rows]
        columns = list(self.columns.values())
        shown = len(self.keys)
        for i, (_, cells) in enumerate(rows[:shown]):
            old = self.get_row(str(i))
            for column, before, after in zip(columns, old, cells):
                if not _same(before, after):
                    # measuring a cell is most of what an update costs: only when it may not fit
                    wider = len(str(after)) > column.content_width
                    self.update_cell(str(i), column.key, after, update_width=wider)
        for i in range(shown, len(rows)):
            self.add_row(*rows[i][1], key=str(i), height=self.ROW_HEIGHT)
        for i in range(len(rows), shown):
            self.remove_row(str(i))
        self.keys = [key for key, _ in rows]
        if self.FOLLOW and selected in self.keys and self.keys.index(selected) != self.cursor_row:
            self.move_cursor(row=self.keys.index(selected), animate=False)

    def room(self, rows: int) -> int | None:
        """Columns of cells the table has for `rows` rows: beside its vertical scrollbar when they need one
        (None before its first layout)."""
        if not self.size.width:
            return None
        # as if a horizontal scrollbar took a line: then a row more needs the vertical one (the columns at
        # the right would go under it); without one, two columns may be left spare
        scrolls = rows * self.ROW_HEIGHT + self.show_header > self.size.height - self.styles.scrollbar_size_horizontal
        return self.size.width - (self.styles.scrollbar_size_vertical if scrolls else 0)

    def set_width(self, column: int, width: int) -> None:
        """Hold the `column`-th column (0-based) at `width` cells (padding aside), whatever its cells measure."""
        col = self.ordered_columns[column]
        if col.auto_width or col.width != width:
            col.auto_width, col.width = False, width
            self._require_update_dimensions = True  # what add_column sets: the table lays its columns out again
            self.refresh()

    def cell_of(self, key: str, column: str) -> object:
        """The cell of the row showing item `key` under the column headed `column` (KeyError when there is none)."""
        labels = [c.label.plain for c in self.ordered_columns]
        if column not in labels:
            raise KeyError(column)
        return self.cells_of(key)[labels.index(column)]

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
