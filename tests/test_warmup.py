"""The warm-up is the first bar at which every indicator the config uses has its full lookback.

For each method, the stop's ATR and each gate, a signal one bar before its warm-up opens
nothing while the same signal at the warm-up trades. And each window's stated first full bar
is the first from which its value no longer depends on bars before the data (an EMA has no
such bar: its crosses are taken to settle ten periods in, engine/methods.py EMA_SETTLE).
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import Params, bars_from_arrays, run_backtest, warmup_bars
from tests import indicators as ind
from tests import reference
from tests.test_simulator import random_bars, random_params

FIVE_MIN = 300_000
# every gate off and a short ATR (full at bar 3), so only the part under test sets the warm-up
NO_GATES = dict(gate_cvd=False, gate_imb=False, gate_atrz=False, gate_vhf=False, atr_period=2)
# a method that can cross from bar 30 on (EMA_SETTLE × ema_slow), to carry the signal in the ATR and gate
# tests: their windows are longer, so they set the warm-up
QUICK_CROSS = dict(method="ema_crossover", ema_fast=2, ema_slow=3)


def bars_from_closes(close: np.ndarray, *, taker: bool = True):
    """Bars opening at the previous close, half a unit of wick each side; taker buys are 3/4 of volume."""
    n = len(close)
    open_ = np.r_[close[0], close[:-1]]
    volume = np.full(n, 10.0)
    ts = 1_700_000_000_000 + FIVE_MIN * np.arange(n, dtype=np.int64)
    return bars_from_arrays(
        ts, open_, np.maximum(open_, close) + 0.5, np.minimum(open_, close) - 0.5, close, volume,
        volume * 0.75 if taker else None, source="warm-up",
    )


def cross_up_at(k: int, *, taker: bool = True):
    """Closes falling half a unit a bar, then a jump at bar k held for five bars: every fast
    EMA (and the MACD histogram) crosses above its slow one at bar k, and only the first
    step down at bar 1 signals before it."""
    return bars_from_closes(np.r_[200.0 - 0.5 * np.arange(k), np.full(5, 300.0)], taker=taker)


def breakout_at(k: int):
    """Flat closes at 100, then a close of 110 at bar k held for five bars: above every earlier high."""
    return bars_from_closes(np.r_[np.full(k, 100.0), np.full(5, 110.0)])


def gate_on(gate: str, **window) -> Params:
    """QUICK_CROSS with one gate on, with its window."""
    return Params(**QUICK_CROSS, **{**NO_GATES, f"gate_{gate}": True}, **window)


def signal_bars(bars, params: Params) -> list[int]:
    sig = params.strategy.signals(bars, params.method_params)
    return [int(i) for i in np.flatnonzero(sig)]


def entries(bars, params: Params) -> list[int]:
    """Fill bars of every trade, all bars in train."""
    n = len(bars)
    return [int(t["entry_idx"]) for t in run_backtest(bars, params, train_end=n, validation_end=n).trades]


def assert_trades_from_the_warmup(params: Params, warmup: int) -> None:
    """A cross up at warmup − 1 opens nothing; the same cross at warmup fills at the next open."""
    assert warmup_bars(params) == warmup
    for k, expected in ((warmup - 1, []), (warmup, [warmup + 1])):
        bars = cross_up_at(k)
        assert signal_bars(bars, params) == [1, k], "the test bars must signal at bar 1 and bar k only"
        assert entries(bars, params) == expected, f"cross at bar {k}, warm-up {warmup}"


# ---------------------------------------------------------------- the methods


def test_ema_crossover_trades_a_cross_ten_ema_slow_periods_in_and_not_one_bar_before():
    params = Params(method="ema_crossover", ema_fast=3, ema_slow=20, **NO_GATES)
    assert_trades_from_the_warmup(params, 10 * 20)


def test_macd_trend_trades_a_cross_ten_macd_slow_plus_macd_signal_periods_in_and_not_one_bar_before():
    params = Params(method="macd_trend", macd_fast=3, macd_slow=10, macd_signal=6, **NO_GATES)
    assert_trades_from_the_warmup(params, 10 * (10 + 6))


def test_trend_breakout_trades_a_breakout_at_breakout_lookback():
    params = Params(method="trend_breakout", breakout_lookback=20, **NO_GATES)
    assert warmup_bars(params) == 20
    # one bar earlier the close clears every high before it, but the 20 prior bars are not
    # there yet: the channel is incomplete, so the kernel gives no signal
    assert signal_bars(breakout_at(19), params) == []
    assert entries(breakout_at(19), params) == []
    assert signal_bars(breakout_at(20), params) == [20]
    assert entries(breakout_at(20), params) == [21]


# ---------------------------------------------------------------- the ATR and the gates


def test_the_stops_atr_delays_signals_to_atr_period_plus_one():
    params = Params(**QUICK_CROSS, **{**NO_GATES, "atr_period": 40})
    assert_trades_from_the_warmup(params, 41)


@pytest.mark.parametrize(
    ("gate", "window", "warmup"),
    [
        ("cvd", dict(cvd_window=60), 59),
        ("imb", dict(imb_window=60), 59),
        ("vhf", dict(vhf_period=60, vhf_min=0.0), 60),
        ("atrz", dict(atr_z_window=60, atr_z_min=-5.0), (2 + 1) + 60 - 1),  # ATR full at atr_period + 1
    ],
)
def test_an_enabled_gate_delays_signals_to_its_first_full_value(gate, window, warmup):
    assert_trades_from_the_warmup(gate_on(gate, **window), warmup)


def test_a_gate_switched_off_does_not_delay_signals():
    params = Params(**QUICK_CROSS, **NO_GATES, cvd_window=500, imb_window=500, vhf_period=500, atr_z_window=2000)
    assert_trades_from_the_warmup(params, 30)


def test_volume_gates_do_not_delay_signals_on_bars_without_taker_volume():
    params = Params(**QUICK_CROSS, **{**NO_GATES, "gate_cvd": True, "gate_imb": True}, cvd_window=60, imb_window=60)
    assert warmup_bars(params, has_taker=False) == 30
    assert entries(cross_up_at(30, taker=False), params) == [31]
    assert entries(cross_up_at(30, taker=True), params) == []


# ---------------------------------------------------------------- each window's first full bar


def first_full_bar(indicator, n: int = 150, history: int = 60) -> int:
    """The first bar from which `indicator`'s values are the same whatever bars came before the
    data: computed on the bars alone and after `history` earlier bars, they agree from there on.
    The earlier bars trade at twice the price, so they would top any window that reached them."""
    bars = random_bars(history + n, seed=11)
    prices = {k: getattr(bars, k) * np.r_[np.full(history, 2.0), np.ones(n)] for k in ("open", "high", "low", "close")}
    longer = bars_from_arrays(bars.ts, **prices, volume=bars.volume, taker_buy_volume=bars.taker_buy_volume)
    alone = indicator(longer.slice(history, history + n))
    after_history = indicator(longer)[history:]
    differ = np.flatnonzero(~np.isclose(alone, after_history, rtol=1e-9, atol=1e-12))
    return int(differ[-1]) + 1 if len(differ) else 0


def channel_high(bars, lookback: int) -> np.ndarray:
    """The breakout level at each bar: the highest high of the prior `lookback` bars."""
    return np.r_[-np.inf, ind.rolling_max(bars.high, lookback)[:-1]]


@pytest.mark.parametrize(
    ("indicator", "stated", "params"),
    [
        (lambda b: channel_high(b, 20), 20, Params(method="trend_breakout", breakout_lookback=20, **NO_GATES)),
        (lambda b: ind.cvd_slope(b.volume, b.taker_buy_volume, 60), 60 - 1, gate_on("cvd", cvd_window=60)),
        (lambda b: ind.imbalance(b.volume, b.taker_buy_volume, 60), 60 - 1, gate_on("imb", imb_window=60)),
        (lambda b: ind.vhf(b.close, 60), 60, gate_on("vhf", vhf_period=60)),
    ],
    ids=["donchian", "cvd", "imb", "vhf"],
)
def test_a_window_is_full_exactly_from_its_stated_bar_and_the_warmup_waits_for_it(indicator, stated, params):
    assert first_full_bar(indicator) == stated == warmup_bars(params)


def test_the_atr_z_score_is_full_a_window_after_the_first_full_atr():
    true_range_from = first_full_bar(lambda b: ind.atr(b.high, b.low, b.close, 1))  # period 1: the true range
    assert true_range_from == 1
    # a z-score of a series complete from bar 0 is full once its window fits
    assert first_full_bar(lambda b: ind.zscore(b.volume, 30)) == 30 - 1
    params = gate_on("atrz", atr_z_window=30)
    atr_from = true_range_from + params.atr_period  # Wilder's smoothing: its period after its input
    assert warmup_bars(params) == atr_from + 30 - 1


def test_the_reference_follows_the_same_rule():
    rng = np.random.default_rng(5)
    for _ in range(300):
        params = random_params(rng)
        for has_taker in (True, False):
            assert reference.warmup(params, has_taker) == warmup_bars(params, has_taker=has_taker), params
