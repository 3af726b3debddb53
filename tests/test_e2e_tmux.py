"""End to end: the real `maestro-tui` command in a real terminal (tmux), driven by key presses."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from engine.jsonl import read_jsonl
from tests.sessions import EAGER_RULES, ROOT, conductor_state, find_session, pending_plans, wait_for

pytestmark = [
    pytest.mark.slow,  # a real console in tmux over a running session
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux)"),
]


SOCKET = "maestro-e2e"  # a tmux server of the tests' own: a developer's sessions are never touched


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=False).stdout


def screen(name: str) -> str:
    return tmux("capture-pane", "-t", name, "-p")


def start(name: str, command: list[str], env: dict[str, str]) -> None:
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    line = f"cd {shlex.quote(str(ROOT))} && env {exports} {' '.join(shlex.quote(c) for c in command)}"
    subprocess.run(["tmux", "-L", SOCKET, "new-session", "-d", "-s", name, "-x", "160", "-y", "48", line], check=True)


@pytest.fixture
def tmux_names():
    names: list[str] = []
    yield names
    for name in names:
        tmux("kill-session", "-t", name)


def test_approve_with_keys_then_detach_and_reattach(tmp_path: Path, tmux_names):
    sessions = tmp_path / "sessions"
    env = {"MAESTRO_SESSIONS_DIR": str(sessions), "TERM": "xterm-256color", "PYTHONPATH": str(ROOT), **EAGER_RULES}
    first = f"maestro-e2e-{uuid.uuid4().hex[:6]}"
    tmux_names.append(first)
    start(first, [sys.executable, "-m", "maestro_tui.cli", "run", "--segments", "1", "--tests", "40", "--seed", "5",
                  "--workers", "1"], env)
    session = wait_for(lambda: find_session(sessions), what="the session folder")
    try:
        plan = wait_for(lambda: conductor_state(session).get("state") == "waiting"
                        and sorted(pending_plans(session), key=lambda p: p["plan_id"]), what="a pending plan")[0]
        assert conductor_state(session)["approval"] == "manual"  # the console's default
        wait_for(lambda: plan["plan_id"] in screen(first) and "pending" in screen(first), what="the plan on screen")
        tmux("send-keys", "-t", first, "Enter")
        wait_for(lambda: f"Plan {plan['plan_id']}" in screen(first), what="the review modal")
        tmux("send-keys", "-t", first, "a")
        decision = wait_for(lambda: read_jsonl(session / "decisions.jsonl").records, what="the decision")[0]
        assert (decision["plan_id"], decision["decision"]) == (plan["plan_id"], "approve")
        applied = wait_for(lambda: [a for a in read_jsonl(session / "audit.jsonl").records
                                    if a["action"] == "patch_applied" and a["plan_id"] == plan["plan_id"]],
                           what="the patch applied")
        assert applied[0]["details"]["patch"] == plan["patch"]

        # detach: quit the console, leave the session running
        tmux("send-keys", "-t", first, "q")
        wait_for(lambda: "leave it running" in screen(first), what="the quit dialog")
        tmux("send-keys", "-t", first, "l")
        wait_for(lambda: "reattach with" in screen(first) or not tmux("has-session", "-t", first), what="the console to exit")
        state = conductor_state(session)
        os.kill(state["pid"], 0)  # the conductor goes on without its console

        second = f"maestro-e2e-{uuid.uuid4().hex[:6]}"
        tmux_names.append(second)
        start(second, [sys.executable, "-m", "maestro_tui.cli", "attach", str(session)], env)
        wait_for(lambda: plan["plan_id"] in screen(second) and "applied" in screen(second), what="the same state again")
    finally:
        pid = conductor_state(session).get("pid")
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
