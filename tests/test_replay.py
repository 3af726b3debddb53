"""Replay: the console fed by a recorded session's files on a virtual clock.

The recorded session is real: a manual-approval conductor whose plans this module decides
(approve, veto, edit) while it runs. Every check rebuilds what the console showed at a
moment straight from the files — records stamped at or before it, test folders in place
by then — with the engine's own readers and `standings`, not through the replay's feed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.approval import record_decision
from engine.jsonl import SessionFileError, read_json, read_jsonl
from engine.leaderboard import read_leaderboard_csv
from engine.session import SCORES, SessionDir
from engine.session import test_folders as folders_of  # not test_*: pytest would collect it
from engine.standings import standings
from maestro_tui.app import MaestroApp, console
from maestro_tui.widgets.panes import AllocationTable, Conversation, EpisodesTable, LeaderboardTable, PlansTable
from tests.sessions import EAGER_RULES, cli, cli_background, conductor_state, find_session, pending_plans, wait_for

pytestmark = pytest.mark.slow  # every test replays a recorded session or records one

KINDS = ("approve", "veto", "edit")


def decide_every_plan(session: Path, proc, decided: list[str]) -> None:
    """Decide each plan as it comes, approve / veto / edit in turn, until the conductor ends."""
    while proc.poll() is None:
        for plan in sorted(pending_plans(session), key=lambda p: p["plan_id"]):
            if plan["plan_id"] in decided:
                continue
            kind = KINDS[len(decided) % 3]
            item = plan["patch"][0]
            edits = {item["parameter"]: str(item["new_value"]).lower()} if kind == "edit" else None
            record_decision(session, plan["plan_id"], kind, edits, by="test@replay", note="from the replay test")
            decided.append(plan["plan_id"])
        time.sleep(0.05)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A finished two-segment session whose plans were decided by a human (this test) while it ran."""
    sessions = tmp_path_factory.mktemp("replay")
    proc = cli_background("run", "--headless", "--segments", "2", "--tests", "24", "--seed", "5",
                          "--approval", "manual", "--workers", "2", "--sessions-dir", str(sessions), env=EAGER_RULES)
    session = wait_for(lambda: find_session(sessions), what="the session folder")
    decided: list[str] = []
    decide_every_plan(session, proc, decided)
    assert proc.returncode == 0, proc.stderr.read()
    assert len(decided) >= 3, "the session needs plans of each decision kind"
    assert conductor_state(session)["state"] == "finished"
    return session


# ---------------------------------------------------------------- the session rebuilt from its files


def seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass
class Expected:
    plans: dict[str, str]  # plan_id -> status
    allocation: dict[str, str]  # strategy -> mode
    overrides: int
    conversation: list[dict]
    board: list[tuple[str, int, int, int]]  # config_id, rank, tests, val pnl (rounded) in rank order
    tests: int
    newest_episode: str | None  # "test_id:episode_id" of the last episode written
    hit: float  # the research config's trade-weighted hit over the last 10 tests (0 without trades)
    trades: int  # its validation trades over those tests


def rebuild(session: Path, moment: float) -> Expected:
    """What happened by `moment` (seconds): records stamped at or before it, test folders in place by then."""

    def upto(name: str) -> list[dict]:
        return [r for r in read_jsonl(session / name).records if seconds(r["emitted_at"]) <= moment]

    plans: dict[str, str] = {}
    for r in upto("plans.jsonl"):
        plans[r["plan_id"]] = r["status"]
    allocation, overrides = {}, 0
    for r in upto("allocation.jsonl"):
        if r.get("override"):
            overrides += 1
        else:
            allocation[r["strategy"]] = r["mode"]
    folders = sorted((f for _, _, f in folders_of(SessionDir(session)) if f.stat().st_mtime <= moment),
                     key=lambda f: f.stat().st_mtime)
    per_test = [read_leaderboard_csv(f / "leaderboard_base.csv") for f in folders]
    board = [(s.config_id, s.rank, s.tests, round(s.val_pnl)) for s in standings([r for t in per_test for r in t])]
    research = []
    for rows in per_test:
        row = next((r for r in rows if r.role == "chosen"), None) or next((r for r in rows if r.role == "ensemble"), None)
        if row is not None:
            research.append(row)
    recent = research[-10:]
    trades = sum(r.val_trades for r in recent)
    newest = None
    if folders:
        scores = read_jsonl(folders[-1] / SCORES).records
        newest = f"{scores[-1]['test_id']}:{scores[-1]['episode_id']}" if scores else None
    return Expected(plans, allocation, overrides, upto("conversation.jsonl"), board, len(folders), newest,
                    sum(r.val_hit * r.val_trades for r in recent) / trades if trades else 0.0, trades)


