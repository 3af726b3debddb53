"""The console's view of a session: lines arrive as their event models, documents through typed readers."""

from __future__ import annotations

from pathlib import Path

from engine.events import PatchItem, PlanEvent, ScoreEvent, event_to_json
from maestro_tui import state  # state.TestDone: a name pytest would try to collect
from maestro_tui.ingest import SessionFeed
from maestro_tui.state import ConductorStatus, Item, SessionConfig, SessionView

BASE = {"session_id": "session_2026-11-21_1405", "emitted_at": "2026-11-21T14:05:00.123Z"}


def a_plan(plan_id: str = "P1-001") -> PlanEvent:
    patch = [PatchItem(parameter="atr_stop_mult", old_value=1.5, new_value=1.8)]
    return PlanEvent(**BASE, plan_id=plan_id, nonce="n1", episode_id=10, test_id="seg1_test010", agent="maestro",
                     action="adjust", change=PlanEvent.change_from_patch(patch), patch=patch, reason="hit < 0.48",
                     evidence={"hit": 0.41}, status="pending")


def fold(root: Path) -> SessionView:
    feed = SessionFeed(root)
    feed.scan(final=True)
    view = SessionView()
    for item in feed.drain(1000):
        view.apply(item)
    return view


def test_each_line_reaches_the_view_as_its_event_model_and_a_line_breaking_it_is_counted_once(tmp_path: Path):
    broken = event_to_json(a_plan("P1-002")).replace('"P1-002"', '"not-a-plan-id"')
    (tmp_path / "plans.jsonl").write_text(event_to_json(a_plan()) + "\n" + broken + "\n")
    view = fold(tmp_path)
    assert view.plan_order == ["P1-001"] and isinstance(view.plans["P1-001"], PlanEvent)
    assert view.pending() == [a_plan()]
    assert view.bad_lines == 1 and list(view.bad_details) == [
        "plans.jsonl line 2: plan_id: String should match pattern '^P[1-9][0-9]*-[0-9]{3,}$'"
    ]


def test_a_test_whose_scores_cannot_be_read_is_counted_as_bad_where_the_view_reads_them(tmp_path: Path):
    unreadable = tmp_path / "scores.jsonl"
    unreadable.mkdir()  # a folder where the file should be: the OS refuses to read it
    view = SessionView()
    view.apply(Item("test", state.TestDone("seg1_test001", [], scores_path=unreadable)))
    assert view.bad_lines == 1 and "a test record skipped" in view.bad_details[-1]
    assert str(unreadable) in view.bad_details[-1]


def test_a_batch_reads_the_episodes_of_its_last_tests_only_newest_last(tmp_path: Path):
    """A console opened on a long session gets hundreds of tests in one batch: it reads the episodes of the
    newest (state.EPISODE_TESTS), which the pane shows, and never opens the others' scores.jsonl."""
    items = []
    for n in range(1, 31):
        folder = tmp_path / f"seg1_test{n:03d}"
        folder.mkdir()
        if n <= 30 - state.EPISODE_TESTS:
            (folder / "scores.jsonl").mkdir()  # unreadable: reading it would count a bad line
        else:
            (folder / "scores.jsonl").write_text("".join(event_to_json(ScoreEvent(
                **BASE, episode_id=e, test_id=folder.name, bars=120, n_trades=1, hit=1.0, payoff=2.0, total_pnl=5.0,
                maxdd=-1.0, blunders=0, score=50.0, vol_regime="mid", phase="validation")) + "\n" for e in (1, 2)))
        items.append(Item("test", state.TestDone(folder.name, [], scores_path=folder / "scores.jsonl")))
    view = SessionView()
    view.fold(items)
    assert view.tests_seen == 30 and view.bad_lines == 0
    shown = [f"{s.test_id}:{s.episode_id}" for s in view.episodes]
    assert shown == [f"seg1_test{n:03d}:{e}" for n in range(31 - state.EPISODE_TESTS, 31) for e in (1, 2)]


def test_the_session_config_reads_what_it_holds_and_defaults_the_rest():
    config = SessionConfig.of({"session_id": "s1", "settings": {"segments": 2, "tests": "8", "targets": {"hit_min": 0.6}},
                               "windows": {"available": 3}})
    assert config.present and config.session_id == "s1" and config.segments == 2
    assert config.tests == 0  # not a number: as if it were not there
    assert config.approval == "?" and config.targets == {"hit_min": 0.6} and dict(config.agents) == {}
    assert config.windows is None and config.baseline is None  # not the shape agents.documents writes
    assert not SessionConfig.of(None).present and SessionConfig.of(None).targets == {}


def test_a_conductor_state_of_another_shape_shows_what_it_can_and_is_not_called_dead():
    status = ConductorStatus.of({"state": "running", "pid": "12", "tests_done": 4, "llm": {"calls": 3}})
    assert status.present and status.state == "running" and status.pid is None
    assert status.tests_done == 4 and status.tests_total == 0 and status.llm_calls == 3
    assert status.alive()  # not a whole ConductorState: unknown, which the status bar shows as alive
    assert ConductorStatus.of(None).state == "starting" and ConductorStatus.of(None).tests_done is None
