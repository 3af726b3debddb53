"""`?`: the keys of the console on screen (live, read-only attach or replay), from the bindings'
own descriptions, with the id a keymap uses to remap each."""

from __future__ import annotations

from rich.table import Table
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from maestro_tui.screens.quit import choices
from maestro_tui.screens.review import ReviewScreen
from maestro_tui.widgets.panes import PlansTable

# keys that do nothing but say so where the console cannot decide or steer (read-only attach, replay)
STEERING = {"app.pause", "app.resume", "plans.approve", "plans.edit", "plans.veto", "review.approve", "review.edit",
            "review.veto"}


def app_bindings(app: App) -> list[Binding]:
    """The app's own bindings as they act: a subclass's (the replay's) first, then those of the classes it extends
    that it does not rebind; Textual's own are left out (ours rebind what of them we keep)."""
    seen: set[str] = set()
    out: list[Binding] = []
    for cls in type(app).__mro__:
        if not cls.__module__.startswith("maestro_tui") or "BINDINGS" not in vars(cls):
            continue
        for b in vars(cls)["BINDINGS"]:
            if isinstance(b, Binding) and b.key not in seen:
                seen.add(b.key)
                out.append(b)
    return out


def key_table(app: App) -> Table:
    """Key, what it does, binding id — for the console on screen, the plans pane, the review and the quit dialog."""
    read_only = bool(getattr(app, "read_only", False))
    live = bool(getattr(app, "session_live", lambda: False)())
    mode = "replay" if type(app).__name__ == "ReplayApp" else "read-only" if read_only else "live"
    table = Table(title=f"keys of this console ({mode}) — remap by id in config.toml [keys]", expand=True)
    table.add_column("where")
    table.add_column("key")
    table.add_column("does")
    table.add_column("id")
    keymap: dict[str, str] = getattr(app, "_keymap", {}) or {}
    groups = (("console", app_bindings(app)), ("plans pane", PlansTable.BINDINGS),
              ("review", ReviewScreen.BINDINGS), ("quit", choices(live)))
    for where, bindings in groups:
        for b in bindings:
            if not isinstance(b, Binding) or (read_only and b.id in STEERING):
                continue
            keys = keymap.get(b.id or "", b.key)
            shown = " ".join(app.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))
            table.add_row(where, shown, b.description or b.action, b.id or "")
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
