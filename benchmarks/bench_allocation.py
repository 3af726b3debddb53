"""Portfolio simulation speed: 10 strategies over one year of 5-minute bars under the controller.

    .venv/bin/python benchmarks/bench_allocation.py

The strategies' decided positions come from real backtests of ten configs on a synthetic
year; timed is `run_portfolio` (controller and override on, without the two comparison
runs, then with them), best of 5 after a warm-up call.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engine import Params, run_backtest, synthetic_bars
from engine.allocation import AllocationSettings, decided_positions, run_portfolio


def main() -> None:
    bars = synthetic_bars(105_120, seed=3)
    configs = [Params(method=m, atr_stop_mult=1.0 + 0.25 * i) for i in range(4) for m in ("ema_crossover", "macd_trend", "trend_breakout")][:10]
    decided = np.vstack([decided_positions(run_backtest(bars, p).trades, len(bars)) for p in configs])
    names = [f"s{i}" for i in range(len(configs))]
    bases = np.full(len(configs), 0.1)
    settings = AllocationSettings()
    for compare in (False, True):
        run_portfolio(bars.close, decided, names, bases, settings, bars.interval_ms, compare=compare)
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            result = run_portfolio(bars.close, decided, names, bases, settings, bars.interval_ms, compare=compare)
            best = min(best, time.perf_counter() - t0)
        what = "with equal-weight and no-override comparisons" if compare else "controller and override"
        print(f"10 strategies x {len(bars):,} bars, {what}: {best * 1000:.1f} ms "
              f"({len(result.rebalance_bars)} rebalances, {len(result.override_bars())} override bars)")
    print("target: ≤ 50 ms warm")


if __name__ == "__main__":
    main()
