"""Metrics speed: a backtest with all-phase metrics (`result.by_phase`) against the same backtest without them.

    .venv/bin/python benchmarks/bench_metrics.py [--windows 500] [--runs 7]

On 4,320-bar walk-forward windows of the synthetic default data, one core, each built-in
method twice: all four gates on (bench_engine's configs) and all gates off (more trades, a
position open most of the time). Timed, window by window, in turn (the order alternating
from one window to the next, so neither gains from the other's warm cache):

- bare: `run_backtest` alone;
- by_phase: `run_backtest(...).by_phase`, the metrics of train, validation, holdout and all
  from one numba pass (engine.metrics.summarize_ranges);
- summarize: `run_backtest` and `engine.metrics.summarize` per phase, the numpy definitions
  (what `by_phase` cost before the numba pass).

Prints µs per backtest — the best of the runs window by window, then the median and range of
the runs' means — and the ratios to bare of those bests and of each run's means; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engine import Params, bars_needed, registered, run_backtest, synthetic_bars, walk_forward_windows
from engine.metrics import TABLE_PHASES, summarize

GATES = ("gate_cvd", "gate_imb", "gate_atrz", "gate_vhf")


def bare(s, params: Params) -> None:
    run_backtest(s, params)


def by_phase(s, params: Params) -> None:
    _ = run_backtest(s, params).by_phase


def by_summarize(s, params: Params) -> None:
    r = run_backtest(s, params)
    bounds = ((0, r.train_end), (r.train_end, r.validation_end), (r.validation_end, len(s)), (0, len(s)))
    _ = {phase: summarize(r.trades, r.equity, a, b, notional_usd=params.notional_usd, interval_ms=s.interval_ms,
                          blunder_bars=r.blunder_bars)
         for phase, (a, b) in zip(TABLE_PHASES, bounds)}


VARIANTS = {"bare": bare, "by_phase": by_phase, "summarize": by_summarize}


def timed(slices: list, params: Params, runs: int) -> dict[str, np.ndarray]:
    """µs of each variant on each window in each run: {variant: [run, window]}."""
    times = {label: np.empty((runs, len(slices))) for label in VARIANTS}
    order = list(VARIANTS.items())
    for run in range(runs):
        for w, s in enumerate(slices):
            for label, fn in order if w % 2 else order[::-1]:
                t0 = time.perf_counter()
                fn(s, params)
                times[label][run, w] = (time.perf_counter() - t0) * 1e6
    return times


def spread(values: np.ndarray) -> str:
    return f"{np.median(values):6.1f} [{values.min():5.1f}–{values.max():5.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=500)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    bars = synthetic_bars(bars_needed(args.windows, 300_000), seed=7)
    windows = walk_forward_windows(len(bars), bars.interval_ms)[: args.windows]
    slices = [bars.slice(w.start, w.end) for w in windows]
    print(f"{len(slices)} windows of {len(slices[0])} bars, one core, {args.runs} runs. µs per backtest: best (of the "
          "runs, window by window) and the runs' means, median [min–max]; ratios to bare: of the bests, and of "
          "each run's means, median [min–max]")
    print(f"{'method':15s} {'gates':5s} {'trades':>6s} {'bare µs':>25s} {'by_phase µs':>25s} {'summarize µs':>25s}"
          f" {'by_phase ÷ bare':>25s} {'summarize ÷ bare':>25s}")
    worst = 0.0
    for name in registered():
        for gates in (True, False):
            params = Params(method=name, **dict.fromkeys(GATES, gates))
            for s in slices[:3]:  # compile and warm
                for fn in VARIANTS.values():
                    fn(s, params)
            trades = sum(len(run_backtest(s, params).trades) for s in slices) / len(slices)
            times = timed(slices, params, args.runs)
            best = {label: t.min(axis=0).mean() for label, t in times.items()}
            means = {label: t.mean(axis=1) for label, t in times.items()}
            cells = [f"{best[label]:5.1f} {spread(means[label])}" for label in VARIANTS]
            ratios = [f"{best[label] / best['bare']:4.2f}× {spread(means[label] / means['bare'])}"
                      for label in ("by_phase", "summarize")]
            worst = max(worst, best["by_phase"] / best["bare"], float(np.median(means["by_phase"] / means["bare"])))
            print(f"{name:15s} {'on' if gates else 'off':5s} {trades:6.1f} {' '.join(f'{c:>25s}' for c in cells)} "
                  f"{' '.join(f'{r:>25s}' for r in ratios)}")
    print(f"target: by_phase ≤ 1.5× bare; the largest ratio here (best or median) {worst:.2f}×")


if __name__ == "__main__":
    main()
