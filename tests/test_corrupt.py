"""A corrupt-session corpus through every reader: ls, report, resume, replay and attach.

Each case damages a copy of a real session the way a torn write, a bad disk, a hand edit or
an attacker would. Every command must answer with its normal output or one line and exit 2
(1 for a session that failed while running) — never a traceback — and must not rewrite a
finished session (report rewrites only its own reports).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from maestro_tui.app import console
from tests.sessions import EAGER_RULES, cli, only_session, snapshot

pytestmark = pytest.mark.slow  # every case damages a finished session and runs the CLI or the console on it

REPORTS = {"session_summary.md", "metrics_global.json", "plan_after_segment_2.md", "plan_after_segment_4.md",
           "equity.png", "targets.png", "allocation.png"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("finished")
    out = cli("run", "--headless", "--segments", "2", "--tests", "12", "--seed", "11", "--sessions-dir", str(where),
              env=EAGER_RULES)
    assert out.returncode == 0, out.stderr
    session = only_session(where)
    assert (session / "plans.jsonl").exists(), "the corpus needs plans to damage"
    return session


def first_record(path: Path) -> dict:
    return json.loads(path.read_text().splitlines()[0])


def append_line(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def wrong_types(name: str) -> Callable[[Path], None]:
    """A line of `name` that parses as JSON but holds every value in the wrong type."""
    def damage(session: Path) -> None:
        path = next(session.rglob(name))
        rec = first_record(path)
        flipped = {k: ([v] if isinstance(v, str) else "x" if isinstance(v, (int, float, bool)) else 7)
                   for k, v in rec.items()}
        flipped["v"] = 1
        append_line(path, json.dumps(flipped))
    return damage


def missing_fields(name: str) -> Callable[[Path], None]:
    def damage(session: Path) -> None:
        path = next(session.rglob(name))
        append_line(path, json.dumps({"v": 1, "kind": first_record(path).get("kind", "x")}))
    return damage


def bad_ids(session: Path) -> None:
    plans = session / "plans.jsonl"
    rec = first_record(plans)
    append_line(plans, json.dumps({**rec, "plan_id": "P1-", "test_id": "seg1_testXYZ"}))
    append_line(plans, json.dumps({**rec, "plan_id": "../../etc", "test_id": "seg99_test001"}))
    audit = session / "audit.jsonl"
    append_line(audit, json.dumps({**first_record(audit), "plan_id": "P9-x", "details": {"segment": "two"}}))


def nested_line(session: Path) -> None:
    for name in ("plans.jsonl", "conversation.jsonl", "audit.jsonl", "decisions.jsonl", "allocation.jsonl"):
        append_line(session / name, "[" * 200_000 + "]" * 200_000)


def garbage(name: str, content: str) -> Callable[[Path], None]:
    def damage(session: Path) -> None:
        for path in list(session.rglob(name)) or [session / name]:
            path.write_text(content)
    return damage


def reused_pid(session: Path) -> None:
    state = json.loads((session / "conductor.json").read_text())
    state.update(state="running", pid=1)  # init: alive, but no conductor
    (session / "conductor.json").write_text(json.dumps(state))


CASES: dict[str, Callable[[Path], None]] = {
    **{f"wrong-types-{n}": wrong_types(n) for n in ("plans.jsonl", "audit.jsonl", "conversation.jsonl",
                                                     "allocation.jsonl", "trades.jsonl", "scores.jsonl")},
    **{f"missing-fields-{n}": missing_fields(n) for n in ("plans.jsonl", "audit.jsonl", "conversation.jsonl",
                                                          "allocation.jsonl", "scores.jsonl")},
    "bad-ids": bad_ids,
    "nested-line": nested_line,
    "garbage-conductor-json": garbage("conductor.json", "{not json"),
    "conductor-json-a-list": garbage("conductor.json", "[1, 2]"),
    "garbage-segment-plan": garbage("segment_plan.json", "{\"segment\": \"one\"}"),
    "garbage-segment-results": garbage("segment_results.json", "nonsense"),
    "garbage-leaderboard": garbage("leaderboard_base.csv", "rank,config\n1,\"unclosed\n"),
    "garbage-metrics-global": garbage("metrics_global.json", "{\"best\": 5}"),
    "reused-pid": reused_pid,
}


def damaged(finished: Path, tmp_path: Path, case: str) -> Path:
    session = tmp_path / "sessions" / finished.name
    shutil.copytree(finished, session)
    CASES[case](session)
    return session


def assert_one_line_at_most(out) -> None:
    assert "Traceback" not in out.stderr + out.stdout, out.stderr[-2000:]
    assert out.returncode in (0, 2), (out.returncode, out.stderr)
    assert len(out.stderr.strip().splitlines()) <= 1, out.stderr


def kept(before: dict, session: Path, also: set[str] = frozenset()) -> None:
    after = snapshot(session)
    for name in set(before) | set(after):
        if name in REPORTS | also:
            continue
        assert before.get(name) == after.get(name), f"{name} was rewritten"


@pytest.mark.parametrize("case", sorted(CASES))
def test_ls_and_report_answer_in_one_line_and_rewrite_nothing_else(finished: Path, tmp_path: Path, case: str):
    session = damaged(finished, tmp_path, case)
    before = snapshot(session) if case != "nested-line" else None
    listing = cli("ls", "--sessions-dir", str(session.parent))
    assert_one_line_at_most(listing)
    assert listing.returncode == 0 and session.name in listing.stdout
    report = cli("report", str(session))
    assert_one_line_at_most(report)
    if before is not None:
        kept(before, session)


@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_never_turns_a_damaged_session_into_a_traceback_or_a_failed_one(finished: Path, tmp_path: Path, case: str):
    session = damaged(finished, tmp_path, case)
    state = session / "conductor.json"
    interrupted = json.loads(state.read_text()) if case not in ("garbage-conductor-json", "conductor-json-a-list") else None
    if interrupted is not None:  # make it resumable: a conductor that died mid-run
        interrupted.update(state="running", pid=2 ** 22 + 7)
        state.write_text(json.dumps(interrupted))
    out = cli("run", "--resume", str(session))
    assert "Traceback" not in out.stderr + out.stdout, out.stderr[-2000:]
    assert out.returncode in (0, 2), (out.returncode, out.stderr)
    assert len(out.stderr.strip().splitlines()) <= 1, out.stderr
    if out.returncode == 0:
        assert json.loads(state.read_text())["state"] == "finished"
    else:
        assert "cannot resume" in out.stderr or "conductor.json" in out.stderr
        if interrupted is not None:
            assert json.loads(state.read_text())["state"] != "failed", "an unreadable record made the session 'failed'"


@pytest.mark.parametrize("case", sorted(CASES))
async def test_replay_and_attach_show_a_damaged_session_without_crashing(finished: Path, tmp_path: Path, case: str):
    session = damaged(finished, tmp_path, case)
    for app in (console(session, replay=True), console(session, read_only=True)):
        async with app.run_test(size=(160, 48)) as pilot:
            for key in ("g", "G", "]", "[", "1", "enter", "escape", "c"):
                await pilot.press(key)
            await pilot.pause()
            assert app.is_running
