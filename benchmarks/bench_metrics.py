"""Metrics speed: a backtest with all-phase metrics (`result.by_phase`) against the same backtest without them.

    .venv/bin/python benchmarks/bench_metrics.py [--windows 500] [--runs 7]

On 4,320-bar walk-forward windows of the synthetic default data, one core, each built-in
method twice: all four gates on (bench_engine's configs) and all gates off (more trades, a
position open most of the time). A run times three passes over the windows, in turn so a
slower moment of the machine hits all three:

- bare: `run_backtest` alone;
- by_phase: `run_backtest(...).by_phase`, the metrics of train, validation, holdout and all
  from one numba pass (engine.metrics.summarize_ranges);
- summarize: `run_backtest` and `engine.metrics.summarize` per phase, the numpy definitions
  (what `by_phase` cost before the numba pass).

Prints µs per backtest (median and range over the runs) and each run's ratio to bare; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Params, bars_needed, registered, run_backtest, synthetic_bars, walk_forward_windows
from engine.metrics import TABLE_PHASES, summarize

GATES = ("gate_cvd", "gate_imb", "gate_atrz", "gate_vhf")


def bare(slices: list, params: Params) -> None:
    for s in slices:
        run_backtest(s, params)


def by_phase(slices: list, params: Params) -> None:
    for s in slices:
        _ = run_backtest(s, params).by_phase


def by_summarize(slices: list, params: Params) -> None:
    for s in slices:
        r = run_backtest(s, params)
        bounds = ((0, r.train_end), (r.train_end, r.validation_end), (r.validation_end, len(s)), (0, len(s)))
        _ = {phase: summarize(r.trades, r.equity, a, b, notional_usd=params.notional_usd,
                              interval_ms=s.interval_ms, blunder_bars=r.blunder_bars)
             for phase, (a, b) in zip(TABLE_PHASES, bounds)}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} [{min(values):6.1f}–{max(values):6.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=500)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    bars = synthetic_bars(bars_needed(args.windows, 300_000), seed=7)
    windows = walk_forward_windows(len(bars), bars.interval_ms)[: args.windows]
    slices = [bars.slice(w.start, w.end) for w in windows]
    print(f"{len(slices)} windows of {len(slices[0])} bars, one core, {args.runs} runs; "
          "µs per backtest: median [min–max] over the runs; ratios to bare: median [min–max] of each run's")
    print(f"{'method':16s} {'gates':5s} {'trades':>6s} {'bare µs':>23s} {'by_phase µs':>23s} {'summarize µs':>23s}"
          f" {'by_phase ÷ bare':>22s} {'summarize ÷ bare':>22s}")
    worst = 0.0
    for name in registered():
        for gates in (True, False):
            params = Params(method=name, **dict.fromkeys(GATES, gates))
            for s in slices[:3]:  # compile and warm
                by_summarize([s], params)
                by_phase([s], params)
            trades = sum(len(run_backtest(s, params).trades) for s in slices) / len(slices)
            times: dict[str, list[float]] = {"bare": [], "by_phase": [], "summarize": []}
            for _ in range(args.runs):
                for label, fn in (("bare", bare), ("by_phase", by_phase), ("summarize", by_summarize)):
                    t0 = time.perf_counter()
                    fn(slices, params)
                    times[label].append((time.perf_counter() - t0) / len(slices) * 1e6)
            ratio = [b / a for a, b in zip(times["bare"], times["by_phase"])]
            before = [b / a for a, b in zip(times["bare"], times["summarize"])]
            worst = max(worst, statistics.median(ratio))
            print(f"{name:16s} {'on' if gates else 'off':5s} {trades:6.1f} {spread(times['bare'])} "
                  f"{spread(times['by_phase'])} {spread(times['summarize'])} "
                  f"{statistics.median(ratio):5.2f}× [{min(ratio):4.2f}–{max(ratio):4.2f}] "
                  f"{statistics.median(before):5.2f}× [{min(before):4.2f}–{max(before):4.2f}]")
    print(f"target: by_phase ≤ 1.5× bare (median); the largest median here {worst:.2f}×")


if __name__ == "__main__":
    main()
