"""Where each test of a session runs: its place in the session, its id, its walk-forward window.

Test g (0-based, in session order) is test g mod T + 1 of segment g div T + 1 and runs on
window `plan.window_of(g)` of the session's bars (engine.windows.TestPlan: never a reused
window unless the session was told to, and then marked).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.data import Bars
from engine.jsonl import SessionFileError
from engine.session import test_id
from engine.windows import TestPlan, Window, walk_forward_windows


class Schedule:
    """The session's tests on its bars; `place` puts them on the bars once they are read."""

    def __init__(self, segments: int, tests: int) -> None:
        self.S = segments
        self.T = tests
        self.bars: Bars | None = None
        self.windows: list[Window] = []
        self.plan = TestPlan(1, segments, tests, segments, tests, False)  # until `place`

    def place(self, bars: Bars, planned: dict[str, Any] | None, config_path: Any) -> TestPlan:
        """Cut `bars` into windows and check them against the plan the session config fixed.

        `planned` is session_config.json's `windows` (None for a session from before windows
        were fitted: its tests reuse the windows in turn). SessionFileError when the data no
        longer holds the windows the session was planned on.
        """
        self.bars = bars
        self.windows = walk_forward_windows(len(bars), bars.interval_ms)
        if not self.windows:
            raise RuntimeError(f"{len(bars)} bars hold no full 15-day walk-forward window")
        if planned is None:
            self.plan = TestPlan(len(self.windows), self.S, self.T, self.S, self.T, len(self.windows) < self.S * self.T)
        else:
            self.plan = TestPlan.from_json(planned)
            if self.plan.windows != len(self.windows):
                raise SessionFileError(config_path, f"the data now holds {len(self.windows)} windows, not the "
                                       f"{self.plan.windows} the session was planned on: was the file changed?")
        return self.plan

    @property
    def total(self) -> int:
        return self.S * self.T

    def index(self, segment: int, test: int) -> int:
        """Global index (0-based, in session order) of a segment's test."""
        return (segment - 1) * self.T + (test - 1)

    def test_of(self, g: int) -> str:
        return test_id(g // self.T + 1, g % self.T + 1)

    def window(self, g: int) -> Window:
        return self.windows[self.plan.window_of(g)]

    def reused_in(self, segment: int) -> int:
        """How many of a segment's tests run on a window an earlier test ran on."""
        return sum(self.plan.reused(self.index(segment, t)) for t in range(1, self.T + 1))

    def planned(self, segment: int) -> list[dict[str, Any]]:
        """segment_plan.json's `tests_planned`: each test, its window, whether it reuses one."""
        return [{"test_id": test_id(segment, t), "window": self.plan.window_of(self.index(segment, t)),
                 "reused": self.plan.reused(self.index(segment, t))} for t in range(1, self.T + 1)]

    def bar_time(self, bar: int) -> str:
        """Market time of a bar (its open), ISO UTC."""
        assert self.bars is not None
        return str(np.datetime_as_string(self.bars.ts[bar].astype("datetime64[ms]"), unit="ms")) + "Z"
