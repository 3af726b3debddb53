"""Hostile text from a model: data on the screen and in the files, never a control sequence or markup.

A local server speaks both LLM APIs (only the network is faked) and answers every free-text
field with escape sequences (OSC 0 title, OSC 52 clipboard, CSI, the one-byte C1 CSI),
bidirectional overrides, Rich markup and a NUL. The session runs with the real SDKs; its
files, its logs, the console, the replay and a real terminal (tmux) are then searched for
any raw control character.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Log, Static

from engine.jsonl import append_jsonl, read_jsonl
from maestro_tui.app import console
from tests.llm_server import LLMServer, sensible
from tests.sessions import EAGER_RULES, ROOT, cli, only_session, wait_for

pytestmark = pytest.mark.slow  # every test reads one session run against a hostile model server

EVIL = ("\x1b]0;PWNED-TITLE\x07\x1b]52;c;UFdORUQtQ0xJUEJPQVJE\x07\x1b[2J\x9b2J \u202eevil\u202c "
        "[link=https://evil.example]click[/link] [/] [bold]x\x00end")
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def hostile(name: str, request: dict[str, Any]) -> dict[str, Any]:
    answer = sensible(name, request)
    for key in ("plano_curto", "verdict", "analysis", "reason", "proximo_passo"):
        if key in answer:
            answer[key] = EVIL
    for p in answer.get("proposta", []):
        p["racional"] = EVIL
    return answer


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    where = tmp_path_factory.mktemp("hostile")
    with LLMServer(hostile) as server:
        env = {**EAGER_RULES, "ANTHROPIC_API_KEY": "sk-ant-e2e", "OPENAI_API_KEY": "sk-e2e",
               "ANTHROPIC_BASE_URL": server.url, "OPENAI_BASE_URL": server.url + "/v1"}
        out = cli("run", "--headless", "--segments", "2", "--tests", "16", "--seed", "5", "--sessions-dir", str(where),
                  env=env)
    assert out.returncode == 0, out.stderr
    session = only_session(where)
    # and the human's side: a note and an approver name typed with the same bytes
    plan = read_jsonl(session / "plans.jsonl").records[0]
    append_jsonl(session / "decisions.jsonl", [{
        "v": 1, "kind": "decision", "session_id": session.name, "emitted_at": "2026-12-01T00:00:00Z",
        "plan_id": plan["plan_id"], "nonce": plan["nonce"], "decision": "veto", "patch": [], "by": EVIL, "note": EVIL,
    }])
    return session, out.stdout + out.stderr


def test_the_model_really_sent_it_and_no_file_or_log_holds_a_raw_control_byte(run):
    session, printed = run
    conversation = (session / "conversation.jsonl").read_text(encoding="utf-8")
    assert "PWNED-TITLE" in conversation, "the hostile text should be in the session, as data"
    assert not RAW.search(printed)
    for path in session.rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".json", ".log", ".md", ".csv"):
            text = path.read_text(encoding="utf-8", errors="replace")
            found = RAW.search(text)
            assert not found, f"{path.relative_to(session)} holds a raw {found.group()!r}"


def shown_text(app) -> list[str]:
    """Every piece of text the app's widgets show now: statics, table cells, log lines, toasts."""
    out: list[str] = []
    for screen in app.screen_stack:
        for w in screen.query("*"):
            if isinstance(w, DataTable):
                for row in range(w.row_count):
                    out += [str(c) for c in w.get_row_at(row)]
                out += [str(c.label) for c in w.columns.values()]
            elif isinstance(w, Log):
                out += list(w.lines)
            elif isinstance(w, Static):
                out.append(str(w.render()))
    out += [f"{n.title} {n.message}" for n in app._notifications]
    return out


@pytest.mark.parametrize("kind", ["attach", "replay"])
async def test_the_console_and_the_replay_show_it_as_typed_review_and_c_included(run, kind):
    session, _ = run
    app = console(session, replay=True) if kind == "replay" else console(session, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        texts = []
        for keys in (("7", "c"), ("r",), ("escape", "1", "enter")):  # a message whole, as raw JSON, then a review
            for key in keys:
                await pilot.press(key)
                await pilot.pause()
            texts += shown_text(app)
        assert any("\\x1b]0;PWNED-TITLE" in t for t in texts), "the escape should be shown, visibly"
        assert any("[link=https://evil.example]" in t for t in texts), "markup should be shown as typed"
        for t in texts:
            found = RAW.search(t)
            assert not found, f"raw {found.group()!r} on screen in {t[:80]!r}"
        assert app.is_running


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")
def test_a_real_terminal_keeps_its_title_and_clipboard(run, tmp_path: Path):
    session, _ = run
    name = f"hostile-{tmp_path.name[-6:]}"
    socket = str(tmp_path / "tmux.sock")

    def tmux(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-S", socket, *args], capture_output=True, text=True)

    line = f"cd {ROOT} && TERM=xterm-256color {sys.executable} -m maestro_tui.cli replay {session}"
    assert tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "48", line).returncode == 0
    try:
        tmux("set-option", "-g", "set-clipboard", "on")
        tmux("set-option", "-g", "allow-rename", "on")
        wait_for(lambda: "plans" in tmux("capture-pane", "-p", "-t", name).stdout, what="the replay on screen")
        tmux("send-keys", "-t", name, "7")  # the agents' conversation, where the model's words are
        wait_for(lambda: "x1b]0;PWNED-TITLE" in tmux("capture-pane", "-p", "-t", name).stdout,
                 what="the escape sequence shown as text")
        tmux("send-keys", "-t", name, "c", "r")  # the latest message whole, then as the raw JSON it was written as
        wait_for(lambda: '"agente"' in tmux("capture-pane", "-p", "-t", name).stdout, what="the raw JSON")
        title = tmux("display-message", "-p", "-t", name, "#{pane_title}").stdout.strip()
        assert "PWNED" not in title
        buffers = tmux("list-buffers").stdout
        assert "PWNED" not in buffers and "UFdORUQ" not in buffers
    finally:
        tmux("kill-server")
