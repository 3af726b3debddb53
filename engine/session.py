"""The session directory (DESIGN.md §4): its layout, the conductor's heartbeat, test folders.

The directory is the single source of truth between processes. Only the conductor writes
here, except `decisions.jsonl` (the console and `maestro-tui decide`). A test folder is
written whole under a hidden name and renamed into place, so a folder that exists is a
complete test; JSON documents are replaced atomically; JSON Lines files are appended.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import queue
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.events import SCHEMA_VERSION
from engine.jsonl import (
    SessionFileError,
    overwrite_in_place,
    read_json,
    write_error,
    write_json_atomic,
)

CONFIG = "session_config.json"
CONDUCTOR = "conductor.json"
CONVERSATION = "conversation.jsonl"
PLANS = "plans.jsonl"
DECISIONS = "decisions.jsonl"
ALLOCATION = "allocation.jsonl"
AUDIT = "audit.jsonl"
SUMMARY = "session_summary.md"
METRICS_GLOBAL = "metrics_global.json"
CONDUCTOR_LOG = "conductor.log"
LLM_RECORDS = "llm_records.jsonl"  # --record-llm: request/response pairs, no keys or headers

SEGMENT_PLAN = "segment_plan.json"
SEGMENT_RESULTS = "segment_results.json"
LEADERBOARD = "leaderboard_base.csv"
TRADES = "trades.jsonl"
SCORES = "scores.jsonl"
TEST_LOG = "test.log"

_TEST_ID = re.compile(r"^seg(\d+)_test(\d{3,})$")
_SEGMENT_DIR = re.compile(r"^segment_(\d+)$")

ConductorStateName = Literal["starting", "running", "waiting", "paused", "stopped", "finished", "failed"]
ENDED_STATES = ("finished", "failed", "stopped")  # a conductor that wrote one of these has stopped for good


def test_id(segment: int, test: int) -> str:
    """'seg2_test007' for test 7 (1-based) of segment 2."""
    return f"seg{segment}_test{test:03d}"


def parse_test_id(text: str) -> tuple[int, int]:
    """(segment, test) of a test id; ValueError when it is not one."""
    m = _TEST_ID.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a test id like seg1_test001")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class SessionDir:
    """Paths of one session directory, always absolute and resolved.

    File watchers report resolved absolute paths; a session opened by a relative path
    would otherwise never recognise its own files in their events.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def session_id(self) -> str:
        return self.root.name

    def file(self, name: str) -> Path:
        return self.root / name

    def segment_dir(self, segment: int) -> Path:
        return self.root / f"segment_{segment}"

    def test_dir(self, segment: int, test: int) -> Path:
        return self.segment_dir(segment) / test_id(segment, test)

    def plan_after(self, segment: int) -> Path:
        return self.root / f"plan_after_segment_{segment}.md"

    def exists(self) -> bool:
        return (self.root / CONFIG).is_file()

    def check_version(self) -> None:
        """SessionFileError unless session_config.json says the folder was written in the schema we read.

        A folder from another schema version would be read field by field as if it were
        ours: better to say so once, up front, than to show a session half understood.
        """
        path = self.root / CONFIG
        v = read_json(path).get("v")
        if type(v) is not int or v != SCHEMA_VERSION:
            known = type(v) is int
            age = "older" if v is None or (known and v < SCHEMA_VERSION) else "newer" if known else "unknown"
            found = "no schema version (\"v\")" if v is None else f"schema version v={v!r}"
            raise SessionFileError(
                path, f"{found}: this session was written by {'an' if age != 'newer' else 'a'} {age} maestro-tui, and this one reads "
                      f"v={SCHEMA_VERSION} only; open it with the maestro-tui version that wrote it")


