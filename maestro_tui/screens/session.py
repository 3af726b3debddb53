"""The session screen: the live panes over a session, fed by a Feed (maestro_tui.feed).

The same screen shows a session steered from here (live), one steered elsewhere
(read-only) and one past (replay); only the feed differs. Everything shown comes from the
session's files through the feed and a SessionView; every decision goes into
decisions.jsonl and is shown as done only when the conductor's files say it was applied.

The keys of every mode are in one list (`BINDINGS`), each marked by the modes it acts in
(`acts_in`): the help screen and the footer show them from there.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import DataTable, Footer
from textual.worker import Worker, WorkerState

from agents.approval import DecisionError, record_decision, research_in_force
from engine.params import Params
from engine.session import ENDED_STATES
from maestro_tui.feed import Batch, Feed, Mode
from maestro_tui.heap import Heap
from maestro_tui.replay import ReplayFeed
from maestro_tui.screens.failure import FailureScreen
from maestro_tui.screens.message import MessageScreen
from maestro_tui.screens.review import Decision, ReviewScreen
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
from maestro_tui.widgets.timeline import TimelineBar

PANES = ("plans", "episodes", "leaderboard", "allocation", "targets", "equity", "conversation")
DRAIN_PER_TICK = 400  # items folded into the view per tick: bounded work per frame
TICK_S = 0.2  # 5 Hz
HOLD_S = 0.5  # panes hold still this long after a key or a click, so the rows do not move under the cursor...
HOLD_MAX_S = 3.0  # ...but never show what they show for longer than this while new data waits
IDLE_S = 2.0  # no key nor click for this long: a full garbage collection's pause goes unnoticed (see heap)

# what acts where: a key whose action is in neither set acts in every mode
REPLAY_ACTIONS = frozenset({"play", "speed", "jump", "seek_to"})
SESSION_ACTIONS = frozenset({"pause", "resume"})  # a session that runs (or ran, and may resume): not a replay
# keys that steer: in a read-only attach or a replay they say they cannot, and the help leaves them out
STEERING = frozenset({"app.pause", "app.resume", "plans.approve", "plans.edit", "plans.veto", "review.approve",
                      "review.edit", "review.veto"})


def acts_in(action: str, mode: Mode) -> bool:
    """Whether a key bound to `action` (its name, arguments aside) acts on a screen in `mode`."""
    name = action.split("(")[0].rsplit(".", 1)[-1]
    if name in REPLAY_ACTIONS:
        return mode == "replay"
    if name in SESSION_ACTIONS:
        return mode != "replay"
    return True


class SessionScreen(Screen):
    """The panes of one session, fed by `feed`."""

    DEFAULT_CSS = """
    SessionScreen { layout: vertical; }
    SessionScreen #grid { grid-size: 3 3; grid-columns: 1fr 1fr 1fr; grid-rows: 1fr 1fr 1fr; height: 1fr; }
    SessionScreen #pane-conversation { column-span: 3; }
    SessionScreen #grid.narrow, SessionScreen #grid.maximized { grid-size: 1 1; grid-columns: 1fr; grid-rows: 1fr; }
    SessionScreen #grid.narrow #pane-conversation, SessionScreen #grid.maximized #pane-conversation { column-span: 1; }
    SessionScreen DataTable { height: 1fr; }
    """
    BINDINGS = [
        Binding("s", "sort", "sort", id="leaderboard.sort"),
        Binding("S", "reverse_sort", "reverse sort", show=False, id="leaderboard.reverse"),
        Binding("f", "filter", "filter method", id="leaderboard.filter"),
        Binding("y", "copy", "copy JSON", id="app.copy"),
        Binding("p", "pause", "pause/resume", id="app.pause"),
        Binding("z", "maximize", "maximise/restore pane", show=False, id="pane.maximize"),
        Binding("R", "resume", "resume a dead session", show=False, id="app.resume"),
        Binding("c", "message", "agent message", show=False, id="conversation.json"),
        Binding("j", "cursor('down')", "cursor down", show=False, id="nav.down"),
        Binding("k", "cursor('up')", "cursor up", show=False, id="nav.up"),
        Binding("h", "pane(-1)", "previous pane", show=False, id="nav.left"),
        Binding("l", "pane(1)", "next pane", show=False, id="nav.right"),
        *[Binding(str(i + 1), f"show_pane('{name}')", f"{'agents' if name == 'conversation' else name} pane",
                  show=False, id=f"pane.{name}")
          for i, name in enumerate(PANES)],
        # a replay's: the timeline
        Binding("space", "play", "play/pause", id="replay.play"),
        Binding("p", "play", "play/pause", show=False, id="replay.pause"),  # the console's pause key plays and pauses
        Binding("plus", "speed(1)", "faster", id="replay.faster"),
        Binding("minus", "speed(-1)", "slower", id="replay.slower"),
        Binding("right_square_bracket", "jump('plan', 1)", "next plan", id="replay.next_plan"),
        Binding("left_square_bracket", "jump('plan', -1)", "previous plan", id="replay.prev_plan"),
        Binding("right_curly_bracket", "jump('segment', 1)", "next segment", id="replay.next_segment"),
        Binding("left_curly_bracket", "jump('segment', -1)", "previous segment", id="replay.prev_segment"),
        Binding("g", "seek_to(0)", "start", id="replay.start"),
        Binding("G", "seek_to(-1)", "end", id="replay.end"),
    ]

    def __init__(self, feed: Feed) -> None:
        super().__init__()
        self.feed = feed
        self.view: SessionView = feed.new_view()
        self._drawn = -1
        self._drawn_at = 0.0  # when (time.monotonic) the panes were last redrawn
        self._status_at = 0.0  # when (time.monotonic) the status bar alone was last refreshed
        self.heap = Heap()
        self._known_status: dict[str, str] = {}
        self._dead_notified = False
        self._failures_shown: set[str] = set()
        self._bad_told = 0  # unreadable lines already notified
        self.current_pane = 0
        self._session_ran: bool | None = None  # whether the session ran at the last redraw (see check_action)

    @property
    def mode(self) -> Mode:
        return self.feed.mode

    @property
    def read_only(self) -> bool:
        """Whether this console may not steer: a read-only attach or a replay."""
        return self.mode != "live"

    @property
    def replay(self) -> ReplayFeed:
        """The feed, as the replay it is (only the replay's keys ask, and they act only in a replay)."""
        assert isinstance(self.feed, ReplayFeed)
        return self.feed

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A key acts only in the modes it is for (`acts_in`); out of them it is hidden, and the next binding of
        the same key (`p`: pause live, play in a replay) has its turn. Pause is greyed out (None) where the
        session no longer runs: a finished, failed or stopped one."""
        if not acts_in(action, self.mode):
            return False
        if action == "pause" and self.mode == "live" and hasattr(self, "w_status") and not self.session_live():
            return None
        return True

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
        if self.mode == "replay":
            yield TimelineBar(id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        # widgets held by reference: while a modal is up, App.query_one looks at the modal
        self.w_status = self.query_one(StatusBar)
        self.w_status.session_name = self.feed.root.resolve().name
        self.w_plans = self.query_one(PlansTable)
        self.w_episodes = self.query_one(EpisodesTable)
        self.w_board = self.query_one(LeaderboardTable)
        self.w_allocation = self.query_one(AllocationTable)
        self.w_targets = self.query_one(TargetsPanel)
        self.w_equity = self.query_one(EquityPlot)
        self.w_conversation = self.query_one(Conversation)
        self.w_grid = self.query_one("#grid")
        self.w_timeline = self.query_one(TimelineBar) if self.mode == "replay" else None
        self.feed.start()
        self.set_interval(TICK_S, self.tick)
        self._layout_for(self.app.size.width)
        self.w_plans.focus()
        self.tick()
        self.heap.settle()
        if self.mode == "replay":
            self.app.notify("at the end of the session: g for its start, space to play, ] and [ for plans and "
                            "decisions, } and { for segments",
                            title=f"replay of a {self.replay.recorded} session", timeout=8)

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

    @on(DataTable.RowHighlighted, "#leaderboard")
    def board_cursor_moved(self) -> None:
        """The equity pane shows the leaderboard's selected config, wherever the cursor goes (a replay, a finished
        session: nothing else would redraw it)."""
        if hasattr(self, "w_equity"):
            self.w_equity.show(self.view, self.w_board.selected_config())

    # ------------------------------------------------------------ ingestion

    def tick(self, asked: bool = False) -> None:
        """Fold what the feed has for this tick into the view, then redraw what changed.

        While keys are pressed, the panes hold still (HOLD_S, at most HOLD_MAX_S): rows that move under the
        cursor lose the person's place, and a redraw in the way of a key delays its frame. `asked`: the
        person asked for this change (a replay played, paused or moved in time): shown at once.
        """
        try:
            batch = self.feed.take(DRAIN_PER_TICK)
        except Exception as err:  # noqa: BLE001 - a feed that breaks is shown, and the console stays
            self._failed("the session's files could not be read", f"{type(err).__name__}: {err}")
            batch = Batch()
        if batch.restart:
            self.view = self.feed.new_view()
            self.w_conversation.restart()
        folded = self.view.version
        self.feed.fold(self.view, batch.items)
        if batch.past:
            self._known_status = {pid: p.status for pid, p in self.view.plans.items()}  # no toasts for the past
            self._drawn = -1
        if self.feed.failure:
            self._failed("the session's files are no longer read", self.feed.failure)
        status = self.feed.status(self.view)
        now = time.monotonic()
        held = (not asked and now - getattr(self.app, "last_input", -HOLD_S) < HOLD_S
                and now - self._drawn_at < HOLD_MAX_S and not batch.restart and not batch.past)
        if self.view.version == self._drawn or held:
            # rate and ETA move anyway; while keys are pressed, once a second (every frame drawn for anything
            # else delays the next by up to two frame periods: textual's screen timer skips to the period after next)
            if not held or now - self._status_at >= 1.0:
                self._status_at = now
                self.w_status.refresh_from(self.view, self.mode, status)
        else:
            self._drawn, self._drawn_at = self.view.version, now
            with self.app.batch_update():
                self.redraw(status)
            self._announce()
        if self.w_timeline is not None:
            self.w_timeline.show(self.replay)
        if self.heap.reclaim_due() and now - getattr(self.app, "last_input", -IDLE_S) >= IDLE_S:
            self.heap.reclaim()
        elif self.view.version != folded or batch.restart:
            self.heap.fold_in()  # what this tick folded lives on: kept out of the collector's walks

    def redraw(self, status) -> None:
        v = self.view
        self.w_status.refresh_from(v, self.mode, status)
        self.w_plans.show(v)
        self.w_episodes.show(v, v.session_config.targets)
        self.w_board.show(v)
        self.w_allocation.show(v)
        self.w_targets.show(v)
        self.w_equity.show(v, self.w_board.selected_config())
        self.w_conversation.show_new(v)
        running = self.session_live()
        if running != self._session_ran:  # the footer greys out pause when the session stops running
            if self._session_ran is not None:  # the first redraw is the mount's: the footer reads it when it first shows
                self.refresh_bindings()
            self._session_ran = running
        for screen in self.app.screen_stack:
            if isinstance(screen, ReviewScreen) and screen.plan.plan_id in v.plans:
                plan_id = screen.plan.plan_id
                by = next((d.by for d in reversed(v.decisions) if d.plan_id == plan_id), None)
                screen.follow(v.plans[plan_id], by)

    def _failed(self, title: str, reason: str) -> None:
        """Show a failure once, in a dialog over the console (which keeps what it shows, and its keys)."""
        if reason in self._failures_shown:
            return
        self._failures_shown.add(reason)
        consequence = ("The panes keep what they show; nothing more arrives. Quit and attach again to read on."
                       if "read" in title else "The console goes on; what failed has not happened.")
        self.app.push_screen(FailureScreen(title, reason, consequence))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A background job that broke (sending a decision): its reason on screen, never dropped."""
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self._failed(f"{event.worker.name or 'a background job'} failed", f"{type(err).__name__}: {err}")

    def _announce(self) -> None:
        """Notify new plans and the conductor's verdict on decisions; say so if the conductor died."""
        notify = self.app.notify
        for plan_id, plan in self.view.plans.items():
            before = self._known_status.get(plan_id)
            status = plan.status
            if before == status:
                continue
            self._known_status[plan_id] = status
            if status == "pending" and before is None:
                notify(f"new plan {plan_id}: {', '.join(f'{k} {v}' for k, v in plan.change.items())}",
                       title="plan pending", timeout=6)
                if getattr(self.app, "bell_on_plan", False):
                    self.app.bell()
            elif before == "pending" and status in ("applied", "edited", "vetoed", "expired"):
                applied = self.view.applied.get(plan_id)
                test = applied.details.get("from_test") if applied else None  # details are free-form: may lack it
                where = f" from {test}" if test else ""
                notify(f"{plan_id} {status}{where}", title="conductor")
        if self.view.bad_lines > self._bad_told:
            new = self.view.bad_lines - self._bad_told
            self._bad_told = self.view.bad_lines
            last = self.view.bad_details[-1] if self.view.bad_details else ""
            notify(f"skipped {new} unreadable line{'s' if new > 1 else ''} (counted in the status bar); last: {last}",
                   severity="warning", timeout=10)
        if self.w_status.dead and not self._dead_notified:
            self._dead_notified = True
            root = self.feed.root
            notify(f"the conductor died: see {root / 'conductor.log'}. Press R (or Ctrl+P 'resume') to resume, "
                   f"or run `maestro-tui run --resume {root}`", severity="error", timeout=60)

    # ------------------------------------------------------------ plans

    @on(PlansTable.Review)
    def review(self, message: PlansTable.Review) -> None:
        self.open_review(message.plan_id)

    def open_review(self, plan_id: str) -> None:
        """The review modal for any plan: a pending one can be decided there, a settled one is shown as it ended."""
        v = self.view
        plan = v.plans[plan_id]
        self.app.push_screen(ReviewScreen(
            plan, v.reasoning_of(plan_id), self.read_only,
            proposed=v.proposals.get(plan_id), earlier=v.earlier_plans_on(plan_id),
            in_force=self._research_in_force() if plan.status == "pending" else None,
            targets=v.session_config.targets,
        ), self.decided)

    def _research_in_force(self) -> Params | None:
        """The params the next test would run with, from the session's files; None when they cannot say.

        A replay's view is behind its files (they hold the end of the session): none.
        """
        if self.mode == "replay":
            return None
        try:
            return research_in_force(self.feed.root)
        except (DecisionError, OSError, ValueError):
            return None

    def decided(self, decision: Decision | None) -> None:
        """What the review was closed with: a decision to send, or none."""
        if decision is not None:
            self.send_decision(decision.plan_id, decision.decision, decision.values)

    @work(thread=True, exit_on_error=False, group="decisions", name="sending the decision")
    def send_decision(self, plan_id: str, decision: str, values: dict[str, str]) -> None:
        """Append the decision (file lock) off the UI thread; the outcome shows when the conductor writes it.

        A refusal or a file that cannot be written is a toast naming the plan; anything else ends the
        worker in error, which on_worker_state_changed shows.
        """
        try:
            record_decision(self.feed.root, plan_id, decision, values,
                            by=f"{getpass.getuser()}@{os.uname().nodename}", note="from the console")
        except (DecisionError, OSError) as err:
            self.app.call_from_thread(self.app.notify, str(err), severity="error", title=f"{plan_id} not decided")
            return
        self.app.call_from_thread(self.app.notify, f"{decision} sent; waiting for the conductor", title=plan_id)

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
            self.app.notify(f"leaderboard {board.sort_title()}")

    def action_filter(self) -> None:
        board = self.w_board
        filters = (None, *self.view.session_config.methods)  # the filter cycles through the session's strategies
        at = filters.index(board.method_filter) if board.method_filter in filters else -1
        board.method_filter = filters[(at + 1) % len(filters)]
        self._board_changed()

    def action_copy(self) -> None:
        """Copy the selected plan (plans pane) or config (elsewhere) as JSON, through OSC 52."""
        if self.focused is self.w_plans:
            plan = self.view.plans.get(self.w_plans.selected_plan() or "")
            text = json.dumps(plan.model_dump() if plan else {})  # the plan's latest line
        else:
            config_id = self.w_board.selected_config()
            match = next((s for s in self.view.standings() if s.config_id == config_id), None)
            text = match.params_json if match else "{}"
        self.app.copy_to_clipboard(text)
        self.app.notify("copied as JSON (OSC 52)")

    def action_message(self) -> None:
        """The agents' messages whole, newest first, in readable words."""
        self.app.push_screen(MessageScreen(list(self.view.conversation[-200:])))

    def action_cursor(self, direction: str) -> None:
        if isinstance(self.focused, DataTable):
            getattr(self.focused, f"action_cursor_{direction}")()

    def action_pane(self, step: int) -> None:
        self.action_show_pane(PANES[(self.current_pane + step) % len(PANES)])

    def action_show_pane(self, name: str) -> None:
        self.current_pane = PANES.index(name)
        self._layout_for(self.app.size.width)
        self.w_grid.query_one(f"#{name}").focus()  # every pane's widget takes focus: its frame shows where keys go

    def action_maximize(self) -> None:
        """The current pane over the whole grid, or back to all of them; the status line stays."""
        self.w_grid.toggle_class("maximized")
        self._layout_for(self.app.size.width)

    def action_pause(self) -> None:
        """Pause or resume starting new tests (SIGUSR1 to the conductor; tests running finish)."""
        pid = self.view.conductor_status.pid
        if self.read_only or not pid:
            self.app.notify("read-only attach: cannot pause" if self.read_only else "no conductor", severity="error")
            return
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            self.app.notify("the conductor is not running", severity="error")
            return
        self.app.notify("pause/resume sent; the status bar shows when the conductor has done it")

    def action_resume(self) -> None:
        """Start a new conductor on this session when the old one died."""
        if self.read_only or not self.w_status.dead:
            self.app.notify("the conductor is alive" if not self.w_status.dead else "read-only attach",
                            severity="warning")
            return
        from maestro_tui.conductor_process import start_conductor

        start_conductor(self.feed.root)
        self._dead_notified = False
        self.app.notify("resuming: a new conductor picks up where the last one stopped")

    # ------------------------------------------------------------ a replay's keys

    def action_play(self) -> None:
        self.replay.play(not self.replay.playing)
        self.tick(asked=True)

    def action_speed(self, step: int) -> None:
        feed = self.replay
        feed.faster(step)
        self.app.notify(f"speed: {'instant' if feed.speed == float('inf') else f'×{feed.speed:g}'}")
        self.tick(asked=True)

    def action_seek_to(self, position: int) -> None:
        self.seek(len(self.replay.timeline) if position < 0 else position)

    def action_jump(self, what: str, step: int) -> None:
        if self.replay.jump(what, step) is None:
            self.app.notify(f"no {'plan or decision' if what == 'plan' else 'segment'} "
                            f"{'after' if step > 0 else 'before'} this point")
            return
        self.tick(asked=True)

    def seek(self, position: int) -> None:
        """Show the session exactly as it stood after `position` items."""
        self.replay.seek(position)
        self.tick(asked=True)

    # ------------------------------------------------------------ leaving

    def session_live(self) -> bool:
        """Whether quitting can mean stopping: a conductor that runs, and a console allowed to stop it."""
        c = self.view.conductor_status
        return self.mode == "live" and c.state not in ENDED_STATES and c.alive()

    def stop_conductor(self) -> None:
        """SIGTERM the conductor (it stops after the tests already running)."""
        pid = self.view.conductor_status.pid
        if pid and self.mode == "live":
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def on_unmount(self) -> None:
        self.heap.release()
        self.feed.stop()
