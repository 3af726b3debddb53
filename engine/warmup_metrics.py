"""Compile (or load from numba's cache) what engine.warmup has compiled aside, in a process of its own, while it
compiles the rest: the metrics kernel as the sweep kernel calls it, then the conductor's portfolio kernel (the
conductor loads it from the cache at its first test's outcome)."""

from __future__ import annotations

import os

import numpy as np

from engine.allocation import warm_up_portfolio
from engine.metrics import phase_table
from engine.simulator import TRADE_DTYPE


def warm_metrics() -> None:
    trades = np.empty(0, dtype=TRADE_DTYPE)
    phase_table(trades, np.zeros(4), 1, 2, 10_000.0, 1.0, 3)  # from Python, ints and floats are int64 and float64
    # the fork server waits for this process, not for the portfolio kernel: a child compiles that, an orphan
    # that init reaps (the fork server makes no child it would have to wait for)
    if os.fork() == 0:
        try:
            warm_up_portfolio()
        finally:
            os._exit(0)