def new_session_dir(sessions_dir: str | os.PathLike[str], now: dt.datetime | None = None) -> SessionDir:
    """Create sessions_dir/session_YYYY-MM-DD_HHMM (a suffix _2, _3… when taken).

    SessionWriteError names the folder the OS refused to create (read-only, no permission,
    disk full); SessionFileError says when `sessions_dir` is not a folder.
    """
    now = now or dt.datetime.now()
    base = Path(sessions_dir)
    if os.path.lexists(base) and not base.is_dir():
        what = "a dangling symbolic link" if base.is_symlink() else "not a folder"
        raise SessionFileError(base, f"{what}: sessions live in a folder")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(err, err.filename or base) from None
    stem = f"session_{now:%Y-%m-%d_%H%M}"
    for n in range(1, 10_000):
        path = base / (stem if n == 1 else f"{stem}_{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            raise write_error(err, path) from None
        return SessionDir(path)
    raise SessionFileError(base, "no free session folder name")


def list_sessions(sessions_dir: str | os.PathLike[str]) -> list[SessionDir]:
    """Session folders (those holding a session_config.json), oldest name first."""
    base = Path(sessions_dir)
    if not base.is_dir():
        return []
    return [SessionDir(p) for p in sorted(base.iterdir()) if (p / CONFIG).is_file()]


# ---------------------------------------------------------------- conductor.json


class ConductorState(BaseModel):
    """conductor.json: how `ls`, `attach` and the console know whether a session is alive."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    v: int = SCHEMA_VERSION
    session_id: str
    pid: int
    host: str
    state: ConductorStateName
    waiting_for: str | None = None
    heartbeat: str
    started_at: str
    segment: int = 0
    segments: int = 0
    tests_done: int = 0
    tests_total: int = 0
    tests_failed: int = 0
    approval: str = "auto"
    providers: dict[str, str] = Field(default_factory=dict)
    pending_plans: int = 0
    log: str = CONDUCTOR_LOG
    llm: dict[str, float | int] = Field(default_factory=dict)  # calls, tokens, cost_usd so far
    error: str | None = None
    # the conductor process's start time (clock ticks since boot, /proc): a pid the system gave
    # to another process since is not this conductor
    pid_start: int | None = None


def write_conductor_state(session: SessionDir, state: ConductorState, *, last_word: bool = False) -> None:
    """Replace conductor.json atomically; SessionWriteError when the OS refuses.

    `last_word` is the state a conductor leaves behind (finished, stopped, failed), which a
    full disk must not keep from `ls` and the console: when the atomic write has no room
    for its temporary file, the state is written over the old file's own bytes instead,
    cut down to what fits in them (see `_fitting_state`). An in-place write is not atomic,
    but the process is about to end and nothing else writes this file.
    """
    path = session.file(CONDUCTOR)
    try:
        write_json_atomic(path, state.model_dump())
        return
    except OSError as err:
        if not last_word:
            raise
        refused = err
    try:
        room = path.stat().st_size
    except OSError:
        room = 0
    text = _fitting_state(state, room)
    if room and len(text.encode("utf-8")) > room:
        raise refused  # it would need new space, and a write cut short would spoil the old state too
    try:
        overwrite_in_place(path, text)
    except OSError:
        raise refused from None


# What `ls` and the console need of a state that must fit in a full disk's last bytes.
_ESSENTIAL = ("v", "session_id", "pid", "host", "state", "heartbeat", "started_at", "segment", "segments",
              "tests_done", "tests_total", "tests_failed", "error")


def _fitting_state(state: ConductorState, room: int) -> str:
    """conductor.json's text in at most `room` bytes if it can be: all of it, compact; else the
    essential fields; else those with the error cut short (a reader still validates it)."""
    def text(fields: dict) -> str:
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n"

    full = state.model_dump()
    candidate = text(full)
    if room == 0 or len(candidate.encode()) <= room:  # no old file: nothing to fit into
        return candidate
    essential = {k: full[k] for k in _ESSENTIAL}
    candidate = text(essential)
    overflow = len(candidate.encode()) - room
    if overflow > 0 and essential["error"]:
        error = essential["error"]
        cut = max(0, len(error) - overflow - 1)
        essential["error"] = error[:cut] + "…"
        while len(text(essential).encode()) > room and cut > 0:  # multi-byte characters
            cut -= 1
            essential["error"] = error[:cut] + "…"
        candidate = text(essential)
    return candidate


def read_conductor_state(session: SessionDir) -> ConductorState | None:
    """conductor.json, or None when the conductor never wrote one; SessionFileError if corrupt."""
    path = session.file(CONDUCTOR)
    if not path.exists():
        return None
    try:
        return ConductorState.model_validate(read_json(path))
    except ValueError as err:
        raise SessionFileError(path, f"not a conductor state: {str(err).splitlines()[0]}") from None


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _runs_maestro(pid: int) -> bool:
    """Whether process `pid` is a maestro-tui process at all (for states written without pid_start)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"maestro" in fh.read()
    except OSError:
        return True  # no /proc here: the pid exists, that is all we know


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs; a zombie (dead, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # no /proc here: the pid exists, that is all we know


def conductor_alive(state: ConductorState | None, stale_after_s: float = 15.0) -> bool:
    """Whether the conductor process behind `state` still runs (same host: pid check; else heartbeat age)."""
    if state is None or state.state in ENDED_STATES:
        return False
    if state.host == socket.gethostname():
        if not pid_alive(state.pid):
            return False
        if state.pid_start is not None:  # the same process, not one that was given its pid since
            return process_start(state.pid) in (state.pid_start, None)
        return _runs_maestro(state.pid)
    beat = dt.datetime.fromisoformat(state.heartbeat.replace("Z", "+00:00")).timestamp()
    return time.time() - beat < stale_after_s


def session_status(session: SessionDir) -> str:
    """running / waiting / paused / finished / failed / stopped / interrupted (died without saying so)."""
    try:
        state = read_conductor_state(session)
    except SessionFileError:
        return "unknown"
    if state is None:
        return "interrupted"
    if state.state in ENDED_STATES:
        return state.state
    return state.state if conductor_alive(state) else "interrupted"


# ---------------------------------------------------------------- the conductor's writes


class SessionWriter:
    """The conductor's writes to its session directory, made in the order asked, on a thread of their own.

    The conductor goes on with the next test while its last one is written. What a crash
    leaves is still what a conductor writing everything itself would have left at some
    moment: the writes run one after the other in the order given, and the first that
    fails stops the rest; its error reaches the conductor at its next `write` or `flush`.
    Anything that reads the directory back (a report, a plan page, a hook that may run
    `maestro-tui decide`) `flush`es first. Without `background`, each write is made at once.
    """

    def __init__(self, *, background: bool = True) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._pending = 0
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="session-writer", daemon=True)
            self._thread.start()

    def write(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call `fn(*args)` after every write asked before; raises the error of one that failed."""
        self._raise()
        if self._thread is None:
            fn(*args)
            return
        with self._done:
            self._pending += 1
        self._queue.put((fn, args))

    def flush(self) -> None:
        """Wait for every write asked so far; raises the error of one that failed."""
        self.drain()
        self._raise()

    def drain(self) -> None:
        """Wait for every write asked so far (or the first failure); never raises."""
        with self._done:
            while self._pending and self._error is None:
                self._done.wait()

    def close(self) -> None:
        """Finish the writes asked (not after a failure) and stop the thread; never raises."""
        self.drain()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args = item
            if self._error is None:  # after a failure nothing more is written: what is on disk stays a prefix
                try:
                    fn(*args)
                except BaseException as err:  # noqa: BLE001 - handed to the conductor's thread
                    self._error = err
            with self._done:
                self._pending -= 1
                self._done.notify_all()


# ---------------------------------------------------------------- test folders


def write_test_dir(session: SessionDir, segment: int, test: int, files: Mapping[str, str | bytes]) -> Path:
    """Write a test's files under a hidden name, then rename it into place (all or nothing).

    When the OS refuses (disk full…), the hidden folder is removed again, giving its space
    back, and SessionWriteError names the file as it would have been in the test folder.
    """
    final = session.test_dir(segment, test)
    partial = final.with_name("." + final.name + ".partial")
    meant = final  # what a failure is reported on
    # as few system calls as will do (a session writes thousands of these): the rare cases are
    # found by the call failing, not by asking first
    try:
        try:
            os.mkdir(partial)
        except FileExistsError:
            shutil.rmtree(partial)  # left by a crash: its content is incomplete
            os.mkdir(partial)
        except FileNotFoundError:
            partial.parent.mkdir(parents=True, exist_ok=True)  # the segment's first test
            os.mkdir(partial)
        folder = os.open(partial, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name, content in files.items():
                meant = final / name
                data = memoryview(content if isinstance(content, bytes) else content.encode("utf-8"))
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666, dir_fd=folder)
                try:
                    while data:  # unbuffered: a full disk raises once, here
                        data = data[os.write(fd, data):]
                finally:
                    os.close(fd)
        finally:
            os.close(folder)
        meant = final
        try:
            os.rename(partial, final)
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            shutil.rmtree(final)  # a rerun of a test that a crash left complete but unprocessed
            os.rename(partial, final)
    except OSError as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise write_error(err, meant) from None
    return final


def segment_folders(session: SessionDir) -> list[tuple[int, Path]]:
    """(segment, folder) of every segment folder (segment_1, segment_2, …), by number."""
    found = []
    for seg_dir in session.root.glob("segment_*"):
        m = _SEGMENT_DIR.match(seg_dir.name)
        if m and seg_dir.is_dir():
            found.append((int(m.group(1)), seg_dir))
    return sorted(found, key=lambda f: f[0])


def test_folders(session: SessionDir, segment: int | None = None) -> list[tuple[int, int, Path]]:
    """(segment, test, folder) of every complete test (renamed into place), in session order.

    Ordered by number, not by name: seg1_test1000 comes after seg1_test999.
    """
    found = []
    for number, seg_dir in segment_folders(session):
        if segment is not None and number != segment:
            continue
        for p in seg_dir.iterdir():
            if p.is_dir() and not p.name.startswith("."):  # a hidden .partial folder is incomplete
                try:
                    seg, test = parse_test_id(p.name)
                except ValueError:
                    continue
                found.append((seg, test, p))
    return sorted(found, key=lambda f: (f[0], f[1]))


def completed_tests(session: SessionDir, segment: int) -> set[int]:
    """Tests of a segment whose folder is complete."""
    return {test for _, test, _ in test_folders(session, segment)}


def this_host() -> str:
    return socket.gethostname()
