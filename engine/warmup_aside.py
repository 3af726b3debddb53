"""What engine.warmup compiles aside, in a process of its own, while it compiles the simulator: the metrics
kernel as the sweep kernel calls it, every built-in strategy's signal kernels, then the conductor's portfolio
kernel (the conductor loads it from the cache at the next segment's start). Also the bars and configs the
warm-up runs, shared by both processes (importing engine.warmup would run it)."""

from __future__ import annotations

import os

import numpy as np

from engine.allocation import warm_up_portfolio
from engine.data import Bars
from engine.methods import BUILT_INS
from engine.metrics import phase_table
from engine.params import Params
from engine.simulator import TRADE_DTYPE
from engine.sweep import sweep_of
from engine.synthetic import synthetic_bars


def warm_up_configs() -> list[Params]:
    """One config of every built-in method, with short indicator windows (600 bars must get past them)."""
    configs = []
    for strategy in BUILT_INS:
        short = {p.name: 20 for p in strategy.parameters if p.name in ("ema_slow", "macd_slow", "breakout_lookback")}
        configs.append(Params(method=strategy.name, atr_z_window=50, vhf_period=20, **short))
    return configs


def warm_up_bars() -> Bars:
    return synthetic_bars(600, seed=0)


def warm_aside() -> None:
    trades = np.empty(0, dtype=TRADE_DTYPE)
    phase_table(trades, np.zeros(4), 1, 2, 10_000.0, 1.0, 3)  # from Python, ints and floats are int64 and float64
    bars = warm_up_bars()
    for source in sweep_of(warm_up_configs()).sources:  # as engine.sweep.run_sweep computes them
        source.strategy.signals(bars, source.values, source.vector)
    # the fork server waits for this process, not for the portfolio kernel: a child compiles that, an orphan
    # that init reaps (the fork server makes no child it would have to wait for)
    if os.fork() == 0:
        try:
            warm_up_portfolio()
        finally:
            os._exit(0)
