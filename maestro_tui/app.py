"""The supervision console: one App around a session screen (maestro_tui.screens.session).

The App holds what is the console's, whatever session it shows: its themes, the keymap,
quitting, the help, screenshots (into the session's folder), and toasts that show their
text as data. `console()` builds it for a session folder, live, read-only or a replay.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from engine.text import visible
from maestro_tui.commands import SessionCommands
from maestro_tui.feed import Feed
from maestro_tui.screens.quit import QuitScreen
from maestro_tui.screens.session import SessionScreen
from themes import DEFAULT_THEME, THEMES

SCREENSHOTS = "screenshots"  # in the session's folder


class MaestroApp(App):
    """The console for the session `feed` reads."""

    COMMANDS = App.COMMANDS | {SessionCommands}
    BINDINGS = [
        Binding("q", "quit_dialog", "quit", id="app.quit"),
        # Ctrl+C and Ctrl+Q mean what q means (Textual's own: a hint, and a quit without the choice)
        Binding("ctrl+q", "quit_dialog", "quit", show=False, priority=True, id="app.quit_ctrl_q"),
        Binding("ctrl+c", "quit_dialog", "quit (copies selected text instead)", show=False, priority=True,
                id="app.quit_ctrl_c"),
        Binding("question_mark", "help", "keys", id="app.help"),
        Binding("t", "next_theme", "theme", show=False, id="app.theme"),
    ]

    def __init__(self, feed: Feed, *, keymap: dict[str, str] | None = None, bell: bool = False,
                 theme: str | None = None) -> None:
        super().__init__()
        self.feed = feed
        self.bell_on_plan = bell
        self.keymap_ids = dict(keymap or {})
        self._theme_name = theme
        self.last_input = -1e9  # when (time.monotonic) a key was last pressed or the mouse last clicked or scrolled

    def get_default_screen(self) -> Screen:
        return SessionScreen(self.feed)

    @property
    def session(self) -> SessionScreen:
        """The session screen (under any modal on top of it)."""
        screen = self.screen_stack[0] if self.screen_stack else None
        assert isinstance(screen, SessionScreen)
        return screen

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = self._theme_name or DEFAULT_THEME
        if self.keymap_ids:
            self.set_keymap(self.keymap_ids)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp)):
            self.last_input = time.monotonic()
        await super().on_event(event)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every toast shows its text as data: made visible, never read as markup (whatever the caller asked)."""
        super().notify(visible(message), title=visible(title, one_line=True), severity=severity, timeout=timeout,
                       markup=False)

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        """Save the screen as SVG into the session's folder (`screenshots/`), and say where; a folder that cannot be
        written is said, not raised."""
        folder = Path(path) if path else self.feed.root / SCREENSHOTS
        name = filename or f"{dt.datetime.now():%Y%m%d-%H%M%S}.svg"
        try:
            folder.mkdir(exist_ok=True)
            saved = self.save_screenshot(name, str(folder))
        except OSError as err:
            self.notify(f"screenshot not saved: {err}", severity="error", timeout=10)
            return None
        self.notify(f"screenshot saved: {saved}", timeout=10)
        return saved

    def action_next_theme(self) -> None:
        names = [t.name for t in THEMES] + ["ansi-dark", "ansi-light", "textual-dark"]
        current = self.theme if self.theme in names else names[-1]
        self.theme = names[(names.index(current) + 1) % len(names)]
        self.notify(f"theme: {self.theme}")

    def action_help(self) -> None:
        from maestro_tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self))

    def action_quit_dialog(self) -> None:
        if isinstance(self.screen, QuitScreen):
            return  # already asking
        selected = self.screen.get_selected_text()
        if selected:  # Ctrl+C on text selected with the mouse copies it, as everywhere
            self.copy_to_clipboard(selected)
            return
        session = self.session

        def chosen(choice: str | None) -> None:
            if choice == "stop":
                session.stop_conductor()
                self.exit(result="stop")
            elif choice in ("leave", "quit"):
                self.exit(result=choice)

        self.push_screen(QuitScreen(live=session.session_live()), chosen)


def console(root: Path, *, read_only: bool = False, replay: bool = False, **kw) -> MaestroApp:
    """The console on the session folder `root`: live (this console steers), read-only, or a replay of it."""
    from maestro_tui.ingest import SessionFeed
    from maestro_tui.replay import ReplayFeed

    feed: Feed = ReplayFeed(Path(root)) if replay else SessionFeed(Path(root), read_only=read_only)
    return MaestroApp(feed, **kw)
