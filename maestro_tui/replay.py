"""Replay: the live console fed by the same files on a virtual clock (DESIGN.md §2).

`ReplayFeed` reads the session folder the way the live feed does — each JSON Lines file
from its last byte offset, each test folder once — and orders what it read by the
`emitted_at` times into a timeline; a still-running session's timeline grows as its files
do. The clock releases items as it passes, at ×1 … ×1000 or instantly.

A seek shows the session exactly as it stood after the first k items: forward, the items
between are folded into the view; backward, the cheap rest is folded again from the start
while the standings book, which keeps every test it was given, is only shown as of the
tests finished by then. Either way only the last tests' episodes are read, so a seek costs
about the same at any position.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.events import Event
from engine.session import SessionDir, parse_test_id, session_status
from engine.standings import StandingsBook
from maestro_tui.feed import Batch, Mode
from maestro_tui.ingest import SessionFeed
from maestro_tui.state import ConductorStatus, Item, SessionConfig, SessionView

SPEEDS = (1, 10, 100, 1000, float("inf"))
LIVE_STATES = ("starting", "running", "waiting", "paused")
REFRESH_S = 2.0  # how often a still-running session's files are read again


def _seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Stamped:
    at: float  # seconds, wall clock of the original run
    item: Item


class ReplayFeed:
    """A session's items on a virtual clock; `drain` releases what the clock has passed while playing.

    The replay's Feed (maestro_tui.feed): it opens at the end of the session, so the first
    screen shows how it came out; `seek` and `jump` make the next `take` show another moment.
    `now` is the wall clock the virtual one runs on (time.monotonic; a test's own, to step it).
    """

    mode: Mode = "replay"

    def __init__(self, root: Path, *, now: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(root)
        self._now = now
        self.session = SessionDir(self.root)
        self.session.check_version()
        self.recorded = session_status(self.session)  # what the session itself is: running, finished, interrupted…
        self._source = SessionFeed(self.root)
        self.timeline: list[Stamped] = []
        self.tests_before: list[int] = [0]  # tests_before[k]: test items among the first k
        self.plan_marks: list[int] = []  # positions just after each plan or decision line (see _mark)
        self.segment_marks: list[int] = []  # positions just after each segment's first test (see _mark)
        self.bad: list[str] = []  # lines and files skipped, with where and why
        # Every test's rows, ranked as of any test in an instant: built once here, so that no
        # seek ever goes over the rows again (a 5,000-test session has 22,000).
        self.book = StandingsBook()
        self.config: dict | None = None
        self._segments_seen: set[int] = set()
        self._last_time = 0.0
        self.position = 0  # items released so far
        self.playing = False
        self.speed_index = 1
        self._last_wall = now()
        self._last_refresh = now()
        self._failure: str | None = None
        self._pending: Batch | None = None  # what a seek showed: the next take() hands it over
        self.first = 0.0
        self.refresh()
        self.first = self.timeline[0].at if self.timeline else 0.0
        self.clock = self.first
        _settle_heap(collect=True)
        self.book.show(0)

    @property
    def live(self) -> bool:
        """Whether the recorded session is still being written."""
        return self.recorded in LIVE_STATES

    @property
    def end(self) -> float:
        return self.timeline[-1].at if self.timeline else self.first

    def refresh(self) -> int:
        """Read what the folder gained since the last read; returns how many items joined the timeline."""
        self._last_refresh = self._now()
        if self.timeline:  # still running when opened: has it finished (or died) since?
            self.recorded = session_status(self.session)
        self._source.scan(final=not self.live)  # nobody writes a finished folder: a line cut short is torn
        new: list[Stamped] = []
        for item in self._source.drain(10**9):
            if item.kind == "conductor":
                continue  # the status bar shows the replay itself
            if item.kind == "bad":
                self.bad.extend(item.payload)
                continue
            if item.kind == "config":
                if item.payload == self.config:
                    continue  # documents are read again on every scan
                self.config = item.payload
            at = self._time_of(item)
            if at is None:
                at = self._last_time  # no time of its own: it came with what was read just before
            new.append(Stamped(at, item))
            self._last_time = max(self._last_time, at)
        # stable: items written at the same moment keep their file order
        new.sort(key=lambda s: s.at)
        if self.timeline:  # the timeline only grows at its end: positions already shown stay put
            floor = self.timeline[-1].at
            new = [s if s.at >= floor else Stamped(floor, s.item) for s in new]
        start = len(self.timeline)
        self.timeline.extend(new)
        shown = self.book.tests
        self.book.show(self.book.stored)
        for i, s in enumerate(new, start=start):
            kind = s.item.kind
            self.tests_before.append(self.tests_before[-1] + (kind == "test"))
            if kind in ("plans", "decisions"):
                self._mark(self.plan_marks, i)
            elif kind == "test":
                self.book.add(s.item.payload.rows)  # in timeline order: the k-th test of the timeline is its k-th
                segment, _ = parse_test_id(s.item.payload.test_id)
                if segment not in self._segments_seen:
                    self._segments_seen.add(segment)
                    self._mark(self.segment_marks, i)
        self.book.show(shown)
        return len(new)

    def _mark(self, marks: list[int], i: int) -> None:
        """Mark the moment of item i: the position after everything stamped at that same time.

        Lines written in the same millisecond happened together (a plan auto-applied the
        moment it was proposed, say): a seek shows them together, never half of them.
        """
        at = self.timeline[i].at
        position = bisect.bisect_right(self.timeline, at, lo=i, key=lambda s: s.at)
        if not marks or marks[-1] != position:
            marks.append(position)

    def refresh_due(self) -> bool:
        return self.live and self._now() - self._last_refresh >= REFRESH_S

    @staticmethod
    def _time_of(item: Item) -> float | None:
        p = item.payload
        try:
            if item.kind == "config":
                created = SessionConfig.of(p).created_at
                return _seconds(created) if created else None
            if item.kind == "test":
                # the folder appears when the conductor renames it in; its mtime is that moment
                return p.scores_path.parent.stat().st_mtime if p.scores_path else None
            if isinstance(p, Event):
                return _seconds(p.emitted_at)
        except (OSError, ValueError):
            return None
        return None

    # ------------------------------------------------------------ the clock

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    def faster(self, step: int) -> None:
        self.speed_index = max(0, min(len(SPEEDS) - 1, self.speed_index + step))

    def play(self, on: bool) -> None:
        self.playing = on and self.position < len(self.timeline)
        self._last_wall = self._now()

    def drain(self, limit: int) -> list[Item]:
        """While playing: the items the clock has passed since the last call (at most `limit`)."""
        now = self._now()
        if not self.playing:
            self._last_wall = now
            return []
        self.clock = self.end if self.speed == float("inf") else min(self.end, self.clock + (now - self._last_wall) * self.speed)
        self._last_wall = now
        stop = min(len(self.timeline), self.position + limit,
                   bisect.bisect_right(self.timeline, self.clock, lo=self.position, key=lambda s: s.at))
        out = [s.item for s in self.timeline[self.position:stop]]
        self.position = stop
        if self.position >= len(self.timeline) and not self.live:
            self.playing = False
        return out

    def seek(self, position: int) -> int:
        """Stop, and make the first `position` items (clamped) the ones that have happened; returns it.

        The next take() shows that moment whole: the items from the last position on, or, going
        back, a new view with the items up to it.
        """
        before = self.position
        self.position = max(0, min(position, len(self.timeline)))
        self.clock = self.timeline[self.position - 1].at if self.position else self.first
        self.playing = False
        if self._pending is not None and self._pending.restart:  # a seek not shown yet: start from it
            before = -1
        if self.position >= before >= 0:
            items = [s.item for s in self.timeline[before:self.position]]
            if self._pending is not None:
                items = self._pending.items + items
            self._pending = Batch(items, past=True)
        else:
            self._pending = Batch([s.item for s in self.timeline[: self.position]], restart=True, past=True)
        return self.position

    def jump(self, what: str, step: int) -> int | None:
        """Seek to the next (step 1) or previous (-1) plan or decision (`what` "plan") or segment start; None: none."""
        marks = self.plan_marks if what == "plan" else self.segment_marks
        here = self.position
        if step > 0:
            i = bisect.bisect_right(marks, here)
            target = marks[i] if i < len(marks) else None
        else:
            i = bisect.bisect_left(marks, here)
            target = marks[i - 1] if i > 0 else None
        return None if target is None else self.seek(target)

    # ------------------------------------------------------------ the Feed a screen reads

    @property
    def failure(self) -> str | None:
        return self._failure

    def start(self) -> None:
        """Open at the end of the session: the first screen shows how it came out, not empty panes."""
        self.seek(len(self.timeline))

    def stop(self) -> None:
        return

    def new_view(self) -> SessionView:
        """A view over the replay's standings book, at no test yet, with the lines the reading skipped."""
        self.book.show(0)  # the book keeps every test: fold() shows it as of the position
        view = SessionView(book=self.book)
        view.bad_lines = len(self.bad)
        view.bad_details.extend(self.bad[-(view.bad_details.maxlen or 0):])
        return view

    def take(self, limit: int) -> Batch:
        if self._pending is not None:
            batch, self._pending = self._pending, None
            return batch
        if self.refresh_due():
            try:
                if self.refresh():
                    _settle_heap(collect=False)
            except Exception as err:  # noqa: BLE001 - the screen shows why, and keeps what it has
                self._failure = f"{type(err).__name__}: {err}"
        return Batch(self.drain(limit))

    def fold(self, view: SessionView, items: list[Item]) -> None:
        """Fold items into the view (SessionView.fold: episodes of the last tests only), as of its position."""
        view.fold(items)
        view.book.show(view.tests_seen)  # tests the book had already (a seek back, then forward) count now

    def status(self, view: SessionView) -> ConductorStatus:
        """Progress as of the position, from the config and the tests shown; the state is the recorded session's."""
        shown = SessionConfig.of(view.config)  # the config as of the position: none before it was written
        cfg = shown if shown.present else SessionConfig.of(self.config)
        segment = parse_test_id(view.research[-1].test_id)[0] if view.research else 0
        return ConductorStatus(
            session_id=cfg.session_id, state=self.recorded, tests_done=view.tests_seen,
            tests_total=cfg.segments * cfg.tests, segment=segment, segments=cfg.segments,
            approval=cfg.approval, providers=shown.agents,
        )


def _settle_heap(*, collect: bool) -> None:
    """Move what the replay has read out of the garbage collector's sight.

    The timeline of a 5,000-test session is a few hundred thousand objects that live as
    long as the replay. Python's full collections scan them all, ~100 ms each, at moments
    of their choosing, which is mid-seek as often as not; frozen, they are never scanned.
    """
    if collect:
        gc.collect()
    gc.freeze()
