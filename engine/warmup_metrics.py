"""Compile (or load from numba's cache) the metrics kernel as the sweep kernel calls it: engine.warmup runs
this in a process of its own while it compiles the rest."""

from __future__ import annotations

import numpy as np

from engine.metrics import phase_table
from engine.simulator import TRADE_DTYPE


def warm_metrics() -> None:
    trades = np.empty(0, dtype=TRADE_DTYPE)
    phase_table(trades, np.zeros(4), np.int64(1), np.int64(2), np.float64(10_000.0), 1.0, np.int64(3))
