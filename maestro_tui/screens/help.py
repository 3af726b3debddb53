"""`?`: every key of the console, with the id a keymap uses to remap it."""

from __future__ import annotations

from rich.table import Table
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from maestro_tui.screens.quit import QuitScreen
from maestro_tui.screens.review import ReviewScreen
from maestro_tui.widgets.panes import PlansTable


def key_table(app: App) -> Table:
    """Key, what it does, binding id — for the console, the review modal and the quit dialog."""
    table = Table(title="keys (remap by id in config.toml [keys])", expand=True)
    table.add_column("where")
    table.add_column("key")
    table.add_column("does")
    table.add_column("id")
    groups = (("console", app.BINDINGS), ("plans pane", PlansTable.BINDINGS), ("review", ReviewScreen.BINDINGS),
              ("quit", QuitScreen.BINDINGS))
    for where, bindings in groups:
        for b in bindings:
            if isinstance(b, Binding):
                keymap = getattr(app, "_keymap", {}) or {}
                table.add_row(where, keymap.get(b.id or "", b.key), b.description or b.action, b.id or "")
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help { width: 90%; height: 90%; border: thick $accent; background: $surface; }
    """
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "close", id="help.close")]

    def __init__(self, app: App) -> None:
        super().__init__()
        self._table = key_table(app)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(self._table)
