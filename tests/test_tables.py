"""The console's tables: refreshed by position, the cursor following its item, the leaderboard capped."""

from __future__ import annotations

from rich.text import Text
from textual.app import App

from engine.configs import config_id
from engine.params import Params
from maestro_tui import state  # state.TestDone: a name pytest would try to collect
from maestro_tui.state import Item, SessionView
from maestro_tui.widgets.panes import LeaderboardTable, Pane
from maestro_tui.widgets.table import SyncedTable
from tests.test_leaderboard import row


class OneTable(App):
    def __init__(self, table) -> None:
        super().__init__()
        self.table = table

    def compose(self):
        yield Pane("table", self.table)


def cells(table: SyncedTable) -> list[list[object]]:
    """The rows as shown: text cells by their plain text (strings are kept as rich Text, never markup)."""
    return [[c.plain if isinstance(c, Text) else c for c in table.get_row(str(i))] for i in range(table.row_count)]


async def test_synced_table_shows_rows_in_order_and_touches_only_changed_cells():
    table = SyncedTable()
    app = OneTable(table)
    async with app.run_test() as pilot:
        table.add_columns("name", "value")
        table.sync([("a", ["a", 1]), ("b", ["b", 2]), ("c", ["c", 3])])
        await pilot.pause()
        table.move_cursor(row=1)  # on b
        updates = []
        original = table.update_cell
        table.update_cell = lambda *a, **kw: (updates.append(a[:2]), original(*a, **kw))[1]
        table.sync([("a", ["a", 1]), ("b", ["b", 7]), ("c", ["c", 3])])
        assert updates == [("1", table.ordered_columns[1].key)]  # one value changed: one cell touched
        # b climbs to the top, d comes in between, c leaves
        table.sync([("b", ["b", 5]), ("d", ["d", 4]), ("a", ["a", 1])])
        await pilot.pause()
        assert table.keys == ["b", "d", "a"]
        assert cells(table) == [["b", 5], ["d", 4], ["a", 1]]
        assert table.selected_key() == "b" and table.cursor_row == 0  # the cursor went with its item
        assert [str(c) for c in table.cells_of("d")] == ["d", "4"]
        table.sync([("d", ["d", 4])])
        await pilot.pause()
        assert table.row_count == 1 and table.keys == ["d"] and table.selected_key() == "d"
        table.sync([])
        await pilot.pause()
        assert table.row_count == 0 and table.selected_key() is None


async def test_the_leaderboard_holds_the_top_200_and_its_frame_says_of_how_many():
    view = SessionView()
    rows = [row("seg1_test001", Params(ema_fast=5 + i % 40, ema_slow=60 + i // 40), "baseline", val_score=float(i),
                val_trades=1) for i in range(250)]
    view.apply(Item("test", state.TestDone("seg1_test001", rows)))
    table = LeaderboardTable()
    app = OneTable(table)
    async with app.run_test() as pilot:
        table.show(view)
        await pilot.pause()
        assert table.row_count == 200
        assert table.parent.border_subtitle == "top 200 of 250"
        best = max(rows, key=lambda r: r.val_score)
        assert table.keys[0] == best.config_id == config_id(Params.model_validate_json(best.params_json))
        table.method_filter = "macd_trend"  # none of these: the frame says nothing more
        table.show(view)
        await pilot.pause()
        assert table.row_count == 0 and table.parent.border_subtitle == ""


async def test_in_the_plans_table_the_cursor_stays_on_its_row_for_the_next_plan_to_decide():
    from maestro_tui.widgets.panes import PlansTable

    table = PlansTable()
    app = OneTable(table)
    async with app.run_test() as pilot:
        await pilot.pause()
        table.sync([(p, [f"{p} pending", ""]) for p in ("P1", "P2", "P3")])
        await pilot.pause()
        assert table.selected_key() == "P1"
        # P1 decided: the pending ones come first, P1 goes below them
        table.sync([("P2", ["P2 pending", ""]), ("P3", ["P3 pending", ""]), ("P1", ["P1 applied", ""])])
        await pilot.pause()
        assert table.cursor_row == 0 and table.selected_key() == "P2"



async def test_a_text_cell_is_data_never_markup_nor_a_control_sequence():
    table = SyncedTable()
    async with OneTable(table).run_test() as pilot:
        table.add_columns("a", "b")
        table.sync([("x", ["[link=https://evil.example]click[/link] [/]", "\x1b]0;PWNED\x07\x9b2J"])])
        await pilot.pause()
        assert cells(table) == [["[link=https://evil.example]click[/link] [/]", "\\x1b]0;PWNED\\x07\\x9b2J"]]
