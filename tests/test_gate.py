"""The human gate with real processes: deciding without the console, races, expiry, notifications.

Each test runs the real `maestro-tui` and conductor processes on short sessions whose rules
are on a hair trigger (EAGER_RULES), so plans come early; only the LLM APIs would be faked,
and here no LLM is used at all.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agents.approval import DecisionError, record_decision
from engine.jsonl import read_json, read_jsonl
from tests.sessions import (
    EAGER_RULES,
    ROOT,
    assert_same_sessions,
    cli,
    cli_background,
    conductor_state,
    find_session,
    only_session,
    pending_plans,
    wait_for,
)

pytestmark = pytest.mark.slow  # every test runs manual sessions through the CLI, many killed at each write

MANUAL = ("--segments", "1", "--tests", "40", "--seed", "5", "--approval", "manual", "--workers", "1")


def latest_plans(session: Path) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for rec in read_jsonl(session / "plans.jsonl").records:
        latest[rec["plan_id"]] = rec
    return latest


def stop(proc: subprocess.Popen) -> None:
    """Stop a conductor the way the console does (SIGTERM); one that does not stop in time is killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


@pytest.fixture(scope="module")
def waiting_template(tmp_path_factory) -> Path:
    """A session stopped (SIGKILL) while its first plan waits: copy it, run `conduct`, and it waits again."""
    sessions = tmp_path_factory.mktemp("template")
    proc = cli_background("run", "--headless", *MANUAL, "--sessions-dir", str(sessions), env=EAGER_RULES)
    session = wait_for(lambda: find_session(sessions), what="the session folder")
    wait_for(lambda: conductor_state(session).get("state") == "waiting" and pending_plans(session),
             what="a pending plan")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return session


def conducted_copy(template: Path, where: Path) -> tuple[Path, subprocess.Popen, dict]:
    """A copy of the template with its own conductor, once that waits at the pending plan."""
    session = where / template.name
    shutil.copytree(template, session, symlinks=True)
    (session / "conductor.json").unlink()
    proc = cli_background("conduct", str(session))
    plan = wait_for(lambda: conductor_state(session).get("pid") == proc.pid
                    and conductor_state(session).get("state") == "waiting" and pending_plans(session),
                    what="the conductor to wait at the plan")[0]
    return session, proc, plan


def decide_process(session: Path, plan_id: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "maestro_tui.cli", "decide", str(session), plan_id, *args, "--wait", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)


def test_two_deciders_racing_on_one_plan_one_wins_the_other_is_told_the_true_state(waiting_template: Path, tmp_path: Path):
    for round_ in range(20):
        session, conductor, plan = conducted_copy(waiting_template, tmp_path / f"race{round_}")
        try:
            go = [decide_process(session, plan["plan_id"], "approve"), decide_process(session, plan["plan_id"], "veto")]
            results = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in go]
            codes = sorted(code for code, _, _ in results)
            assert codes == [0, 2], results
            (_, won, _), = [r for r in results if r[0] == 0]
            (_, _, lost), = [r for r in results if r[0] == 2]
            assert won.startswith((f"{plan['plan_id']}: applied", f"{plan['plan_id']}: vetoed")), won
            # the loser hears the plan's true state: the winner's decision waiting, or its effect
            assert plan["plan_id"] in lost and ("already has a decision" in lost or " is applied" in lost
                                                or " is vetoed" in lost), lost
            assert len(lost.strip().splitlines()) == 1 and "Traceback" not in lost
            effects = [a["action"] for a in read_jsonl(session / "audit.jsonl").records
                       if a.get("plan_id") == plan["plan_id"] and a["action"] in ("patch_applied", "plan_vetoed")]
            assert len(effects) == 1, effects
            assert len(read_jsonl(session / "decisions.jsonl").records) == 1
        finally:
            stop(conductor)


def test_deciding_from_the_command_line(waiting_template: Path, tmp_path: Path):
    session, conductor, plan = conducted_copy(waiting_template, tmp_path)
    try:
        pid, (parameter,) = plan["plan_id"], [p["parameter"] for p in plan["patch"]]
        listing = cli("decide", str(session))
        assert listing.returncode == 0
        assert pid in listing.stdout and plan["reason"] in listing.stdout and "decide with: maestro-tui decide" in listing.stdout
        twice = cli("decide", str(session), pid, "edit", f"{parameter}=1", f"{parameter}=2")
        assert twice.returncode == 2 and "given twice" in twice.stderr
        other = "hard_tp_usd" if parameter != "hard_tp_usd" else "vhf_min"
        foreign = cli("decide", str(session), pid, "edit", f"{other}=500")
        assert foreign.returncode == 2 and f"changes {parameter}" in foreign.stderr
        assert len(foreign.stderr.strip().splitlines()) == 1
        with_values = cli("decide", str(session), pid, "approve", f"{parameter}=1")
        assert with_values.returncode == 2 and "edit only" in with_values.stderr
        assert not (session / "decisions.jsonl").exists() or not read_jsonl(session / "decisions.jsonl").records
        approved = cli("decide", str(session), pid, "approve", "--wait", "30")
        assert approved.returncode == 0 and approved.stdout.startswith(f"{pid}: applied"), approved.stdout + approved.stderr
        again = cli("decide", str(session), pid, "veto")
        assert again.returncode == 2 and f"{pid} is applied" in again.stderr
    finally:
        stop(conductor)


