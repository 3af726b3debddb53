"""Refreshing a DataTable by diff: changed cells updated, new keys added, stale keys dropped."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable


def sync_table(table: DataTable, rows: Sequence[tuple[str, Sequence[object]]]) -> None:
    """Make `table` show `rows` ((key, cells) in order) touching only what changed."""
    wanted = [key for key, _ in rows]
    current = [str(k.value) for k in table.rows]
    if current != wanted[: len(current)] or len(set(wanted)) != len(wanted):
        if set(current) - set(wanted) or current != [k for k in wanted if k in set(current)]:
            cursor = table.cursor_row
            table.clear()
            for key, cells in rows:
                table.add_row(*cells, key=key)
            if table.row_count:
                table.move_cursor(row=min(cursor, table.row_count - 1))
            return
    columns = list(table.columns)
    for key, cells in rows:
        if key in table.rows:
            old = table.get_row(key)
            for col, (before, after) in enumerate(zip(old, cells)):
                if before != after:
                    table.update_cell(key, columns[col], after)
        else:
            table.add_row(*cells, key=key)
