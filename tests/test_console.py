"""The console driven with Textual's Pilot against a real conductor in manual mode.

Each test starts a real conductor process on a small manual-approval session, waits for
it to stop at a pending plan, opens the console on that directory and presses keys. The
assertions are on what reached decisions.jsonl and what the panes then show.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from engine.jsonl import read_jsonl
from maestro_tui.app import MaestroApp
from maestro_tui.screens.quit import QuitScreen
from maestro_tui.screens.review import ReviewScreen
from maestro_tui.widgets.panes import PlansTable
from tests.sessions import cli, cli_background, conductor_state, find_session, pending_plans, wait_for


@pytest.fixture
def waiting_session(tmp_path: Path):
    """A manual-approval session whose conductor waits at its first pending plan."""
    out = cli("run", "--headless", "--segments", "1", "--tests", "40", "--seed", "5", "--approval", "manual",
              "--sessions-dir", str(tmp_path), "--workers", "1", env={"MAESTRO_CRASH_AT": "segment_start"})
    # the crash point leaves a new session with its segment plan written and no conductor
    assert out.returncode == -signal.SIGKILL
    session = find_session(tmp_path)
    proc = cli_background("conduct", str(session))
    wait_for(lambda: conductor_state(session).get("state") == "waiting" and pending_plans(session),
             what="a pending plan")
    yield session
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


async def settle(app: MaestroApp, pilot, condition, timeout: float = 30.0) -> None:
    """Let the console run until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("the console never showed what was expected")
        await pilot.pause(0.05)


def first_pending(session: Path) -> dict:
    return sorted(pending_plans(session), key=lambda p: p["plan_id"])[0]


def decisions(session: Path) -> list[dict]:
    return read_jsonl(session / "decisions.jsonl").records


def status_in_pane(app: MaestroApp, plan_id: str) -> str:
    table = app.query_one(PlansTable)
    if plan_id not in table.keys:
        return ""
    return str(table.cells_of(plan_id)[1])


async def open_review(app: MaestroApp, pilot, plan_id: str) -> None:
    await settle(app, pilot, lambda: status_in_pane(app, plan_id) == "pending")
    table = app.query_one(PlansTable)
    table.focus()
    table.move_cursor(row=table.keys.index(plan_id))
    await pilot.press("enter")
    await settle(app, pilot, lambda: isinstance(app.screen, ReviewScreen))