def test_headless_manual_mode_prints_each_pending_plan_with_the_command_to_decide_it(tmp_path: Path):
    proc = cli_background("run", "--headless", *MANUAL, "--sessions-dir", str(tmp_path), env=EAGER_RULES)
    try:
        session = wait_for(lambda: find_session(tmp_path), what="the session folder")
        plan = wait_for(lambda: conductor_state(session).get("state") == "waiting" and pending_plans(session),
                        what="a pending plan")[0]
    finally:
        stop(proc)
    out = proc.stdout.read()
    line = next(x for x in out.splitlines() if x.startswith(f"plan {plan['plan_id']} waits"))
    assert f"maestro-tui decide {session} {plan['plan_id']} approve|veto|edit" in line


def test_veto_only_applies_after_the_grace_and_a_finished_session_leaves_no_plan_pending(tmp_path: Path):
    quick = cli("run", "--headless", "--segments", "1", "--tests", "40", "--seed", "5", "--approval", "veto-only",
                "--sessions-dir", str(tmp_path / "quick"), env={**EAGER_RULES, "MAESTRO_VETO_GRACE_S": "0"})
    assert quick.returncode == 0, quick.stderr
    session = only_session(tmp_path / "quick")
    plans = latest_plans(session).values()
    assert plans and all(p["status"] in ("applied", "expired") for p in plans)
    assert any(p["status"] == "applied" for p in plans)
    graced = [a for a in read_jsonl(session / "audit.jsonl").records if a["action"] == "patch_applied"]
    assert graced and all(a["who"] == "maestro (veto-only grace period)" for a in graced)

    slow = cli("run", "--headless", "--segments", "1", "--tests", "40", "--seed", "5", "--approval", "veto-only",
               "--sessions-dir", str(tmp_path / "slow"), env={**EAGER_RULES, "MAESTRO_VETO_GRACE_S": "3600"})
    assert slow.returncode == 0, slow.stderr
    session = only_session(tmp_path / "slow")
    plans = list(latest_plans(session).values())
    assert plans and {p["status"] for p in plans} <= {"expired", "superseded"}
    expired = [p for p in plans if p["status"] == "expired"]
    assert expired and all(p["note"] == "the session finished inside its veto grace period" for p in expired)
    assert read_json(session / "conductor.json")["pending_plans"] == 0
    summary = (session / "session_summary.md").read_text()
    for p in expired:
        assert p["plan_id"] in summary
    assert "inside its veto grace period" in summary


# ---------------------------------------------------------------- notifications


class Receiver(http.server.ThreadingHTTPServer):
    """A local webhook receiver; with `hang`, every request blocks until `release` is set."""

    def __init__(self, hang: bool = False) -> None:
        self.payloads: list[dict] = []
        self.hang = hang
        self.release = threading.Event()
        self.arrived = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.payloads.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                outer.arrived.set()
                if outer.hang:
                    outer.release.wait(120)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook?token=abc"

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


