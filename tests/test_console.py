"""The console driven with Textual's Pilot against a real conductor in manual mode.

Each test starts a real conductor process on a small manual-approval session, waits for
it to stop at a pending plan, opens the console on that directory and presses keys. The
assertions are on what reached decisions.jsonl and what the panes then show.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static

from agents.approval import research_in_force
from engine.events import PlanEvent, utc_now_iso
from engine.jsonl import read_jsonl
from engine.params import bounds_for
from maestro_tui.app import MaestroApp, console
from maestro_tui.screens.quit import QuitScreen
from maestro_tui.screens.review import ReviewScreen
from maestro_tui.widgets.panes import PlansTable, value_text
from tests.sessions import (
    EAGER_RULES,
    cli,
    cli_background,
    conductor_state,
    find_session,
    pending_plans,
    settle,
    showing,
    wait_for,
)

pytestmark = pytest.mark.slow  # every test drives the console over a running session


@pytest.fixture
def waiting_session(tmp_path: Path):
    """A manual-approval session whose conductor waits at its first pending plan."""
    out = cli("run", "--headless", "--segments", "1", "--tests", "40", "--seed", "5", "--approval", "manual",
              "--sessions-dir", str(tmp_path), "--workers", "1", env={"MAESTRO_CRASH_AT": "segment_start", **EAGER_RULES})
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


def first_pending(session: Path) -> dict:
    return sorted(pending_plans(session), key=lambda p: p["plan_id"])[0]


def decisions(session: Path) -> list[dict]:
    return read_jsonl(session / "decisions.jsonl").records


def status_in_pane(app: MaestroApp, plan_id: str) -> str:
    table = app.query_one(PlansTable)
    if plan_id not in table.keys:
        return ""
    return str(table.cell_of(plan_id, "plan")).split("\n")[1]  # a plan's id over its status


def plan_lines(app: MaestroApp, plan_id: str) -> list[str]:
    """The plans pane's text of a plan: its change (and effect), then its reason."""
    return str(app.query_one(PlansTable).cell_of(plan_id, "change · effect / reason")).split("\n")


def review_text(app: MaestroApp) -> str:
    """Everything the review modal says, as plain text (wide, so nothing wraps)."""
    console = Console(width=300, file=io.StringIO(), record=True, color_system=None)
    for widget in app.screen.query(Static):
        console.print(widget.content)
    return console.export_text()


def within_step(item: dict) -> str:
    """A value an edit may set: halfway from the old value to the proposed one (or the proposed one)."""
    old, new = item["old_value"], item["new_value"]
    if isinstance(new, bool):
        return "on" if new else "off"
    if isinstance(new, int):
        mid = old + (new - old) // 2
        return str(mid if mid != old else new)
    return str(round(old + (new - old) / 2, 6))


async def open_review(app: MaestroApp, pilot, plan_id: str, status: str = "pending") -> None:
    await settle(pilot, lambda: status_in_pane(app, plan_id) == status)
    table = app.query_one(PlansTable)
    table.focus()
    table.move_cursor(row=table.keys.index(plan_id))
    await pilot.press("enter")
    await settle(pilot, lambda: showing(app, ReviewScreen))


