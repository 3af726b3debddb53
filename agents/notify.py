"""Notifications for a trader who is not watching: the `[notify]` command and webhook hooks.

`Notifier.send(event, **fields)` fires each configured hook on a daemon thread of its own and
returns at once. The command line (split with shlex, run without a shell) gets one JSON payload
on stdin; the webhook gets it as an HTTP POST. The payload carries top-level `text` and
`content` (one human line) so Slack-compatible and Discord webhooks accept it, and ntfy takes
any body. A hook that fails or hangs costs one warning line on "maestro.notify", never an
exception and never a wait. No payload carries a secret: values of API keys and tokens in the
environment are replaced by "[redacted]", and logs name a webhook by its scheme and host only.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import shlex
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agents.settings import NotifySettings
from engine.events import utc_now_iso

log = logging.getLogger("maestro.notify")

REDACTED = "[redacted]"


def secrets_in_environment() -> list[str]:
    """Values (8 characters or more) of the *_API_KEY and *_TOKEN variables, longest first."""
    # the suffixes cover ANTHROPIC_API_KEY, OPENAI_API_KEY and ANTHROPIC_AUTH_TOKEN; shorter
    # values would redact ordinary words ("local" is a valid key for a local server)
    values = {v for name, v in os.environ.items() if name.endswith(("_API_KEY", "_TOKEN")) and len(v) >= 8}
    # longest first: a key that contains another is redacted whole
    return sorted(values, key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _plain(value: Any, secrets: list[str]) -> Any:
    """`value` as JSON types (NaN/inf as null, anything else by str()) with every secret redacted."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _redact(value, secrets)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_redact(str(k), secrets): _plain(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, secrets) for v in value]
    return _redact(str(value), secrets)


def human_line(event: str, session_id: str, fields: dict[str, Any]) -> str:
    """The one line a phone shows for `event`: what happened, in which session, what to do."""
    f = fields.get
    if event == "plan_pending":
        change = f("change")
        if isinstance(change, dict):
            change = "; ".join(f"{name} {step}" for name, step in change.items())
        line = f"plan {f('plan_id', '?')} waits for a decision in {session_id}"
        line += f": {change}" if change else ""
        line += f" ({f('reason')})" if f("reason") else ""
        line += f" — {f('decide')}" if f("decide") else ""
    elif event == "session_finished":
        line = f"{session_id} finished" + (f"; summary: {f('summary')}" if f("summary") else "")
    elif event == "session_failed":
        line = f"{session_id} failed" + (f": {f('error')}" if f("error") else "")
        line += f"; summary: {f('summary')}" if f("summary") else ""
    elif event == "llm_budget_spent":
        cost = f("cost_usd")
        spent = [f"{f('calls')} calls"] if f("calls") is not None else []
        if cost is not None:
            spent.append(f"{cost:.2f} USD" if isinstance(cost, numbers.Real) else f"{cost} USD")
        line = f"the LLM budget of {session_id} is spent" + (f" ({', '.join(spent)})" if spent else "")
        line += "; the agents are offline for the rest of the session"
    else:
        line = f"{event} in {session_id}"
    return " ".join(f"maestro-tui: {line}".split())  # one line, whatever the fields held


