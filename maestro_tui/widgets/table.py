"""Refreshing a DataTable by diff: changed cells updated, rows appended; any other change of order rebuilds it."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable


def sync_table(table: DataTable, rows: Sequence[tuple[str, Sequence[object]]]) -> None:
    """Make `table` show `rows` ((key, cells) in order) touching only what changed.

    When the rows only changed cells or gained rows at the end, only those are touched;
    when the order changed (a config moved up the leaderboard, a row came in between) the
    table is rebuilt, and the cursor stays on the row it was on, wherever that went.
    """
    wanted = [key for key, _ in rows]
    current = [str(k.value) for k in table.rows]
    if current != wanted[: len(current)]:
        selected = current[table.cursor_row] if table.row_count and 0 <= table.cursor_row < len(current) else None
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if table.row_count:
            table.move_cursor(row=wanted.index(selected) if selected in wanted else min(table.cursor_row, table.row_count - 1))
        return
    columns = list(table.columns)
    for key, cells in rows[: len(current)]:
        old = table.get_row(key)
        for col, (before, after) in enumerate(zip(old, cells)):
            if before != after:
                table.update_cell(key, columns[col], after)
    for key, cells in rows[len(current):]:
        table.add_row(*cells, key=key)
