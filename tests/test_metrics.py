"""engine.metrics' numba twin (summarize_ranges) against its definitions (summarize), bit for bit.

`summarize` is what the metrics are; the twin is how a backtest computes them. Equal means
equal reprs: the same bits, the same sign of zero, ints where summarize gives ints.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import Params, run_backtest
from engine.metrics import (
    _STACK,
    TABLE_PHASES,
    YEAR_MS,
    _np_sum,
    max_drawdown,
    metrics_of_row,
    score,
    summarize,
    summarize_ranges,
)
from engine.simulator import TRADE_DTYPE
from tests.test_simulator import FIVE_MIN, random_bars, random_params

NO_TRADES = np.empty(0, np.int64)


def numpy_sum(values: np.ndarray, lo: int, n: int, center: float = 0.0, squared: bool = False) -> float:
    frames, lefts = np.empty((3, _STACK), np.int64), np.empty(_STACK)
    return _np_sum(values, lo, n, center, squared, False, NO_TRADES, NO_TRADES, frames, lefts)


def test_sums_add_in_numpys_order_bit_for_bit():
    rng = np.random.default_rng(5)
    for case in range(400):
        n = int(rng.integers(0, 3000)) if case % 4 else int(rng.integers(0, 140))
        values = rng.normal(0, 1, n) * 10.0 ** rng.uniform(-6, 6, n)
        values[rng.random(n) < 0.3] = 0.0
        values[rng.random(n) < 0.05] = -0.0
        lo = int(rng.integers(0, n + 1))
        part = values[lo:]
        assert repr(numpy_sum(values, lo, n - lo)) == repr(float(part.sum())), (case, n, lo)
        center = float(part.mean()) if len(part) else 0.0
        squares = (part - center) * (part - center)
        assert repr(numpy_sum(values, lo, n - lo, center, True)) == repr(float(squares.sum())), (case, n, lo)
    assert repr(numpy_sum(np.array([-0.0, -0.0]), 0, 2)) == repr(float(np.array([-0.0, -0.0]).sum())) == "0.0"


def simulator_like(rng: np.random.Generator, n_bars: int, n_trades: int) -> tuple[np.ndarray, np.ndarray]:
    """Trades and equity as the simulator writes them: trades in exit order, each entering no earlier
    than the one before exited (a flip enters on the exit bar), the equity level on bars no trade holds.
    Inside a trade the equity moves, stands still, returns to its peak; pnl includes 0.0 and −0.0."""
    trades = np.zeros(n_trades, TRADE_DTYPE)
    equity = np.zeros(n_bars)
    realized = 0.0
    bar = int(rng.integers(1, 30))
    k = 0
    last = 0  # first bar not written yet
    while k < n_trades and bar < n_bars:
        entry = bar
        exit_ = min(n_bars - 1, entry + int(rng.integers(0, 40)))
        equity[last:entry] = realized
        m = exit_ + 1 - entry
        kind = rng.choice(5, m, p=[0.25, 0.3, 0.3, 0.1, 0.05])  # still, up, down, back to the peak, jump
        step = np.where(kind == 1, 1.0, -1.0) * np.abs(rng.normal(0, 200, m))
        step[kind == 0] = 0.0
        step[kind == 4] = rng.normal(0, 5000, int((kind == 4).sum()))
        path = (equity[entry - 1] if entry > 0 else 0.0) + np.cumsum(step)
        peaks = np.maximum.accumulate(np.r_[realized, path])[1:]
        path[kind == 3] = peaks[kind == 3]
        equity[entry : exit_ + 1] = path
        realized = equity[exit_]
        last = exit_ + 1
        t = trades[k]
        t["entry_idx"], t["exit_idx"], t["bars_held"] = entry, exit_, exit_ - entry
        t["pnl"] = rng.choice([rng.normal(0, 300), 0.0, -0.0, 150.0], p=[0.85, 0.05, 0.05, 0.05])
        t["exit_reason"] = rng.integers(0, 5)
        t["vol_bin"] = rng.integers(0, 3)
        k += 1
        bar = exit_ + (0 if rng.random() < 0.2 else int(rng.integers(1, 60)))  # 0: a flip
    equity[last:] = realized
    return trades[:k], equity


def assert_twin_equals_summarize(trades, equity, starts, stops, notional, interval_ms, blunder_bars, context):
    table = summarize_ranges(trades, equity, np.array(starts, np.int64), np.array(stops, np.int64), notional,
                             YEAR_MS / interval_ms, blunder_bars)
    for row, start, stop in zip(table.tolist(), starts, stops):
        want = summarize(trades, equity, start, stop, notional_usd=notional, interval_ms=interval_ms,
                         blunder_bars=blunder_bars)
        assert repr(metrics_of_row(row)) == repr(want), f"{context}, bars [{start}, {stop})"


def test_the_twin_gives_summarize_of_any_range_on_random_trades_and_equity():
    rng = np.random.default_rng(11)
    for case in range(300):
        n_bars = int(rng.integers(1, 4000))
        trades, equity = simulator_like(rng, n_bars, int(rng.integers(0, 300 if case % 5 == 0 else 40)))
        starts, stops = [0, 0, n_bars, n_bars - 1], [n_bars, 0, n_bars, n_bars]
        for _ in range(8):
            a, b = sorted(int(x) for x in rng.integers(0, n_bars + 1, 2))
            starts.append(a)
            stops.append(b if rng.random() < 0.8 else min(n_bars, a + int(rng.integers(0, 3))))
        notional = float(rng.uniform(100, 1e6))
        assert_twin_equals_summarize(trades, equity, starts, stops, notional, int(rng.choice([60_000, FIVE_MIN])),
                                     int(rng.integers(1, 6)), f"case {case}")


def test_a_backtest_reports_summarize_of_each_phase():
    rng = np.random.default_rng(3)
    for case in range(60):
        n = int(rng.integers(300, 1500))
        bars = random_bars(n, seed=500 + case, taker=case % 5 != 0, gap_rate=0.02)
        params = random_params(rng)
        train_end, val_end = sorted(int(x) for x in rng.integers(0, n + 1, 2))
        result = run_backtest(bars, params, train_end=train_end, validation_end=val_end, blunder_bars=case % 4 + 1)
        bounds = {"train": (0, train_end), "validation": (train_end, val_end), "holdout": (val_end, n), "all": (0, n)}
        assert list(result.by_phase) == list(TABLE_PHASES)
        for phase, (start, stop) in bounds.items():
            want = summarize(result.trades, result.equity, start, stop, notional_usd=params.notional_usd,
                             interval_ms=FIVE_MIN, blunder_bars=case % 4 + 1)
            assert repr(result.metrics(phase)) == repr(want), f"case {case} ({params.method}), {phase}"


@pytest.mark.parametrize("method", ["ema_crossover", "macd_trend", "trend_breakout"])
@pytest.mark.parametrize("gates", [True, False])
def test_a_walk_forward_window_reports_summarize_of_each_phase(method, gates):
    bars = random_bars(4320, seed=17)
    params = Params(method=method, gate_cvd=gates, gate_imb=gates, gate_atrz=gates, gate_vhf=gates)
    result = run_backtest(bars, params)
    assert len(result.trades) > 10
    for phase, (start, stop) in {"train": (0, 2880), "validation": (2880, 3744), "holdout": (3744, 4320),
                                 "all": (0, 4320)}.items():
        want = summarize(result.trades, result.equity, start, stop, notional_usd=params.notional_usd,
                         interval_ms=FIVE_MIN)
        assert repr(result.by_phase[phase]) == repr(want), phase


def test_episode_metrics_follow_the_definitions_of_engine_metrics():
    """The kernel scores its episodes itself: each one's counts, drawdown and score are summarize's
    definitions over its bars (its sums add in trade order, so PnL and payoff agree to rounding)."""
    rng = np.random.default_rng(23)
    checked = 0
    for case in range(40):
        bars = random_bars(1200, seed=900 + case)
        params = random_params(rng)
        result = run_backtest(bars, params, train_end=700, validation_end=950, episode_bars=60)
        for ep in result.episodes:
            start, stop = int(ep["start"]), int(ep["stop"])
            want = summarize(result.trades, result.equity, start, stop, notional_usd=params.notional_usd,
                             interval_ms=FIVE_MIN)
            wins = result.trades[(result.trades["exit_idx"] >= start) & (result.trades["exit_idx"] < stop)]["pnl"] > 0
            assert (ep["n_trades"], ep["wins"], ep["blunders"]) == (want.n_trades, int(wins.sum()), want.blunders)
            assert ep["hit"] == want.hit
            assert ep["maxdd"] == max_drawdown(result.equity, start, stop) == want.maxdd
            assert ep["total_pnl"] == pytest.approx(want.total_pnl, abs=1e-9)
            assert ep["payoff"] == pytest.approx(want.payoff, rel=1e-12)
            assert ep["score"] == score(ep["n_trades"], ep["hit"], ep["payoff"], ep["maxdd"], ep["blunders"],
                                        params.notional_usd)
            checked += ep["n_trades"] > 0
    assert checked > 200