async def test_approve_is_written_then_shown_applied_once_the_conductor_applies_it(waiting_session: Path):
    plan = first_pending(waiting_session)
    app = MaestroApp(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_review(app, pilot, plan["plan_id"])
        await pilot.press("a")
        await settle(app, pilot, lambda: decisions(waiting_session))
        d = decisions(waiting_session)[0]
        assert (d["plan_id"], d["decision"], d["nonce"]) == (plan["plan_id"], "approve", plan["nonce"])
        assert d["patch"] == plan["patch"]
        await settle(app, pilot, lambda: status_in_pane(app, plan["plan_id"]) == "applied")


async def test_edit_refuses_an_out_of_range_value_under_the_field_then_accepts_a_valid_one(waiting_session: Path):
    plan = first_pending(waiting_session)
    name = plan["patch"][0]["parameter"]
    bad = {"atr_stop_mult": "50", "hard_tp_usd": "1e9", "timeout_bars": "0", "vhf_min": "5", "atr_z_min": "-99",
           "gate_vhf": "maybe"}[name]
    good = {"atr_stop_mult": "2.25", "hard_tp_usd": "750", "timeout_bars": "150", "vhf_min": "0.33",
            "atr_z_min": "-0.9", "gate_vhf": "on"}[name]
    app = MaestroApp(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_review(app, pilot, plan["plan_id"])
        await pilot.press("e")
        field = app.screen.query_one(f"#edit-{name}")
        field.value = bad
        await pilot.press("enter")
        error = str(app.screen.query_one(f"#error-{name}").render())
        assert error and ("outside" in error or "not" in error), error
        assert isinstance(app.screen, ReviewScreen) and not decisions(waiting_session)
        field.value = good
        await pilot.press("enter")
        await settle(app, pilot, lambda: decisions(waiting_session))
        d = decisions(waiting_session)[0]
        assert d["decision"] == "edit" and d["patch"][0]["parameter"] == name
        await settle(app, pilot, lambda: status_in_pane(app, plan["plan_id"]) == "applied")
    applied = [a for a in read_jsonl(waiting_session / "audit.jsonl").records if a["action"] == "patch_applied"]
    assert applied[-1]["plan_id"] == plan["plan_id"]


async def test_veto_discards_the_plan(waiting_session: Path):
    plan = first_pending(waiting_session)
    app = MaestroApp(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_review(app, pilot, plan["plan_id"])
        await pilot.press("v")
        await settle(app, pilot, lambda: status_in_pane(app, plan["plan_id"]) == "vetoed")
    assert decisions(waiting_session)[0]["decision"] == "veto"


async def test_escape_closes_the_review_without_deciding_and_stray_keys_decide_nothing(waiting_session: Path):
    plan = first_pending(waiting_session)
    app = MaestroApp(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_review(app, pilot, plan["plan_id"])
        await pilot.press("escape")
        assert not isinstance(app.screen, ReviewScreen)
        app.query_one("#leaderboard").focus()  # a, e, v outside the plans pane do nothing
        await pilot.press("a", "v", "e")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ReviewScreen)
        assert status_in_pane(app, plan["plan_id"]) == "pending"
    assert not decisions(waiting_session)
    assert plan["plan_id"] in {p["plan_id"] for p in pending_plans(waiting_session)}


async def test_read_only_attach_refuses_decisions(waiting_session: Path):
    plan = first_pending(waiting_session)
    app = MaestroApp(waiting_session, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_review(app, pilot, plan["plan_id"])
        await pilot.press("a")
        await pilot.press("v")
        await pilot.pause(0.3)
        assert "READ-ONLY" in str(app.query_one("#status").render())
        assert status_in_pane(app, plan["plan_id"]) == "pending"
    assert not decisions(waiting_session)


@pytest.mark.parametrize("choice", ["cancel", "leave", "stop"])
async def test_quit_dialog_choices(waiting_session: Path, choice: str):
    plan = first_pending(waiting_session)
    app = MaestroApp(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot, lambda: status_in_pane(app, plan["plan_id"]) == "pending")
        await pilot.press("q")
        await settle(app, pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press({"cancel": "c", "leave": "l", "stop": "s"}[choice])
        await pilot.pause(0.2)
        if choice == "cancel":
            assert not isinstance(app.screen, QuitScreen) and app.is_running
            assert status_in_pane(app, plan["plan_id"]) == "pending"
    assert not decisions(waiting_session)  # quitting decides nothing
    if choice == "stop":
        wait_for(lambda: conductor_state(waiting_session).get("state") == "stopped", what="the conductor to stop")
    else:
        assert conductor_state(waiting_session).get("state") == "waiting"
        assert app.return_value in (None, "leave")


async def test_a_remapped_key_reviews_and_the_old_one_no_longer_does(waiting_session: Path):
    plan = first_pending(waiting_session)
    app = MaestroApp(waiting_session, keymap={"plans.review": "r", "plans.approve": "ctrl+y"})
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot, lambda: status_in_pane(app, plan["plan_id"]) == "pending")
        app.query_one(PlansTable).focus()
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ReviewScreen)
        await pilot.press("r")
        await settle(app, pilot, lambda: isinstance(app.screen, ReviewScreen))
        await pilot.press("a")
        await settle(app, pilot, lambda: status_in_pane(app, plan["plan_id"]) == "applied")
    d = decisions(waiting_session)
    assert [(x["plan_id"], x["decision"]) for x in d] == [(plan["plan_id"], "approve")]


async def test_theme_switch(waiting_session: Path):
    plan = first_pending(waiting_session)
    app = MaestroApp(waiting_session, theme="maestro-light")
    async with app.run_test(size=(160, 48)) as pilot:
        assert app.current_theme.name == "maestro-light"
        await pilot.press("t")
        assert app.current_theme.name == "maestro-high-contrast"  # the next in the cycle
        await pilot.press("t")
        assert app.current_theme.name == "ansi-dark"
        assert {"maestro-dark", "maestro-light", "maestro-high-contrast"} <= set(app.available_themes)
        await settle(app, pilot, lambda: status_in_pane(app, plan["plan_id"]) == "pending")
    assert not decisions(waiting_session)


async def test_p_pauses_and_resumes_starting_new_tests(waiting_session: Path):
    app = MaestroApp(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot, lambda: app.view.conductor is not None)
        await pilot.press("p")
        wait_for(lambda: conductor_state(waiting_session).get("state") == "paused", what="the conductor to pause")
        await settle(app, pilot, lambda: "PAUSED" in str(app.w_status.render()))
        await pilot.press("p")
        wait_for(lambda: conductor_state(waiting_session).get("state") == "waiting", what="the conductor to resume")


async def test_a_dead_conductor_is_shown_with_its_log_and_R_resumes_it(waiting_session: Path):
    import os

    old_pid = conductor_state(waiting_session)["pid"]
    app = MaestroApp(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot, lambda: app.view.conductor is not None)
        os.kill(old_pid, signal.SIGKILL)
        await settle(app, pilot, lambda: app.w_status.dead)
        assert "DEAD" in str(app.w_status.render())
        await pilot.press("R")
        wait_for(lambda: conductor_state(waiting_session).get("pid") not in (None, old_pid)
                 and conductor_state(waiting_session).get("state") == "waiting", what="a new conductor")
        await settle(app, pilot, lambda: not app.w_status.dead)
    os.kill(conductor_state(waiting_session)["pid"], signal.SIGTERM)


async def test_no_color_is_honoured(waiting_session: Path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = MaestroApp(waiting_session)
    async with app.run_test(size=(80, 24)):
        assert app.no_color


async def test_corrupt_and_torn_lines_are_counted_and_shown_never_crash(waiting_session: Path):
    app = MaestroApp(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot, lambda: app.view.conversation)
        with open(waiting_session / "conversation.jsonl", "a") as fh:
            fh.write("{this is not json}\n")
        await settle(app, pilot, lambda: app.view.bad_lines == 1)
        assert "corrupt lines skipped: 1" in str(app.w_status.render())
        seen = len(app.view.conversation)
        with open(waiting_session / "audit.jsonl", "a") as fh:
            fh.write('{"v": 1, "kind": "audit", "sess')  # a torn last line: waits for its end
        await pilot.pause(0.5)
        assert app.view.bad_lines == 1 and app.is_running and len(app.view.conversation) == seen