def test_a_pending_plan_reaches_the_webhook_and_the_command_with_the_decide_command_and_no_key(tmp_path: Path):
    receiver = Receiver()
    got = tmp_path / "payloads.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(f"import sys\nopen({str(got)!r}, 'a').write(sys.stdin.read().strip() + '\\n')\n")
    sentinel = "sk-sentinel-0123456789abcdef"
    env = {**EAGER_RULES, "MAESTRO_NOTIFY__WEBHOOK_URL": receiver.url,
           "MAESTRO_NOTIFY__COMMAND": f"{sys.executable} {hook}", "OPENAI_API_KEY": sentinel,
           "MAESTRO_CRITIC__PROVIDER": "offline", "MAESTRO_STRATEGIST__PROVIDER": "offline"}
    proc = cli_background("run", "--headless", *MANUAL, "--sessions-dir", str(tmp_path / "s"), env=env)
    try:
        session = wait_for(lambda: find_session(tmp_path / "s"), what="the session folder")
        plan = wait_for(lambda: pending_plans(session), what="a pending plan")[0]
        wait_for(lambda: receiver.payloads and got.exists() and got.read_text().strip(), what="both hooks")
    finally:
        stop(proc)
        receiver.close()
    posted = receiver.payloads[0]
    assert posted["event"] == "plan_pending" and posted["plan_id"] == plan["plan_id"]
    assert posted["change"] == plan["change"] and posted["session_id"] == session.name
    assert f"maestro-tui decide {session} {plan['plan_id']}" in posted["decide"] and posted["text"] == posted["content"]
    assert json.loads(got.read_text().splitlines()[0])["plan_id"] == plan["plan_id"]
    everything = json.dumps(receiver.payloads) + got.read_text()
    for path in session.rglob("*"):
        if path.is_file():
            everything += path.read_text(errors="replace")
    assert sentinel not in everything and "token=abc" not in (session / "session_config.json").read_text()


def approve_until_done(session: Path, proc: subprocess.Popen) -> int:
    """Play a trader who approves every plan as soon as it shows; returns the conductor's exit code."""
    decided: set[str] = set()
    while proc.poll() is None:
        for plan in pending_plans(session):
            if plan["plan_id"] not in decided:
                decided.add(plan["plan_id"])
                try:
                    record_decision(session, plan["plan_id"], "approve", by="test@gate")
                except DecisionError:  # settled meanwhile (a veto-only grace, the session's end)
                    pass
        time.sleep(0.05)
    return proc.returncode


def manual_session(where: Path, env: dict[str, str]) -> Path:
    proc = cli_background("run", "--headless", *MANUAL, "--sessions-dir", str(where), env={**EAGER_RULES, **env})
    session = wait_for(lambda: find_session(where), what="the session folder")
    assert approve_until_done(session, proc) == 0, proc.stderr.read()
    return session


def test_failing_hooks_leave_the_sessions_results_unchanged_and_hold_nothing_up(tmp_path: Path):
    reference = manual_session(tmp_path / "ref", {})
    assert len(latest_plans(reference)) >= 2, "the test needs plans that notify"
    hanging = Receiver(hang=True)
    dead = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    refused_port = dead.server_address[1]
    dead.server_close()  # nothing listens there any more: connection refused
    slow_command = f"{sys.executable} -c 'import time; time.sleep(60)'"
    try:
        for name, url in (("hanging", hanging.url), ("refused", f"http://127.0.0.1:{refused_port}/hook")):
            session = manual_session(tmp_path / name, {"MAESTRO_NOTIFY__WEBHOOK_URL": url, "MAESTRO_NOTIFY__TIMEOUT_S": "10",
                                                       "MAESTRO_NOTIFY__COMMAND": slow_command})
            assert_same_sessions(reference, session)
            log = (session / "conductor.log").read_text()
            assert "notify:" in log and "token=" not in log
            if name == "hanging":
                # every plan was notified and decided while the first request still hung: nothing waited for it
                assert not hanging.release.is_set()
                notified = [p["plan_id"] for p in hanging.payloads if p["event"] == "plan_pending"]
                assert sorted(notified) == sorted(latest_plans(session))
    finally:
        hanging.close()


def test_a_vetoed_change_returns_only_on_fresh_evidence_and_says_it_was_vetoed(tmp_path: Path):
    proc = cli_background("run", "--headless", "--segments", "1", "--tests", "60", "--seed", "5", "--approval", "manual",
                          "--workers", "1", "--sessions-dir", str(tmp_path), env=EAGER_RULES)
    session = wait_for(lambda: find_session(tmp_path), what="the session folder")
    vetoed: set[str] = set()
    while proc.poll() is None:  # the trader vetoes everything
        for plan in pending_plans(session):
            if plan["plan_id"] not in vetoed:
                vetoed.add(plan["plan_id"])
                record_decision(session, plan["plan_id"], "veto", by="test@gate")
        time.sleep(0.05)
    assert proc.returncode == 0, proc.stderr.read()
    first_lines = {}
    for rec in read_jsonl(session / "plans.jsonl").records:
        first_lines.setdefault(rec["plan_id"], rec)
    vetoes = {a["plan_id"]: a["details"] for a in read_jsonl(session / "audit.jsonl").records if a["action"] == "plan_vetoed"}
    again = [p for p in first_lines.values() if p.get("vetoed_before")]
    assert again, "the session should bring a vetoed change back once fresh evidence shows it"
    for plan in again:
        earlier_id, _, at_test = plan["vetoed_before"].partition(" at ")
        earlier = first_lines[earlier_id]
        assert earlier["test_id"] == at_test and earlier["change"].keys() == plan["change"].keys()
        assert re.search(rf"\(vetoed( \d+×)? before: {re.escape(plan['vetoed_before'])}\)", plan["reason"]), plan["reason"]
        # the evidence came entirely from tests started after the veto
        first = int(plan["scope"]["first_test"].split("test")[1]) - 1
        assert first >= vetoes[earlier_id]["from_index"]