async def test_approve_is_written_then_shown_applied_once_the_conductor_applies_it(waiting_session: Path):
    plan = first_pending(waiting_session)
    app = console(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(PlansTable)
        assert [c.label.plain for c in table.columns.values()] == ["plan", "change · effect / reason"]
        await open_review(app, pilot, plan["plan_id"])
        await pilot.press("a")
        await settle(pilot, lambda: decisions(waiting_session))
        d = decisions(waiting_session)[0]
        assert (d["plan_id"], d["decision"], d["nonce"]) == (plan["plan_id"], "approve", plan["nonce"])
        assert d["patch"] == plan["patch"]
        await settle(pilot, lambda: status_in_pane(app, plan["plan_id"]) == "applied")
        # after the change, the effect: being measured, then (the conductor runs on) what it measured, verdict first
        change = plan_lines(app, plan["plan_id"])[0]
        assert change.endswith("  measuring…") or "  ✓ " in change or "  ✗ " in change, change


async def test_edit_refuses_an_out_of_range_value_under_the_field_then_accepts_a_valid_one(waiting_session: Path):
    plan = first_pending(waiting_session)
    item = plan["patch"][0]
    name = item["parameter"]
    bad = {"atr_stop_mult": "50", "hard_tp_usd": "1e9", "timeout_bars": "0", "vhf_min": "5", "atr_z_min": "-99",
           "gate_vhf": "maybe"}[name]
    app = console(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_review(app, pilot, plan["plan_id"])
        await pilot.press("e")
        field = app.screen.query_one(f"#edit-{name}")
        field.value = bad
        await pilot.press("enter")
        error = str(app.screen.query_one(f"#error-{name}").render())
        assert error and ("outside" in error or "not" in error), error
        assert isinstance(app.screen, ReviewScreen) and not decisions(waiting_session)
        field.value = within_step(item)
        await pilot.press("enter")
        await settle(pilot, lambda: decisions(waiting_session))
        d = decisions(waiting_session)[0]
        assert d["decision"] == "edit" and d["patch"][0]["parameter"] == name
        await settle(pilot, lambda: status_in_pane(app, plan["plan_id"]) == "edited")  # applied with other values
    applied = [a for a in read_jsonl(waiting_session / "audit.jsonl").records if a["action"] == "patch_applied"]
    assert applied[-1]["plan_id"] == plan["plan_id"] and applied[-1]["details"]["status"] == "edited"


async def test_an_edit_beyond_the_max_step_is_refused_under_its_field_and_nothing_is_written(waiting_session: Path):
    plan = next((p for p in sorted(pending_plans(waiting_session), key=lambda p: p["plan_id"])
                 if (b := bounds_for(research_in_force(waiting_session).method)[p["patch"][0]["parameter"]]).max_step
                 and b.lo is not None), None)
    if plan is None:
        pytest.skip("the session's plan switches a gate: no step to exceed")
    name = plan["patch"][0]["parameter"]
    in_force = research_in_force(waiting_session)
    bound = in_force.bounds()[name]
    now = in_force.value(name)
    far = now + 3 * bound.max_step if now + 3 * bound.max_step <= bound.hi else now - 3 * bound.max_step
    assert bound.lo <= far <= bound.hi  # inside the bounds: only the step is wrong
    app = console(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_review(app, pilot, plan["plan_id"])
        await pilot.press("e")
        app.screen.query_one(f"#edit-{name}").value = str(far)
        await pilot.press("enter")
        await pilot.pause()
        error = str(app.screen.query_one(f"#error-{name}").render())
        assert error.startswith(f"{name}: ") and "max step" in error and "from the value in force" in error, error
        assert isinstance(app.screen, ReviewScreen)  # still open, for another value
    assert not (waiting_session / "decisions.jsonl").exists() or not decisions(waiting_session)


async def test_the_review_of_a_pending_plan_says_what_it_changes_where_and_on_what_evidence(waiting_session: Path):
    plan = first_pending(waiting_session)
    item = plan["patch"][0]
    name = item["parameter"]
    bound = research_in_force(waiting_session).bounds()[name]
    scope = plan["scope"]
    app = console(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_review(app, pilot, plan["plan_id"])
        text = review_text(app)
    assert scope["label"] in text and scope["config_id"] in text and scope["method"] in text
    assert "applies to the tests that start after the decision" in text
    row = next(line.split() for line in text.splitlines() if line.split()[:1] == [name])
    assert "in force now" in text
    in_force = getattr(research_in_force(waiting_session), name)
    assert row[1:3] == [value_text(in_force), value_text(item["new_value"])]  # in force now, proposed
    assert f"[{value_text(bound.lo)} … {value_text(bound.hi)}]" in " ".join(row)
    assert value_text(bound.max_step) in row[-2:]
    assert (f"validation episodes of {scope['label']}, {scope['first_test']}…{scope['last_test']}: "
            f"{scope['episodes']} episodes, {scope['trades']} trades; maxdd = worst single test's drawdown "
            "(as in the targets pane)") in text
    assert f"rule {plan['rule']}" in text and plan["reason"] in text
    assert "≥ 0.520" in text  # the hit target from the session config, next to the hit measured


async def test_veto_discards_the_plan_which_then_opens_read_only_and_its_keys_decide_nothing(waiting_session: Path):
    plan = first_pending(waiting_session)
    app = console(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_review(app, pilot, plan["plan_id"])
        await pilot.press("v")
        await settle(pilot, lambda: status_in_pane(app, plan["plan_id"]) == "vetoed")
        await open_review(app, pilot, plan["plan_id"], status="vetoed")
        assert f"{plan['plan_id']} is vetoed: nothing to decide" in review_text(app)
        await pilot.press("a", "e", "v")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ReviewScreen)  # still open: the keys said why they did nothing
    assert [d["decision"] for d in decisions(waiting_session)] == ["veto"]


async def test_markup_and_escapes_in_a_plan_are_shown_as_text_in_the_pane_and_the_review(waiting_session: Path,
                                                                                          tmp_path: Path):
    copy = tmp_path / "copy" / waiting_session.name  # its files, not its test folders (the conductor runs on)
    copy.mkdir(parents=True)
    for path in waiting_session.glob("*.json*"):
        shutil.copy(path, copy / path.name)
    base = first_pending(copy)
    markup = "[link=https://x]click[/link] [/] [bold]not bold"
    reason = markup + " \x1b]0;pwned\x07"  # and an escape sequence that would retitle the terminal
    crafted = PlanEvent.model_validate({**base, "plan_id": "P1-999", "nonce": "feedfacefeedface", "reason": reason,
                                        "emitted_at": utc_now_iso(), "vetoed_before": "P1-[/]001 at [b]seg1"})
    with open(copy / "plans.jsonl", "a") as fh:
        fh.write(json.dumps(crafted.model_dump()) + "\n")
    shown = markup + " \\x1b]0;pwned\\x07"
    app = console(copy, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: status_in_pane(app, "P1-999") == "pending")
        reason = plan_lines(app, "P1-999")[1]  # as much as the pane holds; the review has it all
        assert reason.endswith("…") and len(reason) > 30 and shown.startswith(reason[:-1]), reason
        await open_review(app, pilot, "P1-999")
        text = review_text(app)
        assert shown in text and "\x1b" not in text and "vetoed before: P1-[/]001 at [b]seg1" in text
        assert app.is_running


async def test_escape_closes_the_review_without_deciding_and_stray_keys_decide_nothing(waiting_session: Path):
    plan = first_pending(waiting_session)
    app = console(waiting_session)
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
    app = console(waiting_session, read_only=True)
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
    app = console(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: status_in_pane(app, plan["plan_id"]) == "pending")
        await pilot.press("q")
        await settle(pilot, lambda: showing(app, QuitScreen))
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
    app = console(waiting_session, keymap={"plans.review": "r", "plans.approve": "ctrl+y"})
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: status_in_pane(app, plan["plan_id"]) == "pending")
        app.query_one(PlansTable).focus()
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ReviewScreen)
        await pilot.press("r")
        await settle(pilot, lambda: showing(app, ReviewScreen))
        await pilot.press("a")
        await settle(pilot, lambda: status_in_pane(app, plan["plan_id"]) == "applied")
    d = decisions(waiting_session)
    assert [(x["plan_id"], x["decision"]) for x in d] == [(plan["plan_id"], "approve")]


async def test_theme_switch(waiting_session: Path):
    plan = first_pending(waiting_session)
    app = console(waiting_session, theme="maestro-light")
    async with app.run_test(size=(160, 48)) as pilot:
        assert app.current_theme.name == "maestro-light"
        await pilot.press("t")
        assert app.current_theme.name == "maestro-high-contrast"  # the next in the cycle
        await pilot.press("t")
        assert app.current_theme.name == "ansi-dark"
        assert {"maestro-dark", "maestro-light", "maestro-high-contrast"} <= set(app.available_themes)
        await settle(pilot, lambda: status_in_pane(app, plan["plan_id"]) == "pending")
    assert not decisions(waiting_session)


async def test_p_pauses_and_resumes_starting_new_tests(waiting_session: Path):
    app = console(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: app.session.view.conductor is not None)
        await pilot.press("p")
        wait_for(lambda: conductor_state(waiting_session).get("state") == "paused", what="the conductor to pause")
        await settle(pilot, lambda: "PAUSED" in str(app.session.w_status.render()))
        await pilot.press("p")
        wait_for(lambda: conductor_state(waiting_session).get("state") == "waiting", what="the conductor to resume")


async def test_a_dead_conductor_is_shown_with_its_log_and_R_resumes_it(waiting_session: Path):
    import os

    old_pid = conductor_state(waiting_session)["pid"]
    app = console(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: app.session.view.conductor is not None)
        os.kill(old_pid, signal.SIGKILL)
        await settle(pilot, lambda: app.session.w_status.dead)
        assert "DEAD" in str(app.session.w_status.render())
        await pilot.press("R")
        wait_for(lambda: conductor_state(waiting_session).get("pid") not in (None, old_pid)
                 and conductor_state(waiting_session).get("state") == "waiting", what="a new conductor")
        await settle(pilot, lambda: not app.session.w_status.dead)
    os.kill(conductor_state(waiting_session)["pid"], signal.SIGTERM)


async def test_no_color_is_honoured(waiting_session: Path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = console(waiting_session)
    async with app.run_test(size=(80, 24)):
        assert app.no_color


async def test_corrupt_and_torn_lines_are_counted_and_shown_never_crash(waiting_session: Path):
    app = console(waiting_session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: app.session.view.conversation)
        with open(waiting_session / "conversation.jsonl", "a") as fh:
            fh.write("{this is not json}\n")
        await settle(pilot, lambda: app.session.view.bad_lines == 1)
        assert "corrupt lines skipped: 1" in str(app.session.w_status.render())
        seen = len(app.session.view.conversation)
        with open(waiting_session / "audit.jsonl", "a") as fh:
            fh.write('{"v": 1, "kind": "audit", "sess')  # a torn last line: waits for its end
        await pilot.pause(0.5)
        assert app.session.view.bad_lines == 1 and app.is_running and len(app.session.view.conversation) == seen


async def test_the_review_shows_a_trader_strategys_own_parameters_with_their_bounds(tmp_path: Path):
    from tests.test_strategies import strategy_file

    path = strategy_file(tmp_path, "mean_cross_review")
    sessions = tmp_path / "sessions"
    out = cli("run", "--headless", "--segments", "1", "--tests", "40", "--seed", "5", "--approval", "manual",
              "--strategy", str(path), "--sessions-dir", str(sessions), "--workers", "1",
              env={"MAESTRO_CRASH_AT": "segment_start", **EAGER_RULES})
    assert out.returncode == -signal.SIGKILL, out.stderr
    session = find_session(sessions)
    proc = cli_background("conduct", str(session))
    try:
        wait_for(lambda: conductor_state(session).get("state") == "waiting" and pending_plans(session),
                 what="a pending plan")
        plan = first_pending(session)
        app = console(session)
        async with app.run_test(size=(160, 48)) as pilot:
            await open_review(app, pilot, plan["plan_id"])
            shown = str(app.screen.query_one("#strategy").render())
            assert shown.startswith(f"strategy mean_cross_review  {path}"), shown
            assert "n 20  [5 … 200], max step 10 bars  mean length" in shown, shown
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
