"""The session screen's behaviours that do not depend on the mode: a feed that fails, the equity pane
following the leaderboard, a review whose plan is decided elsewhere, agent messages in readable
words, screenshots in the session's folder, and the replay's virtual clock."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import Static

from agents.approval import record_decision
from maestro_tui.app import console
from maestro_tui.replay import ReplayFeed
from maestro_tui.screens.failure import FailureScreen
from maestro_tui.screens.message import MessageScreen
from maestro_tui.screens.review import ReviewScreen
from maestro_tui.widgets.panes import EquityPlot, LeaderboardTable
from tests.sessions import headless_session, settle, showing
from tests.test_console import first_pending, open_review, waiting_session  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow  # a session is run for the module


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return headless_session(tmp_path_factory.mktemp("screen"), "--segments", "2", "--tests", "6", "--seed", "4",
                            "--workers", "1")


@pytest.fixture
def copy(finished: Path, tmp_path: Path) -> Path:
    root = tmp_path / finished.name
    shutil.copytree(finished, root)
    return root


def text_of(widget: Static) -> str:
    return str(widget.render())


async def test_a_session_folder_removed_under_the_console_is_shown_in_a_dialog_and_the_console_goes_on(copy: Path):
    app = console(copy, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: app.session.view.tests_seen == 12)
        shutil.rmtree(copy)
        await settle(pilot, lambda: showing(app, FailureScreen))
        reason = text_of(app.screen.query_one("#failure-reason", Static))
        assert "FileNotFoundError" in reason and str(copy) in reason
        assert "no longer read" in text_of(app.screen.query_one("#failure-title", Static))
        await pilot.press("escape")
        assert not isinstance(app.screen, FailureScreen)
        # what was read stays on screen, and the keys still act
        assert app.session.view.tests_seen == 12 and app.session.w_board.row_count > 1
        await pilot.press("s")
        assert app.session.w_board.sort_title().startswith("by pnl")
        await pilot.pause(0.5)  # five ticks more: the failure is shown once, not again on every tick
        assert not isinstance(app.screen, FailureScreen)


async def test_the_equity_pane_follows_the_leaderboard_cursor_in_a_replay(finished: Path):
    app = console(finished, replay=True)
    async with app.run_test(size=(160, 48)) as pilot:
        board, equity = app.query_one(LeaderboardTable), app.query_one(EquityPlot)
        await settle(pilot, lambda: board.row_count > 2 and board.selected_config() is not None)
        first = board.selected_config()
        assert first and first in text_of(equity)
        await pilot.press("3", "j", "j")
        second = board.selected_config()
        assert second not in (None, first)
        await settle(pilot, lambda: second in text_of(equity))
        assert first not in text_of(equity)


async def test_a_review_open_here_says_so_when_its_plan_is_decided_elsewhere(waiting_session: Path):  # noqa: F811
    plan = first_pending(waiting_session)
    app = console(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_review(app, pilot, plan["plan_id"])
        review = app.screen
        assert isinstance(review, ReviewScreen)
        # another console (or `maestro-tui decide`) vetoes it; the conductor here settles it
        record_decision(waiting_session, plan["plan_id"], "veto", {}, by="ana@desk-2", note="elsewhere")
        hint = review.query_one("#hint", Static)
        await settle(pilot, lambda: "vetoed" in text_of(hint))
        assert "ana@desk-2" in text_of(hint) and "nothing to decide" in text_of(hint)
        assert app.screen is review  # still open, saying what happened
        await pilot.press("a")  # approving what is settled decides nothing
        await pilot.pause()
        assert [d["decision"] for d in _decisions(waiting_session)] == ["veto"]


def _decisions(session: Path) -> list[dict]:
    from engine.jsonl import read_jsonl

    return read_jsonl(session / "decisions.jsonl").records


async def test_c_shows_agent_messages_in_readable_words_and_r_the_raw_json(finished: Path):
    app = console(finished, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: len(app.session.view.conversation) > 2)
        await pilot.press("7", "c")
        await settle(pilot, lambda: showing(app, MessageScreen))
        body = app.screen.query_one("#message-body", Static)
        last = app.session.view.conversation[-1]
        readable = text_of(body)
        assert f"message {len(app.session.view.conversation)} of" in readable
        assert "agente" not in readable and "agent:" in readable and "turn:" in readable
        assert last.agent in readable
        await pilot.press("left")  # the one before
        assert f"message {len(app.session.view.conversation) - 1} of" in text_of(body)
        await pilot.press("r")
        assert '"agente"' in text_of(body)  # the words the file holds
        await pilot.press("escape")
        assert not isinstance(app.screen, MessageScreen)


async def test_a_screenshot_from_the_palette_is_saved_in_the_session_folder(copy: Path):
    app = console(copy, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, lambda: app.session.view.tests_seen == 12)
        await pilot.press("ctrl+p")
        await pilot.press(*"screenshot")
        await pilot.press("enter")
        await settle(pilot, lambda: list((copy / "screenshots").glob("*.svg")))
        (shot,) = (copy / "screenshots").glob("*.svg")
        assert "<svg" in shot.read_text()[:200]
        assert any(str(shot) in n.message for n in app._notifications)


def test_the_replay_clock_releases_what_its_time_has_passed(finished: Path):
    """The replay runs on the clock it is given: ×10 for 1 s of that clock passes 10 s of the session."""
    now = [1000.0]
    feed = ReplayFeed(finished, now=lambda: now[0])
    feed.start()
    assert len(feed.take(10**6).items) == len(feed.timeline)  # it opens at the end
    feed.seek(0)
    assert feed.take(10**6).restart
    times = [s.at for s in feed.timeline]
    feed.faster(0)  # ×10 (the speed it opens at)
    assert feed.speed == 10
    feed.play(True)
    now[0] += 1.0
    released = feed.take(10**6).items
    assert len(released) == sum(1 for t in times if t <= times[0] + 10.0)
    assert feed.clock == pytest.approx(times[0] + 10.0)
    assert not feed.take(10**6).items  # the clock did not move: nothing more
