"""The kernel against the slow reference, and each edge case of DESIGN.md §9 by name."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from engine import Params, bars_from_arrays, run_backtest
from engine.backtest import kernel_args
from engine.metrics import EXIT_REASONS, PHASES
from engine.simulator import (
    I_BLUNDER_BARS,
    I_EPISODE_BARS,
    I_HAS_TAKER,
    I_TRAIN_END,
    I_VAL_END,
    I_WARMUP,
    simulate,
)
from tests import reference

FIVE_MIN = 300_000


def random_bars(n: int, seed: int, *, taker: bool = True, gap_rate: float = 0.01):
    """A noisy random walk with occasional opening gaps, so every exit path gets exercised."""
    rng = np.random.default_rng(seed)
    vol = 0.0015 * np.exp(rng.normal(0, 0.5, n).cumsum() * 0.05)  # drifting volatility
    rets = rng.normal(0, 1, n) * vol
    trend = np.repeat(rng.normal(0, 0.0004, n // 50 + 1), 50)[:n]  # persistent stretches
    close = 60_000 * np.exp(np.cumsum(rets + trend))
    gaps = np.where(rng.random(n) < gap_rate, rng.normal(0, 0.006, n), 0.0)
    open_ = np.r_[close[0], close[:-1]] * np.exp(gaps)
    wick = np.abs(rng.normal(0, 1, (2, n))) * vol * close
    high = np.maximum(open_, close) + wick[0]
    low = np.minimum(open_, close) - wick[1]
    volume = rng.uniform(5, 50, n) * (1 + 200 * vol)
    buy_frac = np.clip(0.5 + 40 * rets + rng.normal(0, 0.05, n), 0.02, 0.98)
    ts = 1_700_000_000_000 + FIVE_MIN * np.arange(n, dtype=np.int64)
    return bars_from_arrays(
        ts, open_, high, low, close, volume, volume * buy_frac if taker else None, source=f"random(seed={seed})"
    )


def random_params(rng: np.random.Generator) -> Params:
    """Small periods and tight exits, so a short window holds many trades of every kind."""
    method = ["ema_crossover", "macd_trend", "trend_breakout"][rng.integers(3)]
    fast = int(rng.integers(2, 15))
    mfast = int(rng.integers(2, 10))
    return Params(
        method=method,
        ema_fast=fast,
        ema_slow=fast + int(rng.integers(1, 30)),
        macd_fast=mfast,
        macd_slow=mfast + int(rng.integers(1, 20)),
        macd_signal=int(rng.integers(2, 12)),
        breakout_lookback=int(rng.integers(5, 40)),
        atr_period=int(rng.integers(2, 30)),
        atr_stop_mult=float(rng.uniform(0.3, 3.0)),
        hard_tp_usd=float(rng.uniform(20, 1500)),
        timeout_bars=int(rng.integers(1, 80)),
        gate_cvd=bool(rng.random() < 0.5),
        cvd_window=int(rng.integers(2, 30)),
        gate_imb=bool(rng.random() < 0.5),
        imb_window=int(rng.integers(2, 30)),
        imb_min=float(rng.uniform(0, 0.1)),
        gate_atrz=bool(rng.random() < 0.5),
        atr_z_min=float(rng.uniform(-1.5, 1.0)),
        atr_z_window=int(rng.integers(10, 60)),
        gate_vhf=bool(rng.random() < 0.5),
        vhf_period=int(rng.integers(5, 40)),
        vhf_min=float(rng.uniform(0.1, 0.5)),
        fee_bps=float(rng.uniform(0, 10)),
        slippage_bps=float(rng.uniform(0, 5)),
        notional_usd=float(rng.uniform(1_000, 200_000)),
    )


def assert_same_trades(result, ref_trades, context: str) -> None:
    got = result.trades
    assert len(got) == len(ref_trades), f"{context}: {len(got)} trades vs reference {len(ref_trades)}"
    for k, (g, r) in enumerate(zip(got, ref_trades)):
        where = f"{context}, trade {k}"
        assert (g["entry_idx"], g["exit_idx"], g["side"]) == (r.entry_idx, r.exit_idx, r.side), where
        assert EXIT_REASONS[g["exit_reason"]] == EXIT_REASONS[r.exit_reason], where
        assert (g["bars_held"], g["phase"], g["episode"], g["vol_bin"]) == (r.bars_held, r.phase, r.episode, r.vol_bin), where
        assert (g["gate_cvd"], g["gate_imb"], g["gate_atrz"], g["gate_vhf"]) == r.gates, where
        assert g["entry"] == pytest.approx(r.entry, rel=1e-12), where
        assert g["exit"] == pytest.approx(r.exit, rel=1e-12), where
        assert abs(g["pnl"] - r.pnl) <= 1e-9, f"{where}: pnl {g['pnl']} vs {r.pnl}"
        assert abs(g["fees"] - r.fees) <= 1e-9, where


def test_kernel_matches_reference_on_random_data_across_methods_gates_and_exits():
    rng = np.random.default_rng(20261121)
    seen_exits: collections.Counter = collections.Counter()
    seen_methods: collections.Counter = collections.Counter()
    seen_gates: collections.Counter = collections.Counter()
    cases = 240
    for case in range(cases):
        n = int(rng.integers(300, 900))
        bars = random_bars(n, seed=case, taker=case % 7 != 0)
        params = random_params(rng)
        train_end, val_end = int(n * 0.6), int(n * 0.8)
        result = run_backtest(bars, params, train_end=train_end, validation_end=val_end, episode_bars=50)
        ref_trades, ref_equity, _, _ = reference.run(bars, params, train_end, val_end, ep_bars=50)
        context = f"case {case} ({params.method}, n={n})"
        assert_same_trades(result, ref_trades, context)
        np.testing.assert_allclose(result.equity, ref_equity, rtol=0, atol=1e-7, err_msg=context)
        seen_exits.update(EXIT_REASONS[t["exit_reason"]] for t in result.trades)
        seen_methods[params.method] += 1
        for gate in ("cvd", "imb", "atrz", "vhf"):
            seen_gates[(gate, getattr(params, f"gate_{gate}"))] += 1
    assert set(seen_exits) == set(EXIT_REASONS), seen_exits
    assert min(seen_exits.values()) >= 20, seen_exits
    assert set(seen_methods) == {"ema_crossover", "macd_trend", "trend_breakout"}
    assert len(seen_gates) == 8 and min(seen_gates.values()) >= 30, seen_gates


def test_episode_scores_match_a_recount_from_the_reference_trades():
    rng = np.random.default_rng(7)
    for case in range(30):
        n = 1000
        bars = random_bars(n, seed=1000 + case)
        params = random_params(rng)
        result = run_backtest(bars, params, train_end=600, validation_end=800, episode_bars=120)
        ref_trades, ref_equity, atr_pct, (q1, q2) = reference.run(bars, params, 600, 800, ep_bars=120)
        bounds = reference.episode_bounds(n, 600, 800, 120)
        assert len(result.episodes) == len(bounds)
        for e, (start, stop, phase) in enumerate(bounds):
            ep = result.episodes[e]
            mine = [t for t in ref_trades if start <= t.exit_idx < stop]
            wins = [t.pnl for t in mine if t.pnl > 0]
            losses = [t.pnl for t in mine if t.pnl < 0]
            assert (ep["start"], ep["stop"], ep["phase"]) == (start, stop, phase)
            assert ep["n_trades"] == len(mine)
            assert ep["hit"] == pytest.approx(len(wins) / len(mine) if mine else 0.0)
            if wins and losses:
                expected_payoff = min(10.0, (sum(wins) / len(wins)) / (-sum(losses) / len(losses)))
            else:
                expected_payoff = 10.0 if wins else 0.0
            assert ep["payoff"] == pytest.approx(expected_payoff)
            assert ep["total_pnl"] == pytest.approx(sum(t.pnl for t in mine), abs=1e-9)
            peak = ref_equity[start - 1] if start else 0.0
            worst = 0.0
            for x in ref_equity[start:stop]:
                peak = max(peak, x)
                worst = min(worst, x - peak)
            assert ep["maxdd"] == pytest.approx(worst, abs=1e-7)
            assert ep["blunders"] == sum(1 for t in mine if t.exit_reason == 1 and t.bars_held < 3)
            mean_pct = sum(atr_pct[start:stop]) / (stop - start)
            assert ep["vol_regime"] == (0 if mean_pct < q1 else 1 if mean_pct < q2 else 2)
            assert 0.0 <= ep["score"] <= 100.0


# ---------------------------------------------------------------- named edge cases
#
# These drive the kernel with a hand-written signal array (the kernel takes signals as
# input), all gates off, on bars built so the expected fill is obvious.


def flat_bars(rows: list[tuple[float, float, float, float]]):
    """Bars from (open, high, low, close) rows, steady volume, no taker data."""
    a = np.array(rows, dtype=float)
    n = len(rows)
    ts = 1_700_000_000_000 + FIVE_MIN * np.arange(n, dtype=np.int64)
    return bars_from_arrays(ts, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.full(n, 10.0), None, source="edge-case")


def run_signals(bars, signal: dict[int, int], **overrides):
    """Simulate `bars` with signals {bar: ±1}, no gates, no warm-up, all bars in train."""
    params = Params(
        gate_cvd=False, gate_imb=False, gate_atrz=False, gate_vhf=False,
        atr_period=2, fee_bps=0.0, slippage_bps=0.0, notional_usd=1000.0,
        **overrides,
    )
    args = kernel_args(params)
    ip = args.ip.copy()
    n = len(bars)
    ip[I_WARMUP] = 1
    ip[I_TRAIN_END] = n
    ip[I_VAL_END] = n
    ip[I_EPISODE_BARS] = 120
    ip[I_BLUNDER_BARS] = 3
    ip[I_HAS_TAKER] = 0
    sig = np.zeros(n, np.int8)
    for bar, side in signal.items():
        sig[bar] = side
    trades, equity, _ = simulate(bars.open, bars.high, bars.low, bars.close, bars.volume, bars.volume, sig, args.fp, ip)
    return trades, equity


# ATR after the first bars below is 2.0 (every bar's true range is 2), so with
# atr_stop_mult=1 a long filled at 100 has its stop at 98.
STEADY = [(100.0, 101.0, 99.0, 100.0)] * 3


def reasons(trades) -> list[str]:
    return [EXIT_REASONS[r] for r in trades["exit_reason"]]


def test_signal_fills_at_next_bar_open_not_at_the_signal_close():
    bars = flat_bars(STEADY + [(100.5, 101.0, 99.5, 100.0), (100.0, 101.0, 99.5, 100.0)])
    trades, _ = run_signals(bars, {2: 1}, atr_stop_mult=5.0, hard_tp_usd=1_000.0)
    assert trades[0]["entry_idx"] == 3 and trades[0]["entry"] == 100.5


def test_stop_wins_when_stop_and_target_share_a_bar():
    # long at 100, stop 98, target at +20 USD on 10 units (notional 1000) = 102; bar 3 spans both
    bars = flat_bars(STEADY + [(100.0, 103.0, 97.0, 100.0), (100.0, 101.0, 99.0, 100.0)])
    trades, _ = run_signals(bars, {2: 1}, atr_stop_mult=1.0, hard_tp_usd=20.0)
    assert reasons(trades) == ["sl_hit"]
    assert trades[0]["exit"] == pytest.approx(98.0)
    assert trades[0]["pnl"] == pytest.approx(-20.0)


def test_gap_through_stop_fills_at_the_open():
    bars = flat_bars(STEADY + [(100.0, 100.5, 99.5, 100.0), (95.0, 96.0, 94.0, 95.5), STEADY[0]])
    trades, _ = run_signals(bars, {2: 1}, atr_stop_mult=1.0, hard_tp_usd=50.0)
    assert reasons(trades) == ["sl_hit"]
    assert trades[0]["exit_idx"] == 4 and trades[0]["exit"] == 95.0


def test_gap_through_target_fills_at_the_open():
    bars = flat_bars(STEADY + [(100.0, 100.5, 99.5, 100.0), (105.0, 106.0, 104.0, 105.0), STEADY[0]])
    trades, _ = run_signals(bars, {2: 1}, atr_stop_mult=1.0, hard_tp_usd=20.0)
    assert reasons(trades) == ["tp_hit"]
    assert trades[0]["exit"] == 105.0


def test_short_stop_and_target_mirror_the_long():
    bars = flat_bars(STEADY + [(100.0, 100.5, 99.5, 100.0), (100.0, 100.5, 97.5, 98.0), STEADY[0]])
    trades, _ = run_signals(bars, {2: -1}, atr_stop_mult=1.0, hard_tp_usd=20.0)
    assert reasons(trades) == ["tp_hit"]
    assert trades[0]["side"] == -1 and trades[0]["exit"] == pytest.approx(98.0)
    assert trades[0]["pnl"] == pytest.approx(20.0)


def test_timeout_counts_bars_from_the_fill_and_closes_at_that_bars_close():
    quiet = (100.0, 100.4, 99.6, 100.0)
    bars = flat_bars(STEADY + [quiet] * 8 + [(100.0, 100.4, 99.6, 100.2)] + [quiet] * 3)
    trades, _ = run_signals(bars, {2: 1}, atr_stop_mult=10.0, hard_tp_usd=1_000.0, timeout_bars=8)
    # filled at bar 3's open; bar 3 + 8 = 11 closes it at its close
    assert reasons(trades) == ["timeout"]
    assert trades[0]["entry_idx"] == 3 and trades[0]["exit_idx"] == 11
    assert trades[0]["bars_held"] == 8 and trades[0]["exit"] == 100.2


def test_opposite_signal_flips_the_position_at_the_next_open():
    quiet = (100.0, 100.4, 99.6, 100.0)
    bars = flat_bars(STEADY + [quiet] * 3 + [(100.3, 100.4, 99.6, 100.0)] + [quiet] * 2)
    trades, _ = run_signals(bars, {2: 1, 5: -1}, atr_stop_mult=10.0, hard_tp_usd=1_000.0)
    assert reasons(trades) == ["signal_flip", "end_of_data"]
    first, second = trades
    assert first["exit_idx"] == 6 and first["exit"] == 100.3 and first["side"] == 1
    assert second["entry_idx"] == 6 and second["entry"] == 100.3 and second["side"] == -1


def test_same_side_signal_while_in_position_is_ignored():
    quiet = (100.0, 100.4, 99.6, 100.0)
    bars = flat_bars(STEADY + [quiet] * 5)
    trades, _ = run_signals(bars, {2: 1, 4: 1, 5: 1}, atr_stop_mult=10.0, hard_tp_usd=1_000.0)
    assert len(trades) == 1 and trades[0]["entry_idx"] == 3


def test_reentry_on_the_close_of_the_bar_that_stopped_the_position():
    bars = flat_bars(STEADY + [(100.0, 100.5, 99.5, 100.0), (100.0, 100.5, 97.0, 99.0), (99.2, 99.8, 98.8, 99.5), (99.5, 99.9, 99.1, 99.6)])
    trades, _ = run_signals(bars, {2: 1, 4: 1}, atr_stop_mult=1.0, hard_tp_usd=1_000.0)
    assert reasons(trades) == ["sl_hit", "end_of_data"]
    assert trades[0]["exit_idx"] == 4
    assert trades[1]["entry_idx"] == 5 and trades[1]["entry"] == 99.2


def test_open_position_closes_at_the_last_close_as_end_of_data():
    quiet = (100.0, 100.4, 99.6, 100.0)
    bars = flat_bars(STEADY + [quiet] * 3 + [(100.0, 100.4, 99.6, 100.1)])
    trades, equity = run_signals(bars, {2: 1}, atr_stop_mult=10.0, hard_tp_usd=1_000.0)
    assert reasons(trades) == ["end_of_data"]
    assert trades[0]["exit_idx"] == len(bars) - 1 and trades[0]["exit"] == 100.1
    assert equity[-1] == pytest.approx(trades[0]["pnl"])


def test_signal_on_the_last_bar_opens_nothing():
    bars = flat_bars(STEADY + [STEADY[0]])
    trades, _ = run_signals(bars, {3: 1})
    assert len(trades) == 0


def test_fees_and_slippage_are_charged_per_side_on_the_traded_notional():
    quiet = (100.0, 100.4, 99.6, 100.0)
    bars = flat_bars(STEADY + [quiet] * 2 + [(110.0, 110.4, 109.6, 110.0)])
    params = dict(atr_stop_mult=10.0, hard_tp_usd=1_000.0)
    args = dict(gate_cvd=False, gate_imb=False, gate_atrz=False, gate_vhf=False, atr_period=2)
    p = Params(**args, **params, fee_bps=10.0, slippage_bps=5.0, notional_usd=100.0)
    kargs = kernel_args(p)
    ip = kargs.ip.copy()
    ip[I_WARMUP], ip[I_TRAIN_END], ip[I_VAL_END], ip[I_EPISODE_BARS], ip[I_BLUNDER_BARS], ip[I_HAS_TAKER] = 1, 6, 6, 120, 3, 0
    sig = np.zeros(6, np.int8)
    sig[2] = 1
    trades, _, _ = simulate(bars.open, bars.high, bars.low, bars.close, bars.volume, bars.volume, sig, kargs.fp, ip)
    t = trades[0]
    entry = 100.0 * (1 + 5e-4)
    exit_ = 110.0 * (1 - 5e-4)
    qty = 100.0 / entry
    fees = 10e-4 * qty * (entry + exit_)
    assert t["entry"] == pytest.approx(entry) and t["exit"] == pytest.approx(exit_)
    assert t["qty"] == pytest.approx(qty)
    assert t["fees"] == pytest.approx(fees)
    assert t["pnl"] == pytest.approx(qty * (exit_ - entry) - fees)


def test_a_stop_within_three_bars_of_the_fill_counts_as_a_blunder():
    bars = flat_bars(STEADY + [(100.0, 100.5, 99.5, 100.0), (100.0, 100.5, 97.0, 99.0)] + [STEADY[0]] * 2)
    result_trades, equity = run_signals(bars, {2: 1}, atr_stop_mult=1.0, hard_tp_usd=1_000.0)
    from engine.metrics import summarize

    m = summarize(result_trades, equity, 0, len(bars), notional_usd=1000.0, interval_ms=FIVE_MIN)
    assert m.blunders == 1 and m.blunders_per_100 == 100.0


def test_every_phase_reports_its_own_metrics():
    bars = random_bars(4320, seed=3)
    result = run_backtest(bars, Params())
    assert (result.train_end, result.validation_end) == (2880, 3744)
    total = sum(result.metrics(p).n_trades for p in PHASES)
    assert total == len(result.trades) == result.metrics("all").n_trades
    assert all(result.metrics(p).maxdd <= 0 for p in PHASES)
    assert len(result.episodes) == 24 + 8 + 5  # 120-bar blocks restarting per phase