def plan_statuses(plans: PlansTable) -> dict[str, str]:
    """plan_id -> status, as the plans pane shows them (a plan's id over its status)."""
    return {key: str(plans.cell_of(key, "plan")).split("\n")[1] for key in plans.keys}


def allocation_modes(alloc: AllocationTable) -> dict[str, str]:
    """strategy -> mode as the allocation pane shows them, but for families not rated yet (ACTIVE, no record)."""
    return {key: str(alloc.cell_of(key, "mode")) for key in alloc.keys if key != "__systemic__"}


def assert_modes(alloc: AllocationTable, want: dict[str, str]) -> None:
    modes = allocation_modes(alloc)
    assert {k: v for k, v in modes.items() if k in want} == want
    assert all(modes[k] == "ACTIVE" and str(alloc.cell_of(k, "since")) == "start" for k in modes.keys() - want.keys())


def assert_panes_show(app: MaestroApp, want: Expected) -> None:
    """Each pane of the replay console against the rebuilt session."""
    plans = app.query_one(PlansTable)
    assert plan_statuses(plans) == want.plans

    board = app.query_one(LeaderboardTable)
    rows = [(key, *(int(str(board.cell_of(key, c)).replace(",", "")) for c in ("rank", "tests", "val pnl")))
            for key in board.keys]
    assert rows == want.board

    alloc = app.query_one(AllocationTable)
    assert_modes(alloc, want.allocation)
    assert ("__systemic__" in alloc.keys) == (want.overrides > 0)

    lines = list(app.query_one(Conversation).lines)
    assert len(lines) == len(want.conversation)
    for line, message in zip(lines, want.conversation):
        assert message["agent"] in line and message["text"] in line

    episodes = app.query_one(EpisodesTable)
    first = episodes.keys[0] if episodes.keys else None
    assert first == want.newest_episode

    assert app.session.view.tests_seen == want.tests
    targets = str(app.session.w_targets.content)
    if app.session.view.config is None:  # before the session's config: nothing to measure against
        assert targets == ""
    else:
        hit = next(line for line in targets.split("\n") if line.startswith("hit "))
        assert hit.split()[1] == (f"{want.hit:.3f}" if want.trades else "—"), targets


# ---------------------------------------------------------------- jumps and seeks


