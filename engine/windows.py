"""Walk-forward windows and micro-episodes (DESIGN.md §9).

A window is 15 days: train 10, validation 3, holdout 2; window k starts k × 2 days in.
Inside a window, episodes are consecutive 120-bar blocks restarting at each phase
boundary, so an episode never straddles two phases (the last block of a phase may be
shorter: at 5m, validation is 7 × 120 + 24 bars).
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class WalkForward:
    """Window geometry in days; converted to bars by the data's interval."""

    train_days: float = 10.0
    validation_days: float = 3.0
    holdout_days: float = 2.0
    step_days: float = 2.0

    def bars(self, interval_ms: int) -> tuple[int, int, int, int]:
        """(train, validation, holdout, step) in bars for bars of `interval_ms`."""
        per_day = DAY_MS / interval_ms
        return (
            round(self.train_days * per_day),
            round(self.validation_days * per_day),
            round(self.holdout_days * per_day),
            round(self.step_days * per_day),
        )


@dataclass(frozen=True)
class Window:
    """One walk-forward window: absolute bar indices into the data, [start, end)."""

    index: int
    start: int
    train_end: int
    validation_end: int
    end: int

    @property
    def train_bars(self) -> int:
        return self.train_end - self.start

    @property
    def validation_bars(self) -> int:
        return self.validation_end - self.train_end


def walk_forward_windows(n_bars: int, interval_ms: int, geometry: WalkForward = WalkForward()) -> list[Window]:
    """Every full window that fits in `n_bars` bars, window k starting at k × step."""
    train, val, hold, step = geometry.bars(interval_ms)
    size = train + val + hold
    out = []
    k = 0
    while k * step + size <= n_bars:
        s = k * step
        out.append(Window(k, s, s + train, s + train + val, s + size))
        k += 1
    return out


def bars_needed(n_windows: int, interval_ms: int, geometry: WalkForward = WalkForward()) -> int:
    """How many bars hold `n_windows` walk-forward windows."""
    train, val, hold, step = geometry.bars(interval_ms)
    return (n_windows - 1) * step + train + val + hold


class NoWindow(ValueError):
    """The bars hold no full walk-forward window: nothing can be tested on them."""


def _segments_text(first: int, last: int) -> str:
    return f"segment {first}" if first == last else f"segments {first}–{last}"


@dataclass(frozen=True)
class TestPlan:
    """How a session's tests map onto the walk-forward windows its data holds.

    Test g (0-based, in session order) runs on window g % `windows`. Windows are never
    reused silently: `fit_tests` either shrinks the session to the distinct windows the data
    holds (`reuse` False: every test sees a window no earlier test saw) or, when told to,
    keeps the size asked and `reused(g)` marks every test that runs on a window again.
    """

    windows: int  # distinct windows in the data
    segments: int  # segments the session runs
    tests: int  # tests per segment
    asked_segments: int
    asked_tests: int
    reuse: bool

    @property
    def total(self) -> int:
        return self.segments * self.tests

    def window_of(self, g: int) -> int:
        return g % self.windows

    def reused(self, g: int) -> bool:
        """Whether test g runs on a window an earlier test ran on."""
        return g >= self.windows

    def unseen(self, segment: int) -> bool:
        """Whether every test of `segment` runs on a window no earlier segment saw."""
        return segment * self.tests <= self.windows

    @property
    def reused_tests(self) -> int:
        return max(0, self.total - self.windows) if self.reuse else 0

    @property
    def unused_windows(self) -> int:
        return max(0, self.windows - self.total)

    @property
    def fitted(self) -> bool:
        """Whether the session runs fewer tests than asked, to reuse no window."""
        return (self.segments, self.tests) != (self.asked_segments, self.asked_tests)

    def note(self) -> str | None:
        """One line saying how the tests were fitted to the data or which reuse windows; None when neither."""
        asked = self.asked_segments * self.asked_tests
        held = f"the data holds {self.windows} walk-forward window{'s' if self.windows != 1 else ''}"
        if self.reuse and self.reused_tests:
            return (f"{held} for {asked} tests: {self.reused_tests} tests reuse a window (marked as reused; "
                    f"their results are not independent evidence)")
        if not self.fitted:
            return None
        text = (f"{held}, not the {asked} asked: {self.segments} segment{'s' if self.segments != 1 else ''} "
                f"of {self.tests} test{'s' if self.tests != 1 else ''}, each test on a window of its own")
        if self.segments < self.asked_segments:
            text += f"; {_segments_text(self.segments + 1, self.asked_segments)} skipped: no unseen window left"
        return text + " (--allow-reuse to run the size asked on reused windows)"

    def summary(self) -> str:
        """The fit in one line, whatever it was (the console, the summary, the first Maestro message)."""
        note = self.note()
        if note:
            return note
        unused = f"; {self.unused_windows} more windows unused" if self.unused_windows else ""
        return f"{self.total} tests on {self.total} walk-forward windows, each used once{unused}"

    def to_json(self) -> dict[str, int | bool]:
        return {"available": self.windows, "segments": self.segments, "tests": self.tests,
                "asked_segments": self.asked_segments, "asked_tests": self.asked_tests, "reuse": self.reuse}

    @classmethod
    def from_json(cls, doc: dict) -> TestPlan:
        return cls(doc["available"], doc["segments"], doc["tests"], doc["asked_segments"], doc["asked_tests"],
                   doc["reuse"])


def fit_tests(windows: int, segments: int, tests: int, allow_reuse: bool = False) -> TestPlan:
    """The tests a session runs on data holding `windows` windows (NoWindow when it holds none).

    Enough windows: as asked. Too few, `allow_reuse`: as asked, the extra tests reusing
    windows. Too few otherwise: the same segments with fewer tests each (windows // segments),
    or, with fewer windows than segments, one test per window and the later segments skipped.
    """
    if windows < 1:
        raise NoWindow("no full walk-forward window")
    if windows >= segments * tests or allow_reuse:
        return TestPlan(windows, segments, tests, segments, tests, allow_reuse and windows < segments * tests)
    if windows >= segments:
        return TestPlan(windows, segments, windows // segments, segments, tests, False)
    return TestPlan(windows, windows, 1, segments, tests, False)


def window_need(geometry: WalkForward = WalkForward()) -> str:
    """What one window needs, in the trader's words."""
    g = geometry
    return (f"{g.train_days + g.validation_days + g.holdout_days:g} days (train {g.train_days:g}, "
            f"validation {g.validation_days:g}, holdout {g.holdout_days:g})")
