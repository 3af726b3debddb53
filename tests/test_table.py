"""SyncedTable keeps each cell rendered by what it shows: a row that moves is not rendered again,
and what it draws, and where a click lands, are what DataTable's own rendering gives."""

from __future__ import annotations

import contextlib

from rich.text import Text
from textual.app import App
from textual.widgets import DataTable

from maestro_tui.widgets.table import SyncedTable


class Board(App):
    def compose(self):
        yield SyncedTable(cursor_type="row")

    def on_mount(self) -> None:
        self.query_one(SyncedTable).add_columns("item", "pnl", "note")


def rows(first: int, last: int) -> list[tuple[str, list[object]]]:
    """Newest on top, as the episodes pane shows them: each new item moves every row down one."""
    return [(f"e{i}", [f"e{i}", Text(f"{i * 37 - 500:+,d}", style="green" if i % 2 else "red", justify="right"),
                       "zero trades" if i % 3 == 0 else ""]) for i in range(last, first - 1, -1)]


def drawn(table: SyncedTable, render) -> list[list[list[tuple[str, object]]]]:
    """Every body cell's lines as (text, style) pairs, rendered by `render` (the table's, or DataTable's own)."""
    out = []
    for r in range(table.row_count):
        for c in range(len(table.columns)):
            for cursor in (False, True):
                lines = render(table, r, c, table.rich_style, 12, cursor, False)
                out.append([[(s.text, s.style) for s in line] for line in lines])
    return out


def rendered_at(table: SyncedTable, width: int) -> int:
    """Cells kept rendered at `width` columns (the screen renders them at their own widths too)."""
    return sum(1 for key in table._rendered if key[3] == width)


@contextlib.asynccontextmanager
async def board_of(items: int):
    """A board on screen showing items 1 … `items`, newest on top: its pilot and its table."""
    app = Board()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(SyncedTable)
        table.sync(rows(1, items))
        await pilot.pause()
        yield pilot, table


async def test_a_cell_is_rendered_once_for_what_it_shows_and_draws_what_datatable_draws():
    async with board_of(10) as (pilot, table):
        drawn(table, SyncedTable._render_cell)
        kept = rendered_at(table, 12)
        table.sync(rows(1, 12))  # two new items on top: every row shows another item than before
        await pilot.pause()
        assert drawn(table, SyncedTable._render_cell) == drawn(table, DataTable._render_cell)
        # rendered again: only what no row showed before, the two new items' names and pnl, with and without
        # the cursor (their notes read as notes above did)
        assert rendered_at(table, 12) == kept + 2 * 2 * 2


async def test_a_click_lands_on_the_row_clicked_after_the_rows_have_moved():
    async with board_of(10) as (pilot, table):
        await pilot.click(SyncedTable, offset=(3, 1 + 4))  # under the header: the fifth row, item e6
        assert table.selected_key() == "e6"
        table.sync(rows(1, 13))  # three new items on top
        await pilot.pause()
        await pilot.click(SyncedTable, offset=(3, 1 + 2))
        assert table.cursor_row == 2 and table.selected_key() == "e11"