async def test_at_every_plan_and_decision_each_pane_shows_the_session_as_it_stood(recorded: Path):
    decisions = read_jsonl(recorded / "decisions.jsonl").records
    assert {d["decision"] for d in decisions} == set(KINDS)
    app = console(recorded, replay=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        assert app.feed.position == len(app.feed.timeline)  # a replay opens at the end: how it came out
        assert_panes_show(app, rebuild(recorded, app.feed.end))
        await pilot.press("g")
        assert_panes_show(app, rebuild(recorded, app.feed.first))  # at the start: the config, nothing else
        seen_decisions, visited = 0, []
        while True:  # ] through every plan and decision line, forwards
            before = app.feed.position
            await pilot.press("right_square_bracket")
            if app.feed.position == before:
                break
            assert app.feed.position in app.feed.plan_marks
            moment = app.feed.clock
            visited.append(app.feed.position)
            want = rebuild(recorded, moment)
            assert_panes_show(app, want)
            seen_decisions = sum(1 for d in decisions if seconds(d["emitted_at"]) <= moment)
        assert seen_decisions == len(decisions) and len(visited) == len(app.feed.plan_marks)
        # a decision's verdict is on screen at its mark: applied, edited or vetoed as the human said
        final = dict(rebuild(recorded, app.feed.end).plans)
        for d in decisions:
            assert final[d["plan_id"]] == {"approve": "applied", "edit": "edited", "veto": "vetoed"}[d["decision"]]
        for mark in reversed(visited[:-1]):  # [ back through them: the view is rebuilt, not patched
            await pilot.press("left_square_bracket")
            assert app.feed.position == mark
            assert_panes_show(app, rebuild(recorded, app.feed.clock))


async def test_segments_start_and_end(recorded: Path):
    app = console(recorded, replay=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("G")
        assert app.feed.position == len(app.feed.timeline)
        assert_panes_show(app, rebuild(recorded, app.feed.end))
        assert app.session.view.tests_seen == 48
        await pilot.press("g")
        assert app.feed.position == 0 and app.session.view.tests_seen == 0 and not app.session.view.plans
        first, second = str(app.session.w_status.render()).split("\n")  # before any file: the state and the session's name
        assert first.startswith(" REPLAY   recorded session: finished") and second.startswith(recorded.name), (first, second)
        await pilot.press("right_curly_bracket")  # the first test of segment 1
        assert app.session.view.research[-1].test_id.startswith("seg1_") and app.session.view.tests_seen >= 1
        await pilot.press("right_curly_bracket")  # ... of segment 2
        assert app.session.view.research[-1].test_id.startswith("seg2_")
        assert_panes_show(app, rebuild(recorded, app.feed.clock))
        await pilot.press("right_curly_bracket")  # no third segment: stays, and says so
        assert app.session.view.research[-1].test_id.startswith("seg2_")
        await pilot.press("left_curly_bracket")
        assert all(r.test_id.startswith("seg1_") for r in app.session.view.research)
        assert_panes_show(app, rebuild(recorded, app.feed.clock))
        status = str(app.session.w_status.render())
        assert "REPLAY" in status and "recorded session: finished" in status and "/s" not in status  # no rate, no ETA


async def test_play_releases_items_at_the_chosen_speed_and_pause_holds(recorded: Path):
    app = console(recorded, replay=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("g")
        assert app.feed.speed == 10
        await pilot.press("minus", "minus")
        assert app.feed.speed == 1  # ×1 is the slowest
        started = time.monotonic()
        await pilot.press("space")
        assert app.feed.playing
        await pilot.pause(0.6)
        await pilot.press("space")
        took = time.monotonic() - started
        assert not app.feed.playing
        played = app.feed.clock - app.feed.first
        # ×1: the clock moved as the wall clock did while playing, at the ticks (every 0.2 s) between the two
        # presses: some of the 0.6 s waited, never more than the presses took (longer on a loaded machine)
        assert 0.2 <= played <= took, (played, took)
        assert app.feed.position >= 1
        held = app.feed.position
        await pilot.pause(0.5)
        assert app.feed.position == held  # paused: nothing more is released
        await pilot.press("g")  # back to the start: a fast session's timeline may be over by now at ×1
        await pilot.press("p")  # the console's pause key plays and pauses here too
        assert app.feed.playing
        await pilot.press("p")
        assert not app.feed.playing
        held = app.feed.position
        assert all(s.at <= app.feed.clock for s in app.feed.timeline[:held])
        assert all(s.at > app.feed.clock for s in app.feed.timeline[held:])
        assert_panes_show(app, rebuild(recorded, app.feed.clock))
        await pilot.press("plus")
        assert app.feed.speed == 10
        for _ in range(4):
            await pilot.press("plus")
        assert app.feed.speed == float("inf")  # and no further
        await pilot.press("space")
        for _ in range(100):
            await pilot.pause(0.05)
            if not app.feed.playing:
                break
        assert app.feed.position == len(app.feed.timeline) and app.session.view.tests_seen == 48
        assert_panes_show(app, rebuild(recorded, app.feed.end))


# ---------------------------------------------------------------- sessions that are not whole


async def test_an_interrupted_session_replays_up_to_where_it_stopped(tmp_path: Path):
    out = cli("run", "--headless", "--segments", "2", "--tests", "12", "--seed", "3", "--sessions-dir", str(tmp_path),
              env={"MAESTRO_CRASH_AT": "after_test:17"})
    assert out.returncode == -signal.SIGKILL, out.stderr
    session = find_session(tmp_path)
    with open(session / "conversation.jsonl", "a") as fh:  # the crash cut a line short
        fh.write('{"v": 1, "kind": "conversation", "agent": "crit')
    app = console(session, replay=True)
    assert app.feed.recorded == "interrupted"
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("G")
        folders = folders_of(SessionDir(session))
        assert app.session.view.tests_seen == len(folders) == 17
        assert_panes_show(app, rebuild(session, app.feed.end))
        status = str(app.session.w_status.render())
        assert "recorded session: interrupted" in status
        assert app.session.view.bad_lines == 1 and "torn last line" in app.session.view.bad_details[-1]
        assert "corrupt lines skipped: 1" in status
    # `ls` ranks what an interrupted session has done so far
    best = standings([r for _, _, f in folders_of(SessionDir(session)) for r in read_leaderboard_csv(f / "leaderboard_base.csv")])[0]
    out = cli("ls", "--sessions-dir", str(tmp_path))
    line = next(line for line in out.stdout.splitlines() if session.name in line)
    assert "interrupted" in line and f"{best.label}: hit {best.val_hit:.3f}" in line and line.endswith("(so far)"), line


async def test_corrupt_lines_and_files_are_skipped_counted_and_named(recorded: Path, tmp_path: Path):
    session = tmp_path / recorded.name
    shutil.copytree(recorded, session)
    plans = (session / "plans.jsonl").read_text().splitlines(keepends=True)
    plans.insert(2, "{not json at all\n")
    (session / "plans.jsonl").write_text("".join(plans))
    with open(session / "allocation.jsonl", "a") as fh:
        fh.write('{"v": 1, "kind": "allocation", "emitted_at": "2026-01-01T00:00:00Z"}\n')  # JSON, but no strategy
        fh.write("\x00\x00\x00\n")
    broken = folders_of(SessionDir(session))[5][2]
    (broken / "leaderboard_base.csv").write_text("test_id,rank\nnonsense\n")
    app = console(session, replay=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        told = " ".join(str(n.message) for n in app._notifications)
        assert "skipped 4 unreadable lines" in told  # the replay opens at the end: every bad line is behind
        assert any("plans.jsonl line 3" in d for d in app.session.view.bad_details)
        assert any("allocation.jsonl line 11: invalid JSON" in d for d in app.session.view.bad_details)
        assert any(f"{broken.name}/leaderboard_base.csv" in d for d in app.session.view.bad_details)
        await pilot.press("G")
        assert app.is_running and app.session.view.tests_seen == 48 and app.session.view.tests_failed == 1
        assert app.session.view.bad_lines == 4  # the JSON line without a strategy was refused by its model on reading
        assert any("allocation.jsonl line 10: session_id: Field required" in d for d in app.session.view.bad_details)
        assert "corrupt lines skipped: 4" in str(app.session.w_status.render())
        # the rest is shown as the files say: plans and allocation as recorded, the one test's rows missing
        want = rebuild(recorded, app.feed.end)
        assert plan_statuses(app.query_one(PlansTable)) == want.plans
        assert_modes(app.query_one(AllocationTable), want.allocation)
        lost = {r.config_id for r in read_leaderboard_csv(recorded / broken.relative_to(session) / "leaderboard_base.csv")}
        table = app.query_one(LeaderboardTable)
        board = {key: int(str(table.cell_of(key, "tests"))) for key in table.keys}
        for cid, _, tests, _ in want.board:
            assert board.get(cid, 0) == tests - (cid in lost), cid
        await pilot.press("g")
        assert app.session.view.bad_lines == 4  # what the files hold stays counted, seek or no seek
        assert "corrupt lines skipped: 4" in str(app.session.w_status.render())


@pytest.mark.parametrize(("v", "says"), [(0, "schema version v=0: this session was written by an older"),
                                         (None, 'no schema version ("v"): this session was written by an older'),
                                         (2, "schema version v=2: this session was written by a newer")])
def test_a_session_of_another_schema_version_is_refused_with_a_clear_message(recorded: Path, tmp_path: Path, v, says):
    session = tmp_path / recorded.name
    shutil.copytree(recorded, session)
    config = read_json(session / "session_config.json")
    if v is None:
        del config["v"]
    else:
        config["v"] = v
    (session / "session_config.json").write_text(json.dumps(config))
    out = cli("replay", str(session))
    assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert "reads v=1" in out.stderr and str(session / "session_config.json") in out.stderr
    with pytest.raises(SessionFileError, match="schema version"):
        console(session, replay=True)


async def test_a_running_session_replays_and_its_timeline_grows_as_it_goes_on(tmp_path: Path):
    proc = cli_background("run", "--headless", "--segments", "1", "--tests", "24", "--seed", "5",
                          "--approval", "manual", "--workers", "1", "--sessions-dir", str(tmp_path), env=EAGER_RULES)
    try:
        session = wait_for(lambda: find_session(tmp_path), what="the session folder")
        plan = wait_for(lambda: conductor_state(session).get("state") == "waiting" and pending_plans(session),
                        what="a pending plan")[0]
        app = console(session, replay=True)
        assert app.feed.recorded == "waiting" and app.feed.live
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.2)
            await pilot.press("G")
            before = len(app.feed.timeline)
            assert app.session.view.plans[plan["plan_id"]].status == "pending"
            approved: set[str] = set()
            for _ in range(1200):  # approve each plan as it comes; the replay reads the folder every 2 s meanwhile
                for pending in pending_plans(session):
                    if pending["plan_id"] not in approved:
                        record_decision(session, pending["plan_id"], "approve", by="test@replay")
                        approved.add(pending["plan_id"])
                await pilot.pause(0.1)
                if proc.poll() is not None and app.feed.recorded == "finished" and len(app.feed.timeline) > before:
                    break
            assert proc.returncode == 0
            assert len(app.feed.timeline) > before and app.feed.recorded == "finished"
            await pilot.press("G")
            assert app.session.view.tests_seen == 24
            assert app.session.view.plans[plan["plan_id"]].status == "applied"
            assert_panes_show(app, rebuild(session, app.feed.end))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
