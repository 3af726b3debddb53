"""Quitting: a live session offers stop / leave it running / cancel; anything else (a finished
session, a replay, a read-only attach) offers quit / cancel, with no "stop" that stops nothing."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

LIVE_CHOICES = [
    Binding("s", "choose('stop')", "stop the session", id="quit.stop"),
    Binding("l", "choose('leave')", "leave it running", id="quit.leave"),
    Binding("c,escape", "choose('cancel')", "cancel", id="quit.cancel"),
]
DONE_CHOICES = [
    Binding("q,enter", "choose('quit')", "quit", id="quit.quit"),
    Binding("c,escape", "choose('cancel')", "cancel", id="quit.cancel"),
]


def choices(live: bool) -> list[Binding]:
    """The dialog's keys: LIVE_CHOICES for a session whose conductor this console can stop, else DONE_CHOICES."""
    return LIVE_CHOICES if live else DONE_CHOICES


class QuitScreen(ModalScreen[str]):
    """Dismisses with "stop", "leave" (it running), "quit" (a session that does not run) or "cancel"."""

    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    #quit { width: 60; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    """
    BINDINGS = LIVE_CHOICES + DONE_CHOICES  # every key of either dialog: only this one's choices act (check_action)

    def __init__(self, live: bool = True) -> None:
        super().__init__()
        self.live = live

    def compose(self) -> ComposeResult:
        with Vertical(id="quit"):
            yield Label("Quit the console?" if self.live else "Quit the console? (the session is left as it is)")
            yield Label("   ".join(f"[b]{'/'.join(self.app.get_key_display(Binding(k, '')) for k in b.key.split(','))}"
                                   f"[/b] {b.description}" for b in choices(self.live)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose":
            return any(b.action == f"choose({parameters[0]!r})" for b in choices(self.live))
        return True

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
