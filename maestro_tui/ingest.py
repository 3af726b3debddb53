"""Reading a session directory as it grows: watchfiles, byte offsets, a capped queue.

A background thread waits on watchfiles for changes (no polling), tails each JSON Lines
file from its last byte offset (a torn last line waits for its end; corrupt lines are
counted, never raised), re-reads JSON documents, and reads a test folder once it appears
(it appears whole: the conductor renames it into place). Parsed items — each JSONL line as
its event model (engine.events) — go into a deque that the console drains a capped batch at a
time on a timer. It is the live console's Feed (maestro_tui.feed): `mode` live or read-only.
"""

from __future__ import annotations

import errno
import threading
from collections import deque
from pathlib import Path

from engine.events import EVENT_FILES
from engine.jsonl import JsonlTail, SessionFileError, read_json
from engine.leaderboard import read_leaderboard_csv
from engine.session import (
    ALLOCATION,
    AUDIT,
    CONDUCTOR,
    CONFIG,
    CONVERSATION,
    DECISIONS,
    LEADERBOARD,
    PLANS,
    SCORES,
    SessionDir,
    test_folders,
)
from maestro_tui.feed import Batch, Mode
from maestro_tui.state import ConductorStatus, Item, SessionView, TestDone

TAILED = {CONVERSATION: "conversation", PLANS: "plans", DECISIONS: "decisions", AUDIT: "audit", ALLOCATION: "allocation"}
DOCUMENTS = {CONFIG: "config", CONDUCTOR: "conductor"}


class SessionFeed:
    """Turns a session directory into a stream of Items; `drain(n)` hands out at most n."""

    def __init__(self, root: Path, *, read_only: bool = False) -> None:
        self.root = Path(root)
        self.read_only = read_only  # a console that watches a session another one steers
        self._session = SessionDir(self.root)
        self.items: deque[Item] = deque()
        # each line checked against its event model: a record that breaks it is skipped and counted, not shown;
        # a record that passes is handed on as that model, which every reader after this one trusts
        self._tails = {name: JsonlTail(self.root / name, EVENT_FILES[name]) for name in TAILED}
        self._tests_seen: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: str | None = None

    # ------------------------------------------------------------ reading

    def scan(self, *, final: bool = False) -> None:
        """Read everything new in the directory (thread-safe, idempotent).

        `final`: nobody writes here any more, so a last line without its newline is torn
        (skipped and counted) rather than waited for.
        """
        if not self.root.is_dir():  # moved or removed: nothing more will come, and the trader must know
            raise FileNotFoundError(errno.ENOENT, "the session folder is gone", str(self.root))
        with self._lock:
            for name in DOCUMENTS:
                self._document(name)
            for name, kind in TAILED.items():
                got = self._tails[name].read_new(final=final)
                for rec in got.records:
                    self.items.append(Item(kind, rec))
                if got.bad_lines:
                    self.items.append(Item("bad", [f"{name} line {b.line_no}: {b.reason}" for b in got.bad_lines]))
            self._tests()

    def _document(self, name: str) -> None:
        path = self.root / name
        if not path.exists():
            return
        try:
            self.items.append(Item(DOCUMENTS[name], read_json(path)))
        except SessionFileError as err:
            self.items.append(Item("bad", [f"{name}: {err.problem}"]))

    def _tests(self) -> None:
        for _, _, folder in test_folders(self._session):
            if folder.name not in self._tests_seen:
                self._tests_seen.add(folder.name)
                self.items.append(Item("test", self._read_test(folder)))

    def _read_test(self, folder: Path) -> TestDone:
        try:
            rows = read_leaderboard_csv(folder / LEADERBOARD)
        except SessionFileError as err:
            root = self._session.root
            where = err.path.relative_to(root) if err.path.is_relative_to(root) else err.path
            self.items.append(Item("bad", [f"{where}: {err.problem}"]))
            rows = []
        # a failed test is the one test with no leaderboard rows (its test.log says why); its episodes are read
        # when shown (SessionView.fold), not here: most tests' episodes never are
        return TestDone(folder.name, rows, failed=not rows, scores_path=folder / SCORES)

    def drain(self, limit: int) -> list[Item]:
        """At most `limit` items, oldest first."""
        out = []
        while self.items and len(out) < limit:
            out.append(self.items.popleft())
        return out

    # ------------------------------------------------------------ the Feed a screen reads

    @property
    def mode(self) -> Mode:
        return "read-only" if self.read_only else "live"

    @property
    def failure(self) -> str | None:
        return self._failure

    def new_view(self) -> SessionView:
        return SessionView()

    def take(self, limit: int) -> Batch:
        return Batch(self.drain(limit))

    def fold(self, view: SessionView, items: list[Item]) -> None:
        view.fold(items)

    def status(self, view: SessionView) -> ConductorStatus:
        return view.conductor_status

    # ------------------------------------------------------------ watching

    def start(self) -> None:
        """Scan once, then rescan on every change watchfiles reports, in a daemon thread."""
        try:
            self.scan()  # here: the first frame shows what is there
        except Exception as err:  # noqa: BLE001 - as in _watch
            self._fail(err)
            return
        self._thread = threading.Thread(target=self._watch, name="session-feed", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        """Read, then read again on every change, until stopped; a failure stops it and says why (`failure`)."""
        import watchfiles

        try:
            for _changes in watchfiles.watch(self.root, stop_event=self._stop, debounce=100, step=50,
                                             rust_timeout=1000, yield_on_timeout=False):
                self.scan()
        except Exception as err:  # noqa: BLE001 - whatever stops the reading, the screen shows it (and why)
            self._fail(err)

    def _fail(self, err: Exception) -> None:
        self._failure = f"{type(err).__name__}: {err}"

    def stop(self) -> None:
        self._stop.set()
