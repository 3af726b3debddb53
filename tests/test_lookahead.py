"""No look-ahead: rewriting the future changes nothing that was known before it.

For random cut points t, every bar after t is replaced by different (valid) bars. Then
every indicator value and signal up to t, every trade decision made on data up to t, and
every trade closed by t must be unchanged — for every method, with every gate on.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import Params, bars_from_arrays, registered, run_backtest
from tests import indicators as ind
from tests.test_simulator import random_bars

INDICATORS = {
    "ema": lambda b: ind.ema(b.close, 21),
    "macd_line": lambda b: ind.macd(b.close, 12, 26, 9)[0],
    "macd_signal": lambda b: ind.macd(b.close, 12, 26, 9)[1],
    "atr": lambda b: ind.atr(b.high, b.low, b.close, 14),
    "atr_z": lambda b: ind.zscore(ind.atr(b.high, b.low, b.close, 14), 50),
    "donchian_high": lambda b: ind.rolling_max(b.high, 20),
    "donchian_low": lambda b: ind.rolling_min(b.low, 20),
    "vhf": lambda b: ind.vhf(b.close, 28),
    "cvd_slope": lambda b: ind.cvd_slope(b.volume, b.taker_buy_volume, 12),
    "imbalance": lambda b: ind.imbalance(b.volume, b.taker_buy_volume, 12),
}


def rewrite_future(bars, t: int, seed: int):
    """Bars equal to `bars` up to and including t, different valid bars after it."""
    other = random_bars(len(bars), seed=seed)
    scale = bars.close[t] / other.close[t]
    cols = {}
    for name in ("open", "high", "low", "close", "volume", "taker_buy_volume"):
        mine = getattr(bars, name).copy()
        theirs = getattr(other, name) * (scale if name in ("open", "high", "low", "close") else 1.0)
        mine[t + 1 :] = theirs[t + 1 :]
        cols[name] = mine
    return bars_from_arrays(bars.ts, **cols, source="rewritten")


def decisions(trades, t: int) -> list[tuple]:
    """What was decided on data up to t: entries filled by bar t + 1 (side, gates), prices up to t."""
    out = []
    for tr in trades:
        if tr["entry_idx"] <= t + 1:
            known_price = tr["entry_idx"] <= t
            out.append(
                (
                    int(tr["entry_idx"]),
                    int(tr["side"]),
                    bool(tr["gate_cvd"]), bool(tr["gate_imb"]), bool(tr["gate_atrz"]), bool(tr["gate_vhf"]),
                    float(tr["entry"]) if known_price else None,
                    float(tr["stop"]) if known_price else None,
                    float(tr["target"]) if known_price else None,
                )
            )
    return out


def closed_by(trades, t: int, with_vol_bin: bool) -> list[tuple]:
    fields = [f for f in trades.dtype.names if f != "vol_bin" or with_vol_bin]
    return [tuple(tr[f] for f in fields) for tr in trades if tr["exit_idx"] <= t and tr["exit_reason"] != 4]


@pytest.mark.parametrize("method", ["ema_crossover", "macd_trend", "trend_breakout"])
def test_changing_bars_after_t_changes_nothing_known_at_t(method):
    rng = np.random.default_rng(sum(map(ord, method)))
    params = Params(  # flat: each method takes its own periods, the others' are left out
        method=method, ema_fast=5, ema_slow=20, macd_fast=5, macd_slow=13, macd_signal=4, breakout_lookback=12,
        gate_cvd=True, gate_imb=True, gate_atrz=True, gate_vhf=True,
        imb_min=0.0, atr_z_min=-1.0, vhf_min=0.2, atr_stop_mult=1.0, hard_tp_usd=300.0, timeout_bars=30,
    )
    checked_trades = 0
    for case in range(25):
        n = 1500
        bars = random_bars(n, seed=500 + case)
        t = int(rng.integers(150, n - 2))
        future = rewrite_future(bars, t, seed=9000 + case)
        assert not np.array_equal(bars.close[t + 1 :], future.close[t + 1 :])

        for name, fn in INDICATORS.items():
            np.testing.assert_array_equal(fn(bars)[: t + 1], fn(future)[: t + 1], err_msg=f"{name} looked ahead (t={t})")
        strategy = registered()[method]
        sig_a = strategy.signals(bars, params.method_params)
        sig_b = strategy.signals(future, params.method_params)
        np.testing.assert_array_equal(sig_a[: t + 1], sig_b[: t + 1], err_msg=f"{method} signal looked ahead")

        a = run_backtest(bars, params, train_end=900, validation_end=1200)
        b = run_backtest(future, params, train_end=900, validation_end=1200)
        assert decisions(a.trades, t) == decisions(b.trades, t), f"case {case}: a decision used bars after t={t}"
        # vol_bin labels by the terciles of the whole train part (DESIGN.md §9), a label not a
        # decision; it can only be compared once the train part is all before t
        with_bin = t >= 900
        assert closed_by(a.trades, t, with_bin) == closed_by(b.trades, t, with_bin)
        np.testing.assert_array_equal(a.equity[: t + 1], b.equity[: t + 1])
        checked_trades += len(decisions(a.trades, t))
    assert checked_trades > 100, "too few trades to say anything"
