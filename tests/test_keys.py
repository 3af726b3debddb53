"""Keys that mean the same everywhere, driven with Textual's Pilot on a finished session:
the leaderboard's sort and its title, focus that follows the pane keys, one quit dialog for
q, Ctrl+C and Ctrl+Q whose choices fit the session, and `?` naming what each key does."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static

from engine.events import utc_now_iso
from maestro_tui.app import MaestroApp, console
from maestro_tui.screens.help import HelpScreen
from maestro_tui.screens.quit import QuitScreen
from maestro_tui.screens.session import PANES
from tests.sessions import headless_session, settle, showing

pytestmark = pytest.mark.slow  # a session is run for the module; each test drives the console on it


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return headless_session(tmp_path_factory.mktemp("keys"), "--segments", "1", "--tests", "8", "--seed", "3",
                            "--workers", "1")


@pytest.fixture
def running_elsewhere(finished: Path, tmp_path: Path) -> Path:
    """The finished session as a console sees one whose conductor waits on another host (a fresh heartbeat)."""
    root = tmp_path / finished.name
    shutil.copytree(finished, root)
    state = json.loads((root / "conductor.json").read_text())
    state.update(state="waiting", host="another-host", heartbeat=utc_now_iso())
    (root / "conductor.json").write_text(json.dumps(state))
    return root


def loaded(app: MaestroApp) -> bool:
    session = app.session  # a replay reads no conductor.json: its feed says where it is
    return bool(session.view.tests_seen) and session.w_board.row_count > 1 and (
        session.mode == "replay" or session.view.conductor_status.present)


def board_column(app: MaestroApp, column: str) -> list[object]:
    """A leaderboard column as shown, its figures as numbers (`-12,345` → -12345)."""
    board = app.session.w_board
    at = board.COLUMNS.index(column)
    cells = [str(board.get_row_at(i)[at]) for i in range(board.row_count)]
    try:
        return [float(c.replace(",", "")) for c in cells]
    except ValueError:
        return cells


def screen_text(app: MaestroApp) -> str:
    console = Console(width=200, file=io.StringIO(), record=True, color_system=None)
    for widget in app.screen.query(Static):
        console.print(widget.content)
    return console.export_text()


async def test_s_sorts_best_first_S_reverses_and_the_title_says_by_what_and_which_method(finished: Path):
    app = console(finished)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: loaded(app))
        frame = app.session.w_board.parent
        assert frame.border_title == "3 leaderboard · by score ↓"
        scores = board_column(app, "score")
        assert scores == sorted(scores, reverse=True) and board_column(app, "rank")[0] == 1  # best first: the ranking
        await pilot.press("S")
        assert frame.border_title == "3 leaderboard · by score ↑"
        assert board_column(app, "score") == sorted(scores)
        await pilot.press("s")  # the next column, best first again
        assert frame.border_title == "3 leaderboard · by pnl ↓"
        pnl = board_column(app, "val pnl")
        assert pnl == sorted(pnl, reverse=True)
        await pilot.press("f")
        method = app.session.view.session_config.methods[0]
        assert frame.border_title == f"3 leaderboard · by pnl ↓ · {method} only"
        assert {str(m) for m in board_column(app, "method")} <= {method}


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_the_focused_frame_moves_with_every_pane_key(finished: Path, size: tuple[int, int]):
    app = console(finished)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, lambda: loaded(app))

        def framed() -> str:  # the pane whose frame shows focus
            return next(n for n in PANES if app.query_one(f"#pane-{n}").has_pseudo_class("focus-within"))

        for key, pane in (("5", "targets"), ("6", "equity"), ("4", "allocation")):
            await pilot.press(key)
            await settle(pilot, lambda pane=pane: framed() == pane)
        for key, pane in (("l", "targets"), ("l", "equity"), ("l", "conversation"), ("l", "plans"), ("h", "conversation")):
            await pilot.press(key)
            await settle(pilot, lambda pane=pane: framed() == pane)
        await pilot.press("z")  # maximised: only this pane, and the status line stays
        await settle(pilot, lambda: all(app.query_one(f"#pane-{n}").has_class("hidden") for n in PANES if n != "conversation"))
        assert app.session.w_status.display and app.session.w_status.region.height
        await pilot.press("z")
        if size[0] >= 120:
            await settle(pilot, lambda: not any(app.query_one(f"#pane-{n}").has_class("hidden") for n in PANES))


@pytest.mark.parametrize("kind", ["live", "finished", "read-only", "replay"])
@pytest.mark.parametrize("key", ["q", "ctrl+c", "ctrl+q"])
async def test_q_ctrl_c_and_ctrl_q_open_one_dialog_whose_choices_fit_the_session(
        finished: Path, running_elsewhere: Path, kind: str, key: str):
    app = {"live": lambda: console(running_elsewhere), "finished": lambda: console(finished),
           "read-only": lambda: console(running_elsewhere, read_only=True), "replay": lambda: console(finished, replay=True)}[kind]()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press(key)
        await settle(pilot, lambda: showing(app, QuitScreen))
        text = screen_text(app)
        if kind == "live":
            assert "stop the session" in text and "leave it running" in text and "cancel" in text
        else:
            assert "stop" not in text and "leave" not in text and "quit" in text and "cancel" in text
            await pilot.press("s")  # no stop where nothing runs
            assert isinstance(app.screen, QuitScreen)
        if key != "q":  # (q in the dialog is its "quit" where nothing runs)
            await pilot.press(key)  # the same key again does not stack another dialog
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, QuitScreen))
        assert app.is_running
        await pilot.press(key)
        await settle(pilot, lambda: showing(app, QuitScreen))
        await pilot.press("l" if kind == "live" else "q")
    assert app.return_value == ("leave" if kind == "live" else "quit")


@pytest.mark.parametrize("kind", ["live", "read-only", "replay"])
async def test_help_names_what_each_key_of_this_console_does(running_elsewhere: Path, kind: str):
    app = {"live": lambda: console(running_elsewhere), "read-only": lambda: console(running_elsewhere, read_only=True),
           "replay": lambda: console(running_elsewhere, replay=True)}[kind]()
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("question_mark")
        await settle(pilot, lambda: showing(app, HelpScreen))
        text = screen_text(app)
    for raw in ("question_mark", "cursor(", "pane(", "show_pane(", "choose("):
        assert raw not in text
    for said in ("previous pane", "next pane", "cursor down", "reverse sort", "maximise/restore pane", "equity pane"):
        assert said in text
    assert ("approve" in text) == (kind == "live") and ("pause/resume" in text) == (kind == "live")
    assert ("next plan" in text) == ("play/pause" in text) == (kind == "replay")  # the replay's own keys, next to the console's
    assert ("stop the session" in text) == (kind == "live")
