"""Compile (or load from numba's cache) the metrics kernel as the sweep kernel calls it: engine.warmup runs
this in a process of its own while it compiles the rest."""

from __future__ import annotations

import numpy as np

from engine.metrics import phase_table
from engine.simulator import TRADE_DTYPE


def warm_metrics() -> None:
    trades = np.empty(0, dtype=TRADE_DTYPE)
    phase_table(trades, np.zeros(4), 1, 2, 10_000.0, 1.0, 3)  # from Python, ints and floats are int64 and float64
