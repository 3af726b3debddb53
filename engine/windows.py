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
