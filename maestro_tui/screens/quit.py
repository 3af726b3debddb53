"""Quitting: stop the session, leave it running, or cancel."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label


class QuitScreen(ModalScreen[str]):
    """Dismisses with "stop", "leave" or "cancel"."""

    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    #quit { width: 60; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    """
    BINDINGS = [
        Binding("s", "choose('stop')", "stop the session", id="quit.stop"),
        Binding("l", "choose('leave')", "leave it running", id="quit.leave"),
        Binding("c,escape", "choose('cancel')", "cancel", id="quit.cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="quit"):
            yield Label("Quit the console?")
            yield Label("[b]s[/b] stop the session   [b]l[/b] leave it running   [b]c[/b]/esc cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
