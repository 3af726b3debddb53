"""The status bar at 80×24: the state first and whole, rate and ETA only while tests run.

The session is a folder with a session config and a conductor.json written by the test:
the console reads the state from that file whoever wrote it.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from agents.session_start import new_session_config
from agents.settings import Settings
from engine.events import utc_now_iso
from engine.jsonl import write_json_atomic
from engine.session import CONFIG, ConductorState, SessionDir, write_conductor_state
from maestro_tui.app import MaestroApp, console
from maestro_tui.widgets.status import StatusBar


def session_in(tmp_path: Path, state: str, **fields) -> Path:
    """A session folder whose conductor.json says `state` (a live one on another host: its heartbeat is now)."""
    root = tmp_path / "session_2026-01-02_0304"
    root.mkdir()
    session = SessionDir(root)
    settings = Settings(segments=2, tests=10, seed=3, workers=1, sessions_dir=tmp_path)
    write_json_atomic(session.file(CONFIG), new_session_config(session, settings, "manual"))
    now = utc_now_iso()
    doc = dict(session_id=root.name, pid=1, host="another-host", state=state, heartbeat=now, started_at=now,
               segment=1, segments=2, tests_done=10, tests_total=20, approval="manual",
               providers={"strategist": "offline (no API key)", "critic": "offline (no API key)"})
    write_conductor_state(session, ConductorState(**{**doc, **fields}))
    assert socket.gethostname() != "another-host"
    return root


async def status_lines(app: MaestroApp, pilot, says: str) -> list[str]:
    """The status bar's lines once its first says `says` (waits up to 20 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        lines = str(app.query_one(StatusBar).render()).split("\n")
        if says in lines[0] or loop.time() > deadline:
            return lines
        await pilot.pause(0.05)


@pytest.mark.parametrize(("state", "fields", "first"), [
    ("waiting", {"waiting_for": "decision on plan P3-018"}, " WAITING   decision on plan P3-018  tests 10/20"),
    ("finished", {"tests_done": 20, "segment": 2}, " FINISHED   tests 20/20  seg 2/2"),
    ("failed", {"error": "the data file vanished: /data/btc.csv"},
     " FAILED   the data file vanished: /data/btc.csv  tests 10/20  seg 1/2"),
    ("paused", {}, " PAUSED   tests 10/20  seg 1/2"),
    ("starting", {"waiting_for": "compiling the backtest kernels", "tests_done": 0, "segment": 0},
     " STARTING   compiling the backtest kernels  tests 0/20  seg 0/2"),
])
async def test_the_state_starts_the_first_line_at_80x24_whole_and_unwrapped(tmp_path: Path, state, fields, first):
    app = console(session_in(tmp_path, state, **fields))
    async with app.run_test(size=(80, 24)) as pilot:
        lines = await status_lines(app, pilot, first.split()[0])
        assert len(lines) == 2 and all(len(line) <= 78 for line in lines), lines
        assert lines[0].startswith(first), lines
        assert lines[1].startswith("session_2026-01-02_0304  approval:manual"), lines
        assert "/s" not in lines[0] and "ETA" not in lines[0]  # no tests run: no rate, no ETA


async def test_a_long_failure_reason_is_cut_at_the_end_never_wrapped(tmp_path: Path):
    app = console(session_in(tmp_path, "failed", error="the worker pool broke: " + "x" * 200))
    async with app.run_test(size=(80, 24)) as pilot:
        lines = await status_lines(app, pilot, "FAILED")
        assert lines[0].startswith(" FAILED   the worker pool broke: xxx") and lines[0].endswith("…"), lines
        assert len(lines[0]) == 78


async def test_rate_and_eta_show_while_tests_run_and_go_when_they_stop(tmp_path: Path):
    root = session_in(tmp_path, "running", tests_done=2)
    app = console(root)
    async with app.run_test(size=(160, 48)) as pilot:
        await status_lines(app, pilot, "RUNNING")
        doc = ConductorState.model_validate_json((root / "conductor.json").read_text())
        for done in range(3, 12):  # tests finishing, as the conductor says them
            write_conductor_state(SessionDir(root), doc.model_copy(update={"tests_done": done}))
            await pilot.pause(0.3)
        lines = await status_lines(app, pilot, "ETA")
        assert "tests/s ETA" in lines[0], lines
        write_conductor_state(SessionDir(root), doc.model_copy(update={"tests_done": 11, "state": "waiting",
                                                                        "waiting_for": "decision on plan P1-001"}))
        lines = await status_lines(app, pilot, "WAITING")
        assert lines[0].startswith(" WAITING") and "/s" not in lines[0] and "ETA" not in lines[0], lines


async def test_a_dead_conductor_says_R_resumes_and_a_read_only_attach_does_not(tmp_path: Path):
    root = session_in(tmp_path, "running", host=socket.gethostname(), pid=2**22 + 7)  # no such process
    for read_only, key in ((False, ", R resumes"), (True, "")):
        app = console(root, read_only=read_only)
        async with app.run_test(size=(80, 24)) as pilot:
            lines = await status_lines(app, pilot, "DEAD")
            assert lines[0].startswith(" DEAD   the conductor stopped without a word"), lines
            assert lines[0].endswith(key) if key else "R resumes" not in lines[0]


def test_the_console_on_a_failed_session_exits_1_with_the_reason(tmp_path: Path, monkeypatch, capsys):
    from maestro_tui import cli

    root = session_in(tmp_path, "failed", error="the data file vanished")
    monkeypatch.setattr(MaestroApp, "run", lambda self: None)  # the trader read the screen and quit
    assert cli.main(["attach", str(root)]) == 1
    assert "the session failed: the data file vanished" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    finished = session_in(tmp_path / "other", "finished")
    assert cli.main(["attach", str(finished)]) == 0
