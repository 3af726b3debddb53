"""Replay: the console fed by a finished session's files on a virtual clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.jsonl import read_jsonl
from maestro_tui.replay import ReplayApp
from tests.sessions import cli, only_session


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    sessions = tmp_path_factory.mktemp("replay")
    out = cli("run", "--headless", "--segments", "2", "--tests", "12", "--seed", "11", "--sessions-dir", str(sessions))
    assert out.returncode == 0, out.stderr
    return only_session(sessions)


def plan_states_until(session: Path, clock_iso_max: float) -> dict[str, str]:
    """The plans' statuses rebuilt from plans.jsonl alone, as of a moment (independent of the app)."""
    import datetime as dt

    state: dict[str, str] = {}
    for p in read_jsonl(session / "plans.jsonl").records:
        at = dt.datetime.fromisoformat(p["emitted_at"].replace("Z", "+00:00")).timestamp()
        if at <= clock_iso_max:
            state[p["plan_id"]] = p["status"]
    return state


async def test_end_start_and_jumps_show_the_session_as_it_stood(recorded: Path):
    app = ReplayApp(recorded)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("G")
        await pilot.pause(0.2)
        assert app.view.tests_seen == 24
        final = {p["plan_id"]: p["status"] for p in read_jsonl(recorded / "plans.jsonl").records}
        assert {k: v["status"] for k, v in app.view.plans.items()} == final
        await pilot.press("g")
        await pilot.pause(0.2)
        assert app.view.tests_seen == 0 and not app.view.plans
        await pilot.press("right_square_bracket")
        await pilot.pause(0.2)
        shown = {k: v["status"] for k, v in app.view.plans.items()}
        # the first plan line has happened, and nothing the files say came later
        assert shown and shown.items() <= plan_states_until(recorded, app.feed.clock).items()
        at_plan = app.feed.position
        await pilot.press("right_curly_bracket")
        await pilot.pause(0.2)
        assert app.feed.position > at_plan and app.view.research[-1].test_id.startswith("seg2_")
        await pilot.press("left_curly_bracket")
        await pilot.pause(0.2)
        assert all(r.test_id.startswith("seg1_") for r in app.view.research)


async def test_play_and_speed(recorded: Path):
    app = ReplayApp(recorded)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        for _ in range(4):
            await pilot.press("plus")  # up to instant
        await pilot.press("space")
        for _ in range(40):
            await pilot.pause(0.05)
            if app.view.tests_seen == 24:
                break
        assert app.view.tests_seen == 24 and not app.feed.playing
