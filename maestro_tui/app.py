"""The supervision console: live panes over a session directory, keyboard approval.

Everything shown comes from the session's files (maestro_tui.ingest → state.SessionView);
every decision goes into decisions.jsonl and is shown as done only when the conductor's
files say it was applied.
"""

from __future__ import annotations

import getpass
import os
import signal
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widgets import DataTable, Footer

from agents.approval import DecisionError, record_decision, research_in_force
from engine.params import Params
from engine.text import visible
from maestro_tui.commands import SessionCommands
from maestro_tui.ingest import SessionFeed
from maestro_tui.screens.quit import QuitScreen
from maestro_tui.screens.review import ReviewScreen
from maestro_tui.state import SessionView
from maestro_tui.widgets.panes import (
    AllocationTable,
    Conversation,
    EpisodesTable,
    EquityPlot,
    LeaderboardTable,
    Pane,
    PlansTable,
    TargetsPanel,
)
from maestro_tui.widgets.status import StatusBar
from themes import DEFAULT_THEME, THEMES

PANES = ("plans", "episodes", "leaderboard", "allocation", "targets", "equity", "conversation")
DRAIN_PER_TICK = 400  # items folded into the view per tick: bounded work per frame
TICK_S = 0.2  # 5 Hz


class MaestroApp(App):
    """The console for one session directory."""

    COMMANDS = App.COMMANDS | {SessionCommands}
    CSS = """
    Screen { layout: vertical; }
    #grid { grid-size: 3 3; grid-columns: 1fr 1fr 1fr; grid-rows: 1fr 1fr 1fr; height: 1fr; }
    #pane-conversation { column-span: 3; }
    #grid.narrow, #grid.maximized { grid-size: 1 1; grid-columns: 1fr; grid-rows: 1fr; }
    #grid.narrow #pane-conversation, #grid.maximized #pane-conversation { column-span: 1; }
    DataTable { height: 1fr; }
    """
    BINDINGS = [
        Binding("q", "quit_dialog", "quit", id="app.quit"),
        # Ctrl+C and Ctrl+Q mean what q means (Textual's own: a hint, and a quit without the choice)
        Binding("ctrl+q", "quit_dialog", "quit", show=False, priority=True, id="app.quit_ctrl_q"),
        Binding("ctrl+c", "quit_dialog", "quit (copies selected text instead)", show=False, priority=True,
                id="app.quit_ctrl_c"),
        Binding("question_mark", "help", "keys", id="app.help"),
        Binding("s", "sort", "sort", id="leaderboard.sort"),
        Binding("S", "reverse_sort", "reverse sort", show=False, id="leaderboard.reverse"),
        Binding("f", "filter", "filter method", id="leaderboard.filter"),
        Binding("y", "copy", "copy JSON", id="app.copy"),
        Binding("p", "pause", "pause/resume", id="app.pause"),
        Binding("z", "maximize", "maximise/restore pane", show=False, id="pane.maximize"),
        Binding("t", "next_theme", "theme", show=False, id="app.theme"),
        Binding("R", "resume", "resume a dead session", show=False, id="app.resume"),
        Binding("c", "conversation_json", "message JSON", show=False, id="conversation.json"),
        Binding("j", "cursor('down')", "cursor down", show=False, id="nav.down"),
        Binding("k", "cursor('up')", "cursor up", show=False, id="nav.up"),
        Binding("h", "pane(-1)", "previous pane", show=False, id="nav.left"),
        Binding("l", "pane(1)", "next pane", show=False, id="nav.right"),
        *[Binding(str(i + 1), f"show_pane('{name}')", f"{'agents' if name == 'conversation' else name} pane", show=False, id=f"pane.{name}")
          for i, name in enumerate(PANES)],
    ]

    def __init__(self, session_root: Path, *, read_only: bool = False, keymap: dict[str, str] | None = None,
                 bell: bool = False, theme: str | None = None) -> None:
        super().__init__()
        self.session_root = Path(session_root)
        self.read_only = read_only
        self.view = SessionView()
        self.feed = SessionFeed(self.session_root)
        self.bell_on_plan = bell
        self._keymap = keymap or {}
        self._theme_name = theme
        self._drawn = -1
        self._known_status: dict[str, str] = {}
        self._dead_notified = False
        self._bad_told = 0  # unreadable lines already notified
        self.current_pane = 0

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Grid(id="grid"):
            yield Pane("1 plans", PlansTable(id="plans"), id="pane-plans")
            yield Pane("2 episodes", EpisodesTable(id="episodes"), id="pane-episodes")
            yield Pane("3 leaderboard · by score ↓", LeaderboardTable(id="leaderboard"), id="pane-leaderboard")
            yield Pane("4 allocation", AllocationTable(id="allocation"), id="pane-allocation")
            yield Pane("5 targets", TargetsPanel(id="targets"), id="pane-targets")
            yield Pane("6 equity", EquityPlot(id="equity"), id="pane-equity")
            yield Pane("7 agents", Conversation(id="conversation", max_lines=2000), id="pane-conversation")
        yield Footer()

    def on_mount(self) -> None:
        # widgets held by reference: while a modal is up, App.query_one looks at the modal
        self.w_status = self.query_one(StatusBar)
        self.w_status.session_name = self.session_root.resolve().name
        self.w_plans = self.query_one(PlansTable)
        self.w_episodes = self.query_one(EpisodesTable)
        self.w_board = self.query_one(LeaderboardTable)
        self.w_allocation = self.query_one(AllocationTable)
        self.w_targets = self.query_one(TargetsPanel)
        self.w_equity = self.query_one(EquityPlot)
        self.w_conversation = self.query_one(Conversation)
        self.w_grid = self.query_one("#grid")
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = self._theme_name or DEFAULT_THEME
        if self._keymap:
            self.set_keymap(self._keymap)
        self.feed.start()
        self.set_interval(TICK_S, self.tick)
        self._layout_for(self.size.width)
        self.w_plans.focus()
        self.tick()

    def on_resize(self, event) -> None:
        if hasattr(self, "w_grid"):
            self._layout_for(event.size.width)

    def _layout_for(self, width: int) -> None:
        narrow = width < 120
        self.w_grid.set_class(narrow, "narrow")
        one = narrow or self.w_grid.has_class("maximized")  # one pane on screen: the current one
        for i, name in enumerate(PANES):
            self.w_grid.query_one(f"#pane-{name}").set_class(one and i != self.current_pane, "hidden")

    def on_descendant_focus(self, event) -> None:
        """Focus moved (h/l, a digit, Tab, a click): h and l go on from the pane it is in."""
        for i, name in enumerate(PANES):
            if event.widget.id == name:
                self.current_pane = i

    # ------------------------------------------------------------ ingestion

    def tick(self) -> None:
        """Fold a capped batch of new items into the view, then redraw what changed."""
        self.fold(self.feed.drain(DRAIN_PER_TICK))
        if self.view.version == self._drawn:
            self.w_status.refresh_from(self.view, self.read_only)  # rate and ETA move anyway
            return
        self._drawn = self.view.version
        with self.batch_update():
            self.redraw()
        self._announce()

    def fold(self, items: list) -> None:
        for item in items:
            self.view.apply(item)

    def redraw(self) -> None:
        v = self.view
        self.w_status.refresh_from(v, self.read_only)
        self.w_plans.show(v)
        self.w_episodes.show(v, v.session_config.targets)
        self.w_board.show(v)
        self.w_allocation.show(v)
        self.w_targets.show(v)
        self.w_equity.show(v, self.w_board.selected_config())
        self.w_conversation.show_new(v)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every toast shows its text as data: made visible, never read as markup (whatever the caller asked)."""
        super().notify(visible(message), title=visible(title, one_line=True), severity=severity, timeout=timeout,
                       markup=False)

    def _announce(self) -> None:
        """Notify new plans and the conductor's verdict on decisions; say so if the conductor died."""
        for plan_id, plan in self.view.plans.items():
            before = self._known_status.get(plan_id)
            status = plan.status
            if before == status:
                continue
            self._known_status[plan_id] = status
            if status == "pending" and before is None:
                self.notify(f"new plan {plan_id}: {', '.join(f'{k} {v}' for k, v in plan.change.items())}",
                            title="plan pending", timeout=6)
                if self.bell_on_plan:
                    self.bell()
            elif before == "pending" and status in ("applied", "edited", "vetoed", "expired"):
                applied = self.view.applied.get(plan_id)
                test = applied.details.get("from_test") if applied else None  # details are free-form: may lack it
                where = f" from {test}" if test else ""
                self.notify(f"{plan_id} {status}{where}", title="conductor")
        if self.view.bad_lines > self._bad_told:
            new = self.view.bad_lines - self._bad_told
            self._bad_told = self.view.bad_lines
            last = self.view.bad_details[-1] if self.view.bad_details else ""
            self.notify(f"skipped {new} unreadable line{'s' if new > 1 else ''} (counted in the status bar); last: {last}",
                        severity="warning", timeout=10)
        if self.w_status.dead and not self._dead_notified:
            self._dead_notified = True
            self.notify(f"the conductor died: see {self.session_root / 'conductor.log'}. Press R (or Ctrl+P "
                        f"'resume') to resume, or run `maestro-tui run --resume {self.session_root}`",
                        severity="error", timeout=60)

    # ------------------------------------------------------------ plans

    @on(PlansTable.Review)
    def review(self, message: PlansTable.Review) -> None:
        self.open_review(message.plan_id)

    def open_review(self, plan_id: str) -> None:
        """The review modal for any plan: a pending one can be decided there, a settled one is shown as it ended."""
        v = self.view
        plan = v.plans[plan_id]
        self.push_screen(ReviewScreen(
            plan, v.reasoning_of(plan_id), self.read_only,
            proposed=v.proposals.get(plan_id), earlier=v.earlier_plans_on(plan_id),
            in_force=self._research_in_force() if plan.status == "pending" else None,
            targets=v.session_config.targets,
        ))

    def _research_in_force(self) -> Params | None:
        """The params the next test would run with, from the session's files; None when they cannot say.

        A replay's view is behind its files (they hold the end of the session): it says none (ReplayApp).
        """
        try:
            return research_in_force(self.session_root)
        except (DecisionError, OSError, ValueError):
            return None

    @on(ReviewScreen.Decided)
    def decided(self, message: ReviewScreen.Decided) -> None:
        self.send_decision(message.plan_id, message.decision, message.values)

    @work(thread=True, exit_on_error=False, group="decisions")
    def send_decision(self, plan_id: str, decision: str, values: dict[str, str]) -> None:
        """Append the decision (file lock) off the UI thread; the outcome shows when the conductor writes it."""
        try:
            record_decision(self.session_root, plan_id, decision, values,
                            by=f"{getpass.getuser()}@{os.uname().nodename}", note="from the console")
        except DecisionError as err:
            self.call_from_thread(self.notify, str(err), severity="error", title=f"{plan_id} not decided")
            return
        self.call_from_thread(self.notify, f"{decision} sent; waiting for the conductor", title=plan_id)

    # ------------------------------------------------------------ other keys

    def action_sort(self) -> None:
        """Sort the leaderboard by its next column, best first (the pane's title says by what)."""
        self.w_board.next_sort()
        self._board_changed()

    def action_reverse_sort(self) -> None:
        """Reverse the leaderboard's order: worst first, or back to best first."""
        self.w_board.sort_reverse = not self.w_board.sort_reverse
        self._board_changed()

    def _board_changed(self) -> None:
        board = self.w_board
        board.show(self.view)
        if board.parent is not None and board.parent.has_class("hidden"):  # a narrow screen: the title is not in sight
            self.notify(f"leaderboard {board.sort_title()}")

    def action_filter(self) -> None:
        board = self.w_board
        filters = (None, *self.view.session_config.methods)  # the filter cycles through the session's strategies
        at = filters.index(board.method_filter) if board.method_filter in filters else -1
        board.method_filter = filters[(at + 1) % len(filters)]
        self._board_changed()

    def action_copy(self) -> None:
        """Copy the selected plan (plans pane) or config (elsewhere) as JSON, through OSC 52."""
        import json

        if self.focused is self.w_plans:
            plan = self.view.plans.get(self.w_plans.selected_plan())
            text = json.dumps(plan.model_dump() if plan else {})  # the plan's latest line
        else:
            config_id = self.w_board.selected_config()
            match = next((s for s in self.view.standings() if s.config_id == config_id), None)
            text = match.params_json if match else "{}"
        self.copy_to_clipboard(text)
        self.notify("copied as JSON (OSC 52)")

    def action_conversation_json(self) -> None:
        self.notify(self.w_conversation.full_json(self.view)[:1500] or "no message yet", timeout=12)

    def action_cursor(self, direction: str) -> None:
        if isinstance(self.focused, DataTable):
            getattr(self.focused, f"action_cursor_{direction}")()

    def action_pane(self, step: int) -> None:
        self.action_show_pane(PANES[(self.current_pane + step) % len(PANES)])

    def action_show_pane(self, name: str) -> None:
        self.current_pane = PANES.index(name)
        self._layout_for(self.size.width)
        self.w_grid.query_one(f"#{name}").focus()  # every pane's widget takes focus: its frame shows where keys go

    def action_maximize(self) -> None:
        """The current pane over the whole grid, or back to all of them; the status line stays."""
        self.w_grid.toggle_class("maximized")
        self._layout_for(self.size.width)

    def action_pause(self) -> None:
        """Pause or resume starting new tests (SIGUSR1 to the conductor; tests running finish)."""
        pid = self.view.conductor_status.pid
        if self.read_only or not pid:
            self.notify("read-only attach: cannot pause" if self.read_only else "no conductor", severity="error")
            return
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            self.notify("the conductor is not running", severity="error")
            return
        self.notify("pause/resume sent; the status bar shows when the conductor has done it")

    def action_resume(self) -> None:
        """Start a new conductor on this session when the old one died."""
        if self.read_only or not self.w_status.dead:
            self.notify("the conductor is alive" if not self.w_status.dead else "read-only attach", severity="warning")
            return
        from maestro_tui.conductor_process import start_conductor

        start_conductor(self.session_root)
        self._dead_notified = False
        self.notify("resuming: a new conductor picks up where the last one stopped")

    def action_next_theme(self) -> None:
        names = [t.name for t in THEMES] + ["ansi-dark", "ansi-light", "textual-dark"]
        current = self.theme if self.theme in names else names[-1]
        self.theme = names[(names.index(current) + 1) % len(names)]
        self.notify(f"theme: {self.theme}")

    def action_help(self) -> None:
        from maestro_tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self))

    def session_live(self) -> bool:
        """Whether quitting can mean stopping: a conductor that runs, and a console allowed to stop it."""
        c = self.view.conductor_status
        return not self.read_only and c.state not in ("finished", "failed", "stopped", "replay") and c.alive()

    def action_quit_dialog(self) -> None:
        if isinstance(self.screen, QuitScreen):
            return  # already asking
        selected = self.screen.get_selected_text()
        if selected:  # Ctrl+C on text selected with the mouse copies it, as everywhere
            self.copy_to_clipboard(selected)
            return

        def chosen(choice: str | None) -> None:
            if choice == "stop":
                self.stop_conductor()
                self.exit(result="stop")
            elif choice in ("leave", "quit"):
                self.exit(result=choice)

        self.push_screen(QuitScreen(live=self.session_live()), chosen)

    def stop_conductor(self) -> None:
        """SIGTERM the conductor (it stops after the tests already running)."""
        pid = self.view.conductor_status.pid
        if pid and not self.read_only:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def on_unmount(self) -> None:
        self.feed.stop()