# ---------------------------------------------------------------- a decision is one fact, whatever the kill


def edit_value(plan: dict) -> str:
    """A value for an edit of the plan's parameter between its old and proposed values (inside the max step)."""
    item = plan["patch"][0]
    old, new = item["old_value"], item["new_value"]
    if isinstance(new, bool):
        return str(new).lower()
    middle = (old + new) / 2
    return str(round(middle)) if isinstance(new, int) else f"{middle:.4f}"


def decide_then_approve(session: Path, proc: subprocess.Popen, kind: str, decided: set[str]) -> int:
    """The first plan gets `kind`, every later one an approval, until the conductor exits (or is killed)."""
    while proc.poll() is None:
        for plan in sorted(pending_plans(session), key=lambda p: p["plan_id"]):
            if plan["plan_id"] in decided:
                continue
            this = kind if not decided else "approve"
            edits = {plan["patch"][0]["parameter"]: edit_value(plan)} if this == "edit" else None
            decided.add(plan["plan_id"])
            try:
                record_decision(session, plan["plan_id"], this, edits, by="test@gate")
            except DecisionError:
                pass
        time.sleep(0.02)
    return proc.returncode


KILL_SPEC = ("--segments", "1", "--tests", "40", "--seed", "5", "--approval", "manual", "--workers", "1")


@pytest.fixture(scope="module")
def decided_references(tmp_path_factory) -> dict[str, Path]:
    """Uninterrupted manual sessions: the first plan approved, edited or vetoed, the others approved."""
    out = {}
    for kind in ("approve", "edit", "veto"):
        where = tmp_path_factory.mktemp(f"ref-{kind}")
        proc = cli_background("run", "--headless", *KILL_SPEC, "--sessions-dir", str(where), env=EAGER_RULES)
        session = wait_for(lambda: find_session(where), what="the session folder")  # noqa: B023 - called in this iteration
        assert decide_then_approve(session, proc, kind, set()) == 0, proc.stderr.read()
        out[kind] = session
    return out


@pytest.mark.parametrize("kind,point", [
    (kind, point) for kind in ("approve", "edit", "veto")
    for point in ("decision_taken", "decision_audited", "decision_status", "decision_said")
    if not (kind == "veto" and point == "decision_said")  # a veto says nothing in the conversation
])
def test_a_kill_at_any_write_of_a_decision_resumes_to_the_uninterrupted_outcome(tmp_path: Path, decided_references, kind, point):
    proc = cli_background("run", "--headless", *KILL_SPEC, "--sessions-dir", str(tmp_path),
                          env={**EAGER_RULES, "MAESTRO_CRASH_AT": point})
    session = wait_for(lambda: find_session(tmp_path), what="the session folder")
    decided: set[str] = set()
    assert decide_then_approve(session, proc, kind, decided) == -signal.SIGKILL, proc.stderr.read()
    resumed = cli_background("run", "--resume", str(session))
    assert decide_then_approve(session, resumed, kind, decided) == 0, resumed.stderr.read()
    assert_same_sessions(decided_references[kind], session)
    audit = read_jsonl(session / "audit.jsonl").records
    assert not [a for a in audit if a["action"] == "decision_refused"], "the resume refused a decision it had accepted"
    effects = [a["plan_id"] for a in audit if a["action"] in ("patch_applied", "plan_vetoed")]
    assert len(effects) == len(set(effects))


@pytest.mark.parametrize("point", ["plan_written", "decision_audited", "decision_status", "decision_said"])
def test_a_kill_at_any_write_of_an_automatic_approval_resumes_to_the_uninterrupted_outcome(tmp_path: Path, point):
    spec = ("--segments", "2", "--tests", "20", "--seed", "5", "--workers", "1")
    reference = cli("run", "--headless", *spec, "--sessions-dir", str(tmp_path / "ref"), env=EAGER_RULES)
    assert reference.returncode == 0
    crashed = cli("run", "--headless", *spec, "--sessions-dir", str(tmp_path / "crash"),
                  env={**EAGER_RULES, "MAESTRO_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    session = only_session(tmp_path / "crash")
    resumed = cli("run", "--resume", str(session))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_sessions(only_session(tmp_path / "ref"), session)
