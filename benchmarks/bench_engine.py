"""Engine speed: µs per 4,320-bar micro-backtest (all four gates on), bars/s, 500 tests, cold start.

    .venv/bin/python benchmarks/bench_engine.py

Warm figures are the best of 5 passes over 500 different walk-forward windows of the
synthetic default data, one core. "call" is the whole `run_backtest` (Python included);
"kernel" is the two numba calls alone. Cold is a fresh process: import + first backtest,
once with whatever numba cache exists and once more after it is surely populated.

Strategy files (examples/strategies/) on the same windows: the numba example against the built-in
of the same work (rsi_reversion: two Wilder smoothings and a cross in one pass over the closes;
ema_crossover: two EMAs and a cross), as the ratio of their µs per backtest, and the cost of the
pandas example per backtest. Their passes alternate, so a slower moment of the machine hits both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from engine import Params, bars_needed, registered, run_backtest, synthetic_bars, walk_forward_windows  # noqa: E402
from engine.backtest import kernel_args  # noqa: E402
from engine.simulator import I_BLUNDER_BARS, I_EPISODE_BARS, I_HAS_TAKER, I_TRAIN_END, I_VAL_END, simulate  # noqa: E402
from engine.strategies import load_file  # noqa: E402

N_TESTS = 500
PASSES = 5
EXAMPLES = ROOT / "examples" / "strategies"
GATES_ON = {"gate_cvd": True, "gate_imb": True, "gate_atrz": True, "gate_vhf": True}
# the numba example against the built-in of the same work: required within this factor per backtest
SAME_WORK = ("rsi_reversion", "ema_crossover")
WITHIN = 1.2

COLD_SNIPPET = """
import time; t0 = time.perf_counter()
from engine import Params, run_backtest, synthetic_bars
bars = synthetic_bars(4320, seed=1)
t1 = time.perf_counter()
for m in ("ema_crossover", "macd_trend", "trend_breakout"):
    run_backtest(bars, Params(method=m))
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def cold_start() -> tuple[float, float, float]:
    """(wall s of the process, import s, first three backtests s) in a fresh interpreter."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", COLD_SNIPPET], cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout.split()
    return time.perf_counter() - started, float(out[0]), float(out[1])


def main() -> None:
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    wall, imp, first = cold_start()
    print(f"cold start (fresh process, numba cache as found): {wall:.2f} s wall = import {imp:.2f} s + first 3 backtests {first:.2f} s")
    wall, imp, first = cold_start()
    print(f"cold start (fresh process, numba cache populated): {wall:.2f} s wall = import {imp:.2f} s + first 3 backtests {first:.2f} s")

    bars = synthetic_bars(bars_needed(N_TESTS, 300_000), seed=7)
    windows = walk_forward_windows(len(bars), bars.interval_ms)[:N_TESTS]
    slices = [bars.slice(w.start, w.end) for w in windows]
    n_bars = len(slices[0])
    print(f"\nwarm, one core, {N_TESTS} windows of {n_bars} bars, all four gates on, best of {PASSES} passes")
    print(f"{'method':16s} {'µs/call':>9s} {'µs/kernel':>10s} {'Mbars/s':>8s} {'500 tests s':>12s} {'trades/test':>12s}")
    total_kernel = 0.0
    methods = list(registered())
    for name in methods:
        params = Params(method=name, gate_cvd=True, gate_imb=True, gate_atrz=True, gate_vhf=True)
        for s in slices[:3]:
            run_backtest(s, params)
        best_call = best_kernel = float("inf")
        trades = 0
        for _ in range(PASSES):
            t0 = time.perf_counter()
            for s in slices:
                trades += len(run_backtest(s, params).trades)
            best_call = min(best_call, time.perf_counter() - t0)
            args = kernel_args(params)
            ip = args.ip.copy()
            ip[I_TRAIN_END], ip[I_VAL_END], ip[I_EPISODE_BARS], ip[I_BLUNDER_BARS], ip[I_HAS_TAKER] = 2880, 3744, 120, 3, 1
            t0 = time.perf_counter()
            for s in slices:
                sig = args.strategy.signal(s.open, s.high, s.low, s.close, s.volume, s.taker_buy_volume, args.method_p)
                simulate(s.open, s.high, s.low, s.close, s.volume, s.taker_buy_volume, sig, args.fp, ip)
            best_kernel = min(best_kernel, time.perf_counter() - t0)
        total_kernel += best_kernel
        print(
            f"{name:16s} {best_call / N_TESTS * 1e6:9.1f} {best_kernel / N_TESTS * 1e6:10.1f} "
            f"{N_TESTS * n_bars / best_call / 1e6:8.1f} {best_call:12.3f} {trades / PASSES / N_TESTS:12.1f}"
        )
    print(f"\n500 tests (one per window, methods in turn): {total_kernel / len(methods):.3f} s kernel time on average")
    strategy_files(slices)
    print("targets: ≤ 60 µs per backtest warm, 500 tests ≤ 0.1 s kernel, cold start ≤ 3 s with the cache populated, "
          f"a numba strategy file within {WITHIN}× of the built-in of the same work")


def strategy_files(slices: list) -> None:
    """µs per backtest and per signal of the example strategy files against a built-in, warm, on `slices`."""
    for path in sorted(EXAMPLES.glob("*.py")):
        load_file(path)
    names = [SAME_WORK[1], SAME_WORK[0], "bollinger_breakout"]
    configs = {name: Params(method=name, **GATES_ON) for name in names}
    for params in configs.values():
        for s in slices[:3]:
            run_backtest(s, params)
    best_call = dict.fromkeys(names, float("inf"))
    best_signal = dict.fromkeys(names, float("inf"))
    trades = dict.fromkeys(names, 0)
    for _ in range(PASSES):
        for name, params in configs.items():  # alternating: a slower moment of the machine hits every one
            t0 = time.perf_counter()
            for s in slices:
                trades[name] += len(run_backtest(s, params).trades)
            best_call[name] = min(best_call[name], time.perf_counter() - t0)
            args = kernel_args(params)
            t0 = time.perf_counter()
            for s in slices:
                args.strategy.signals(s, params.method_params, args.method_p)
            best_signal[name] = min(best_signal[name], time.perf_counter() - t0)
    print(f"\nstrategy files (examples/strategies/) and a built-in, warm, the same {N_TESTS} windows, best of {PASSES} passes")
    print(f"{'strategy':20s} {'from':10s} {'form':6s} {'µs/call':>9s} {'µs/signal':>10s} {'trades/test':>12s}")
    for name, params in configs.items():
        strategy = params.strategy
        where = "built-in" if strategy.origin == "built-in" else "file"
        print(f"{name:20s} {where:10s} {strategy.form:6s} {best_call[name] / N_TESTS * 1e6:9.1f} "
              f"{best_signal[name] / N_TESTS * 1e6:10.1f} {trades[name] / PASSES / N_TESTS:12.1f}")
    user, builtin = SAME_WORK
    ratio = best_call[user] / best_call[builtin]
    verdict = "within" if ratio <= WITHIN else "NOT within"
    print(f"{user} (file, numba) ÷ {builtin} (built-in): {ratio:.2f}× per backtest, "
          f"{best_signal[user] / best_signal[builtin]:.2f}× per signal; {verdict} {WITHIN}×")
    print(f"bollinger_breakout (file, pandas): {best_call['bollinger_breakout'] / N_TESTS * 1e3:.2f} ms per backtest, "
          f"{best_call['bollinger_breakout'] / best_call[builtin]:.0f}× {builtin}")


if __name__ == "__main__":
    main()
