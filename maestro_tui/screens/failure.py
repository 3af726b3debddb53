"""A failure the trader must see: a feed that stopped reading, a background job that broke."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from engine.text import visible


class FailureScreen(ModalScreen[None]):
    """What failed and why; the console behind it stays as it was, and usable once this is closed."""

    DEFAULT_CSS = """
    FailureScreen { align: center middle; }
    #failure { width: 80%; max-width: 100; height: auto; border: thick $error; background: $surface; padding: 1 2; }
    #failure > Static { margin: 0 0 1 0; }
    """
    BINDINGS = [Binding("escape,enter", "app.pop_screen", "close", id="failure.close")]

    def __init__(self, title: str, reason: str, consequence: str) -> None:
        super().__init__()
        self.title_text, self.reason, self.consequence = title, reason, consequence

    def compose(self) -> ComposeResult:
        with Vertical(id="failure"):
            yield Static(Text(visible(self.title_text, one_line=True), style="bold red"), id="failure-title")
            yield Static(Text(visible(self.reason)), id="failure-reason")  # an exception's words: data
            yield Static(Text(self.consequence), id="failure-consequence")
            yield Static(Text("esc or enter: close", style="dim"))
