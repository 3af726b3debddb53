"""SVG snapshots of the console at 80×24 and 160×48: the main screen, each pane maximised, the
review of a pending and of an applied plan, the help, and the replay.

The session is made by a real conductor in a folder with a fixed name, so every pixel is
deterministic. SVGs change with Textual's version: textual is pinned in pyproject.toml.
Update them with `pytest tests/test_snapshots.py --snapshot-update` and look at the report.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from agents.session_start import new_session_config
from agents.settings import Settings
from engine.jsonl import read_jsonl, write_json_atomic
from engine.session import CONFIG, SessionDir
from maestro_tui.app import console
from maestro_tui.screens.session import PANES
from tests.sessions import cli

pytestmark = pytest.mark.slow  # each snapshot needs a conducted session


def conducted(base: Path, segments: int, tests: int = 8) -> Path:
    """A session run to its end by a real conductor, in a folder with a fixed name."""
    root = base / "session_snapshot"
    root.mkdir()
    session = SessionDir(root)
    # rules on a hair trigger (as tests.sessions.EAGER_RULES): plans to show in a short session
    settings = Settings(segments=segments, tests=tests, seed=3, workers=1, sessions_dir=base,
                        rules={"confidence_z": 0.0, "min_trades": 10})
    write_json_atomic(session.file(CONFIG), new_session_config(session, settings, "auto"))
    out = cli("conduct", str(root))
    assert out.returncode == 0, out.stderr
    return root


@pytest.fixture(scope="module")
def finished_session(tmp_path_factory) -> Path:
    return conducted(tmp_path_factory.mktemp("snap"), segments=2)


@pytest.fixture(scope="module")
def pending_session(tmp_path_factory) -> Path:
    """A finished session with its last plan cut back to pending (lines, audit and messages), for the modal."""
    root = conducted(tmp_path_factory.mktemp("snap-pending"), segments=1, tests=24)
    last = read_jsonl(root / "plans.jsonl").records[-1]["plan_id"]
    keep = {
        "plans.jsonl": lambda r: r["plan_id"] != last or r["status"] == "pending",
        "audit.jsonl": lambda r: r.get("plan_id") != last,  # so the value in force is the one before it
        "conversation.jsonl": lambda r: r["message"].get("ref") != last or r["agent"] != "maestro",
    }
    for name, kept in keep.items():
        records = read_jsonl(root / name).records
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in records if kept(r)))
    return root


@pytest.fixture(scope="module")
def replayed_session(finished_session: Path, tmp_path_factory) -> Path:
    """The finished session with every time in it made one instant: a replay's clock and timeline show the same
    on every run (the run itself took a different time each time)."""
    root = tmp_path_factory.mktemp("snap-replay") / finished_session.name
    shutil.copytree(finished_session, root)
    instant = "2026-01-02T03:04:05.000Z"
    for path in root.glob("*.jsonl"):
        records = read_jsonl(path).records
        path.write_text("".join(json.dumps({**r, "emitted_at": instant} if "emitted_at" in r else r) + "\n"
                                for r in records))
    config = json.loads((root / CONFIG).read_text())
    (root / CONFIG).write_text(json.dumps({**config, "created_at": instant}))
    when = 1767323045.0  # the instant, in seconds: a test's time is its folder's
    for folder in root.glob("seg*/seg*_test*"):
        os.utime(folder, (when, when))
    return root


SIZES = [pytest.param((160, 48), id="160x48"), pytest.param((80, 24), id="80x24")]


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare, finished_session, size):
    assert snap_compare(console(finished_session), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pane", PANES)
def test_each_pane_maximised(snap_compare, finished_session, pane, size):
    run_before = _after(str(PANES.index(pane) + 1), "z")
    assert snap_compare(console(finished_session), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_review_modal(snap_compare, pending_session, size):
    # the pending plan is the first row
    assert snap_compare(console(pending_session), terminal_size=size, run_before=_after("enter"))


@pytest.mark.parametrize("size", SIZES)
def test_review_modal_of_an_applied_plan(snap_compare, finished_session, size):
    # the newest plan: applied, read-only, with its effect
    assert snap_compare(console(finished_session), terminal_size=size, run_before=_after("enter"))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, finished_session, size):
    assert snap_compare(console(finished_session), terminal_size=size, run_before=_after("question_mark"))


@pytest.mark.parametrize("size", SIZES)
def test_replay(snap_compare, replayed_session, size):
    assert snap_compare(console(replayed_session, replay=True), terminal_size=size, run_before=_after())


def _after(*keys: str):
    """What runs before a snapshot: the session read, no toasts, then `keys` pressed and their screen settled."""
    async def run_before(pilot) -> None:
        await _settle(pilot)
        await _no_toasts(pilot)
        if keys:
            await pilot.press(*keys)
            await pilot.pause(0.3)
            await _no_toasts(pilot)

    return run_before


async def _no_toasts(pilot) -> None:
    """Toasts come and go with time: none in a snapshot (cleared while their screen is on top)."""
    pilot.app.clear_notifications()
    await pilot.pause(0.1)


async def _settle(pilot) -> None:
    app = pilot.app
    for _ in range(100):
        await pilot.pause(0.05)
        view = app.session.view
        if view.tests_seen and (app.session.mode == "replay" or (not app.feed.items and view.conductor)):
            break
    await pilot.pause(0.3)
