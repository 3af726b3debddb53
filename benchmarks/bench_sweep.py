"""Sweep speed: 1,000 configs over one 4,320-bar window through the batch API against a bare kernel loop.

    .venv/bin/python benchmarks/bench_sweep.py [--runs 7] [--gates on|off]

The grid: ema_crossover's ema_fast (4 values) × ema_slow (5) × atr_stop_mult (5) × hard_tp_usd (5) ×
timeout_bars (2), on the synthetic default data, one core. A run times, in turn:

- bare: the simulator kernel (engine.simulator.simulate) called in a plain Python loop, one call
  per config, with every array made beforehand (the 20 signals, each config's kernel vectors):
  the same trades, and nothing else;
- sweep: `run_sweep(bars, sweep_grid(base, axes))`, everything included: validating the grid,
  the signals, the kernel and the metrics of every phase of every config;
- loop: `run_backtest(bars, base.with_changes(...)).by_phase` per config (pydantic per config);
- loop before: the same with the metrics of engine.metrics.summarize per phase, the numpy
  definitions `by_phase` used before its numba pass: what a sweep cost before the batch API.

Prints ms per 1,000 configs (median and range over the runs) and each run's ratio to bare; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from itertools import product
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engine import Params, run_backtest, synthetic_bars
from engine.metrics import TABLE_PHASES, summarize
from engine.simulator import I_BLUNDER_BARS, I_EPISODE_BARS, I_HAS_TAKER, I_TRAIN_END, I_VAL_END, simulate
from engine.sweep import run_sweep, sweep_grid

AXES = {
    "ema_fast": [8, 12, 16, 20],
    "ema_slow": [30, 40, 50, 60, 80],
    "atr_stop_mult": [1.0, 1.5, 2.0, 2.5, 3.0],
    "hard_tp_usd": [200.0, 400.0, 600.0, 800.0, 1000.0],
    "timeout_bars": [120, 240],
}
GATES = ("gate_cvd", "gate_imb", "gate_atrz", "gate_vhf")


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f} [{min(values):7.1f}–{max(values):7.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--gates", choices=("on", "off"), default="on")
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    bars = synthetic_bars(4320, seed=7)
    base = Params(method="ema_crossover", **dict.fromkeys(GATES, args.gates == "on"))
    combos = [dict(zip(AXES, values)) for values in product(*AXES.values())]

    # the bare loop's arrays, made once: the sweep's own rows, with the phases run_sweep sets
    sweep = sweep_grid(base, AXES)
    ip = sweep.ip.copy()
    ip[:, I_TRAIN_END], ip[:, I_VAL_END], ip[:, I_EPISODE_BARS], ip[:, I_BLUNDER_BARS], ip[:, I_HAS_TAKER] = (
        2880, 3744, 120, 3, 1)
    signals = [s.strategy.signals(bars, s.values, s.vector) for s in sweep.sources]
    rows = [(signals[sweep.signal_of[k]], sweep.fp[k], ip[k]) for k in range(len(sweep))]
    o, h, lo, c, v, tb = bars.open, bars.high, bars.low, bars.close, bars.volume, bars.taker_buy_volume

    def bare() -> int:
        trades = 0
        for signal, fp, ipk in rows:
            trades += len(simulate(o, h, lo, c, v, tb, signal, fp, ipk)[0])
        return trades

    def swept() -> int:
        return len(run_sweep(bars, sweep_grid(base, AXES)).trades)

    def loop() -> int:
        trades = 0
        for changes in combos:
            r = run_backtest(bars, base.with_changes(**changes))
            _ = r.by_phase
            trades += len(r.trades)
        return trades

    def loop_before() -> int:
        trades = 0
        n = len(bars)
        for changes in combos:
            r = run_backtest(bars, base.with_changes(**changes))
            bounds = ((0, r.train_end), (r.train_end, r.validation_end), (r.validation_end, n), (0, n))
            _ = {phase: summarize(r.trades, r.equity, a, b, notional_usd=r.params.notional_usd,
                                  interval_ms=bars.interval_ms) for phase, (a, b) in zip(TABLE_PHASES, bounds)}
            trades += len(r.trades)
        return trades

    runs = {"bare": bare, "sweep": swept, "loop": loop, "loop before": loop_before}
    counts = {label: fn() for label, fn in runs.items()}  # compiles, and the same trades in all
    print(f"{len(combos):,} configs ({len(sweep.sources)} signals) over {len(bars):,} bars, gates {args.gates}, one core, "
          f"{args.runs} runs; trades: {counts}")
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(args.runs):
        for label, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[label].append((time.perf_counter() - t0) * 1e3)
    for label in times:
        ratios = np.array(times[label]) / np.array(times["bare"])
        print(f"{label:11s} ms per {len(combos):,} configs {spread(times[label])}   ÷ bare, each run: median "
              f"{statistics.median(ratios):5.2f}× [{ratios.min():4.2f}–{ratios.max():4.2f}]")
    print("target: sweep ≤ 1.5× bare (median)")


if __name__ == "__main__":
    main()
