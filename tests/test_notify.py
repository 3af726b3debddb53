"""Notification hooks: a webhook on a local server, a command fed on stdin, and hooks that fail.

A failing or hanging hook must cost one warning line and nothing else: `send` returns at once
and never raises, `close` returns after its wait. Nothing here sleeps: the tests wait for what
the hook received, or for the warning it left.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agents.notify import Notifier
from agents.settings import NotifySettings, load_settings
from tests.sessions import wait_for

SENTINEL = "sk-sentinel-0123456789abcdef"
PLAN = {
    "plan_id": "P1-003",
    "change": {"vhf_min": "0.25 -> 0.3"},
    "reason": f"16.7 blunders per 100 trades; the model said: use key {SENTINEL}",
    "decide": "maestro-tui decide sessions/session_X P1-003 approve",
}


class Hook:
    """A webhook endpoint on 127.0.0.1 that keeps each request; `hang` blocks it until released."""

    def __init__(self, hang: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                hook.requests.append({"method": self.command, "path": self.path,
                                      "content_type": self.headers.get("content-type"), "body": body})
                hook.entered.set()
                if hang:
                    hook.release.wait(30)  # bounded: a broken test must not hang the suite
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.close()


@pytest.fixture
def hanging_hook():
    server = Hook(hang=True)
    yield server
    server.close()


def notifier(tmp_path: Path, **settings: Any) -> Notifier:
    return Notifier(NotifySettings(**settings), session_id="session_X", session_dir=tmp_path / "session_X")


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "maestro.notify" and r.levelno == logging.WARNING]


def command_line(tmp_path: Path, code: str) -> str:
    """A command line running `code` as a python script (argv: the script, then nothing)."""
    script = tmp_path / "hook.py"
    script.write_text(code)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def test_a_pending_plan_is_posted_as_json_chat_webhooks_accept_with_no_secret(hook, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    n = notifier(tmp_path, webhook_url=f"{hook.url}/hooks/abc?token=t0k3n")
    n.send("plan_pending", **PLAN)
    wait_for(lambda: hook.requests, timeout=10, what="the webhook POST")
    n.close()
    (request,) = hook.requests
    assert request["method"] == "POST" and request["path"] == "/hooks/abc?token=t0k3n"
    assert request["content_type"] == "application/json"
    assert SENTINEL.encode() not in request["body"]
    body = json.loads(request["body"])
    assert body["event"] == "plan_pending" and body["session_id"] == "session_X"
    assert body["session_dir"] == str((tmp_path / "session_X").resolve()) and body["emitted_at"].endswith("Z")
    assert (body["plan_id"], body["change"], body["decide"]) == ("P1-003", PLAN["change"], PLAN["decide"])
    assert body["reason"].endswith("use key [redacted]")
    # Slack-compatible webhooks read "text", Discord "content": the same one human line
    assert body["text"] == body["content"] and "\n" not in body["text"]
    assert body["text"].startswith("maestro-tui: plan P1-003 waits for a decision in session_X: vhf_min 0.25 -> 0.3")
    assert body["text"].endswith("— maestro-tui decide sessions/session_X P1-003 approve")


def test_a_command_gets_the_payload_on_stdin_and_none_on_its_argv(tmp_path):
    out = tmp_path / "received.json"
    code = ("import json, sys\n"
            f"data = {{'argv': sys.argv, 'stdin': sys.stdin.read()}}\n"
            f"open({str(out)!r}, 'w').write(json.dumps(data))\n")
    n = notifier(tmp_path, command=command_line(tmp_path, code))
    n.send("session_finished", state="finished", summary="session_X/session_summary.md")
    received = json.loads(wait_for(lambda: out.exists() and out.read_text(), timeout=30, what="the command's output"))
    n.close()
    payload = json.loads(received["stdin"])
    assert payload["event"] == "session_finished" and payload["state"] == "finished"
    assert payload["text"] == "maestro-tui: session_X finished; summary: session_X/session_summary.md"
    assert received["argv"] == [str(tmp_path / "hook.py")]


def test_events_left_out_of_the_settings_fire_no_hook(tmp_path):
    out = tmp_path / "received"
    n = notifier(tmp_path, command=command_line(tmp_path, f"open({str(out)!r}, 'w').write('called')\n"),
                 events=["session_failed"])
    n.send("plan_pending", **PLAN)
    n.close(wait_s=30)  # a hook that had started would have finished by now
    assert not out.exists()


def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook?token=t0k3n"


def test_a_refused_webhook_is_one_warning_naming_it_without_its_token(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="maestro.notify")
    url = refused_url()
    n = notifier(tmp_path, webhook_url=url)
    n.send("session_failed", state="failed", error="worker died twice")
    wait_for(lambda: warnings_of(caplog), timeout=10, what="the warning")
    n.close(wait_s=10)
    (warning,) = warnings_of(caplog)
    assert f"webhook {url.split('/hook')[0]} failed for session_failed" in warning and "refused" in warning
    assert "t0k3n" not in caplog.text and "/hook" not in caplog.text


def test_a_hanging_webhook_holds_up_neither_send_nor_close(hanging_hook, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="maestro.notify")
    n = notifier(tmp_path, webhook_url=hanging_hook.url, timeout_s=10)
    n.send("plan_pending", **PLAN)
    wait_for(hanging_hook.entered.is_set, timeout=10, what="the webhook to receive the POST")
    n.send("llm_budget_spent", calls=60, cost_usd=0.42)  # while the first call still hangs
    assert not hanging_hook.release.is_set()  # the handler is still blocked: send did not wait for it
    n.close(wait_s=0.05)
    assert not hanging_hook.release.is_set()  # close returned with the hook still blocked
    cut = warnings_of(caplog)
    assert any(f"webhook {hanging_hook.url} (plan_pending) cut off" in w for w in cut), cut


@pytest.mark.parametrize("code, timeout_s, reason", [
    ("import sys\nsys.stdin.read()\nprint('boom', file=sys.stderr)\nsys.exit(3)\n", 30, "exit 3: boom"),
    ("import time\ntime.sleep(60)\n", 0.5, "no answer within 0.5 s (stopped)"),
    (None, 30, "command not found: no-such-notify-command"),
])
def test_a_failing_command_is_one_warning_naming_it(tmp_path, caplog, code, timeout_s, reason):
    caplog.set_level(logging.INFO, logger="maestro.notify")
    if code:
        line, name = command_line(tmp_path, code), f"command {sys.executable}"
    else:
        line, name = "no-such-notify-command --flag", "command no-such-notify-command"
    n = notifier(tmp_path, command=line, timeout_s=timeout_s)
    n.send("plan_pending", **PLAN)
    wait_for(lambda: warnings_of(caplog), timeout=30, what="the warning")
    n.close(wait_s=30)
    assert warnings_of(caplog) == [f"notify: {name} failed for plan_pending: {reason}"]


def test_a_command_still_running_at_close_is_killed_and_reported_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="maestro.notify")
    pid_file = tmp_path / "pid"
    code = f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    n = notifier(tmp_path, command=command_line(tmp_path, code), timeout_s=60)
    n.send("session_finished", state="finished")
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=30, what="the command to start"))
    n.close(wait_s=0.05)
    n.close(wait_s=30)  # the hook's thread has seen its command die and returned
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    assert warnings_of(caplog) == [
        f"notify: command {sys.executable} (session_finished) cut off: still running when the session closed"
    ]


def test_a_webhook_that_is_not_http_or_an_unknown_event_is_refused_naming_the_field(tmp_path, monkeypatch):
    monkeypatch.setenv("MAESTRO_CONFIG", str(tmp_path / "config.toml"))
    (tmp_path / "config.toml").write_text('[notify]\nwebhook_url = "file:///etc/passwd"\n')
    with pytest.raises(ValidationError, match=r"notify\.webhook_url"):
        load_settings()
    (tmp_path / "config.toml").write_text('[notify]\nevents = ["plan_pending", "plan_approved"]\n')
    with pytest.raises(ValidationError, match=r"notify\.events"):
        load_settings()
    with pytest.raises(ValidationError, match="timeout_s"):
        NotifySettings(timeout_s=0)


def test_the_environment_sets_the_webhook(tmp_path, monkeypatch):
    monkeypatch.setenv("MAESTRO_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("MAESTRO_NOTIFY__WEBHOOK_URL", "https://ntfy.sh/maestro-desk")
    notify = load_settings().notify
    assert notify.webhook_url == "https://ntfy.sh/maestro-desk"
    assert notify.events == ["plan_pending", "session_finished", "session_failed", "llm_budget_spent"]