def webhook_name(url: str) -> str:
    """How logs name a webhook: scheme and host only (its path or query may hold a token)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"webhook {parts.scheme}://{parts.hostname}{port}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # a redirect would turn the POST into a GET without its body: report it as the failure it is
    def redirect_request(self, *args: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class Notifier:
    """The `[notify]` hooks of one session; thread-safe; never raises to its caller."""

    def __init__(self, settings: NotifySettings, *, session_id: str, session_dir: Path) -> None:
        self.settings = settings
        self.session_id = session_id
        self.session_dir = Path(session_dir).resolve()
        self._argv = shlex.split(settings.command)
        self._lock = threading.Lock()
        self._running: dict[threading.Thread, str] = {}  # thread -> "hook (event)", for close()
        self._children: set[subprocess.Popen] = set()
        self._cut: set[threading.Thread] = set()  # reported by close(): their failure is not news
        self.before_send: Callable[[], None] | None = None  # the conductor's: its files written before a hook runs

    def hooks(self) -> list[tuple[str, Callable[[bytes], None]]]:
        """(name for the log, call taking the JSON body) of each configured hook."""
        found: list[tuple[str, Callable[[bytes], None]]] = []
        if self._argv:
            found.append((f"command {self._argv[0]}", self._run_command))
        if self.settings.webhook_url:
            found.append((webhook_name(self.settings.webhook_url), self._post))
        return found

    def payload(self, event: str, **fields: Any) -> dict[str, Any]:
        """The JSON object every hook gets for `event`: plain JSON types, secrets redacted."""
        line = human_line(event, self.session_id, fields)
        raw = {
            "event": event, "session_id": self.session_id, "session_dir": str(self.session_dir),
            "emitted_at": utc_now_iso(), "text": line, "content": line, **fields,
        }
        return _plain(raw, secrets_in_environment())

    def send(self, event: str, **fields: Any) -> None:
        """Fire the configured hooks for `event` in the background; returns at once, never raises."""
        try:
            hooks = self.hooks()
            if event not in self.settings.events or not hooks:
                return
            if self.before_send is not None:
                self.before_send()
            body = json.dumps(self.payload(event, **fields), ensure_ascii=False).encode("utf-8")
            for name, call in hooks:
                thread = threading.Thread(
                    target=self._call, args=(name, call, event, body), name=f"notify {name}", daemon=True
                )
                with self._lock:
                    self._running[thread] = f"{name} ({event})"
                thread.start()
        except Exception as err:  # noqa: BLE001 - a notification must never stop the session
            log.warning("notify: %s not sent: %s: %s", event, type(err).__name__, err)

    def close(self, wait_s: float | None = None) -> None:
        """Give hooks still running up to wait_s (default: settings.timeout_s) to finish; then return,
        logging what was cut off (a command still running is killed: it would outlive the process)."""
        deadline = time.monotonic() + (self.settings.timeout_s if wait_s is None else wait_s)
        with self._lock:
            threads = list(self._running)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            cut = {thread: what for thread, what in self._running.items() if thread.is_alive()}
            self._cut.update(cut)
            children = list(self._children)
        for child in children:  # daemon threads die with the process; their commands would not
            child.kill()
        for what in cut.values():
            log.warning("notify: %s cut off: still running when the session closed", what)

    # ------------------------------------------------------------ the hooks (on their own threads)

    def _call(self, name: str, call: Callable[[bytes], None], event: str, body: bytes) -> None:
        try:
            call(body)
            log.info("notify: %s sent %s", name, event)
        except Exception as err:  # noqa: BLE001 - logged, never raised: see send()
            if threading.current_thread() in self._cut:
                return
            # a command's stderr may echo what it was given: the same redaction as the payload
            reason = _redact(_reason(err, self.settings.timeout_s), secrets_in_environment())
            if self.settings.webhook_url:  # the URL may hold a token: never in the log
                reason = reason.replace(self.settings.webhook_url, webhook_name(self.settings.webhook_url))
            log.warning("notify: %s failed for %s: %s", name, event, reason)
        finally:
            with self._lock:
                self._running.pop(threading.current_thread(), None)

    def _run_command(self, body: bytes) -> None:
        # the payload (partly LLM text) goes on stdin only, never on the argv
        child = subprocess.Popen(
            self._argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        with self._lock:
            self._children.add(child)
        try:
            _, err = child.communicate(body, timeout=self.settings.timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise
        finally:
            with self._lock:
                self._children.discard(child)
        if child.returncode < 0:
            raise RuntimeError(f"killed by signal {-child.returncode}")
        if child.returncode != 0:
            last = (err or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise RuntimeError(f"exit {child.returncode}" + (f": {last[0][:200]}" if last[0] else ""))

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(
            self.settings.webhook_url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "maestro-tui"},
        )
        # timeout_s bounds each socket operation (connect, each read), as urllib does
        with _opener.open(request, timeout=self.settings.timeout_s) as response:
            response.read(65_536)
            if not 200 <= response.status < 300:
                raise RuntimeError(f"HTTP {response.status}")


def _reason(err: Exception, timeout_s: float) -> str:
    """A failed hook call, said in a few words."""
    if isinstance(err, subprocess.TimeoutExpired | TimeoutError):
        return f"no answer within {timeout_s:g} s (stopped)"
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        if isinstance(err.reason, TimeoutError):
            return f"no answer within {timeout_s:g} s"
        return str(err.reason)
    if isinstance(err, FileNotFoundError):
        return f"command not found: {err.filename}"
    if isinstance(err, RuntimeError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def hooks_in_force() -> NotifySettings:
    """The [notify] hooks of the settings in force now (never stored in the session: they may hold tokens)."""
    from agents.settings import load_settings

    try:
        return load_settings().notify
    except ValueError as err:  # the CLI checked the settings when the session started; they changed since
        log.warning("notifications off: the settings do not load: %s", str(err).splitlines()[0])
        return NotifySettings()
