"""`?`: the keys of the console on screen (live, read-only attach or replay), from the bindings'
own descriptions, with the id a keymap uses to remap each."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from maestro_tui.feed import Mode
from maestro_tui.screens.message import MessageScreen
from maestro_tui.screens.quit import choices
from maestro_tui.screens.review import ReviewScreen
from maestro_tui.screens.session import STEERING, SessionScreen, acts_in
from maestro_tui.widgets.panes import PlansTable


def keys_of(mode: Mode, live: bool, app_bindings: list[Binding]) -> list[tuple[str, Binding]]:
    """(where, binding) for every key that acts on a console in `mode`: the console's (the App's and the session
    screen's), the plans pane's, the review's, the agent message's and the quit dialog's (`live`: the choices of a
    session this console can stop). A key that steers is left out where nothing can be steered."""
    groups = (("console", [*app_bindings, *SessionScreen.BINDINGS]), ("plans pane", PlansTable.BINDINGS),
              ("review", ReviewScreen.BINDINGS), ("message", MessageScreen.BINDINGS), ("quit", choices(live)))
    return [(where, b) for where, bindings in groups for b in bindings
            if isinstance(b, Binding) and acts_in(b.action, mode) and not (mode != "live" and b.id in STEERING)]


def key_table(app: App) -> Table:
    """Key, what it does, binding id — for the console on screen (maestro_tui.app.MaestroApp), one section per place
    the keys act in (the console, the plans pane, the review, a message, the quit dialog)."""
    session = app.session  # type: ignore[attr-defined]
    mode: Mode = session.mode
    table = Table(title=f"keys of this console ({mode}) · remap by id in config.toml [keys]", expand=True,
                  box=None, pad_edge=False)
    table.add_column("key", no_wrap=True)
    table.add_column("does", ratio=3)
    table.add_column("id", style="dim", ratio=2, overflow="fold")
    keymap: dict[str, str] = getattr(app, "keymap_ids", {})
    section = ""
    for where, b in keys_of(mode, session.session_live(), list(type(app).BINDINGS)):
        if where != section:
            section = where
            table.add_row(Text(where, style="bold underline"), "", "", end_section=False)
        keys = keymap.get(b.id or "", b.key)
        shown = " ".join(app.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))
        table.add_row(Text(shown, style="bold"), b.description or b.action, b.id or "")
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
