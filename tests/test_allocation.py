"""The allocation layer: modes, the systemic-risk override, identities, and the portfolio kernel."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from engine.allocation import (
    MODES,
    AllocationSettings,
    Controller,
    NonceLedger,
    decided_positions,
    mode_for,
    new_identity,
    run_portfolio,
    simulate_portfolio,
)

S = AllocationSettings()


def test_worked_example_of_the_original_design():
    ctl = Controller({"A": 0.50, "B": 0.30, "C": 0.40, "D": 0.30}, S, session_id="s-1")
    decisions = ctl.rebalance({"A": 1.52, "B": 0.82, "C": 0.35, "D": 1.21})
    assert [d.allocation for d in decisions] == pytest.approx([0.50, 0.15, 0.00, 0.30])
    assert [d.mode for d in decisions] == ["ACTIVE", "REDUCED", "SHADOW", "ACTIVE"]
    identities = [d.identity for d in decisions]
    assert len({i.nonce for i in identities}) == 4 and len({i.agent_id for i in identities}) == 4
    assert all(i.session_id == "s-1" for i in identities)
    assert ctl.ledger.spent == {i.nonce for i in identities} and not ctl.ledger.refusals


@pytest.mark.parametrize(
    ("sharpe", "mode"),
    [(1.0, "ACTIVE"), (0.9999999, "REDUCED"), (0.5, "REDUCED"), (0.4999999, "SHADOW"), (None, "ACTIVE"), (-3.0, "SHADOW")],
)
def test_mode_boundaries(sharpe, mode):
    assert mode_for(sharpe, S) == mode


def test_too_little_history_keeps_a_strategy_active_at_its_base():
    ctl = Controller({"A": 0.4}, S, session_id="s")
    (d,) = ctl.rebalance({"A": None})
    assert (d.mode, d.allocation) == ("ACTIVE", 0.4) and "too little history" in d.reason


def test_a_reused_nonce_is_refused_and_logged(caplog):
    ledger = NonceLedger()
    ident = new_identity("research", "A", "s")
    assert ledger.spend(ident)
    with caplog.at_level("WARNING", logger="maestro.allocation"):
        assert not ledger.spend(ident)
    assert "already spent" in ledger.refusals[-1] and "double spend" in caplog.text


def test_bases_above_the_capital_are_refused():
    close = np.linspace(100, 101, 5)
    with pytest.raises(ValueError, match=r"sum to 1\.2000: more than the capital"):
        run_portfolio(close, np.zeros((2, 5)), ["A", "B"], np.array([0.6, 0.6]), S, 300_000)


# ---------------------------------------------------------------- the portfolio kernel


def reference_portfolio(close, decided, bases, s: AllocationSettings, window, min_history, bars_per_year,
                        use_controller=True, use_override=True):
    """Slow and obvious: the rules of simulate_portfolio's docstring, with direct window sums."""
    k_n, n = decided.shape
    pos = [0.0] * k_n
    prev = [0.0] * k_n
    alloc = list(bases)
    strat = [[0.0] * n for _ in range(k_n)]
    port = [0.0] * n
    over = [[False] * n for _ in range(k_n)]
    allocs, modes = [], []
    for i in range(n):
        if i > 0:
            move = close[i] / close[i - 1] - 1
            for k in range(k_n):
                strat[k][i] = pos[k] * move
            port[i] = sum(alloc[k] * strat[k][i] for k in range(k_n))
        sells = sum(1 for k in range(k_n) if decided[k][i] < prev[k])
        for k in range(k_n):
            want = decided[k][i]
            if want != prev[k]:
                if want > prev[k] and use_override and sells >= s.systemic_sells:
                    over[k][i] = True
                else:
                    c = s.cost_bps * 1e-4 * abs(want - pos[k])
                    strat[k][i] -= c
                    port[i] -= alloc[k] * c
                    pos[k] = want
            prev[k] = want
        if i > 0 and i % s.rebalance_bars == 0:
            row_a, row_m = [], []
            for k in range(k_n):
                hist = strat[k][max(0, i - window + 1): i + 1]
                if len(hist) >= min_history and len(hist) >= 2:
                    mean = sum(hist) / len(hist)
                    var = sum(x * x for x in hist) / len(hist) - mean * mean
                    sh = mean / math.sqrt(var) * math.sqrt(bars_per_year) if var > 1e-30 else 0.0
                    mode = 0 if sh >= s.active_sharpe else (1 if sh >= s.reduced_sharpe else 2)
                else:
                    mode = 0
                if use_controller:
                    alloc[k] = [bases[k], bases[k] * s.reduced_factor, 0.0][mode]
                row_a.append(alloc[k])
                row_m.append(mode)
            allocs.append(row_a)
            modes.append(row_m)
    return np.array(port), np.array(strat), np.array(allocs), np.array(modes), np.array(over)


def test_portfolio_kernel_matches_the_reference_on_random_inputs():
    rng = np.random.default_rng(4)
    for case in range(40):
        n = int(rng.integers(50, 400))
        k = int(rng.integers(1, 7))
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        # persistent positions with random flips, so BUYs and SELLs pile up on some bars
        decided = np.zeros((k, n))
        for j in range(k):
            flips = rng.random(n) < 0.08
            decided[j] = np.where(flips, rng.integers(-1, 2, n), np.nan)
            decided[j][0] = 0
            for i in range(1, n):
                if np.isnan(decided[j][i]):
                    decided[j][i] = decided[j][i - 1]
        common_sell = rng.random(n) < 0.03  # systemic moments: several strategies sell at once
        decided[:, common_sell] = -1
        for i in range(1, n):
            if common_sell[i]:
                decided[:, i] = np.minimum(decided[:, i - 1] - 1, -1)
        s = AllocationSettings(rebalance_bars=int(rng.integers(5, 40)), systemic_sells=int(rng.integers(1, 4)),
                               cost_bps=float(rng.uniform(0, 5)))
        window, min_history, bpy = int(rng.integers(5, 60)), int(rng.integers(0, 20)), 105_120.0
        bases = rng.uniform(0, 0.5, k)
        for use_controller, use_override in ((True, True), (False, True), (True, False)):
            got = simulate_portfolio(close, decided, bases, s.active_sharpe, s.reduced_sharpe, s.reduced_factor, window,
                                     min_history, s.rebalance_bars, s.systemic_sells, s.cost_bps * 1e-4, bpy,
                                     use_controller, use_override)
            port, strat, allocs, modes, over = reference_portfolio(close, decided, bases, s, window, min_history, bpy,
                                                                   use_controller, use_override)
            where = f"case {case} controller={use_controller} override={use_override}"
            np.testing.assert_allclose(got[0], port, atol=1e-12, err_msg=where)
            np.testing.assert_allclose(got[1], strat, atol=1e-12, err_msg=where)
            assert got[2].shape == allocs.reshape(-1, k).shape, where
            if len(allocs):
                np.testing.assert_allclose(got[2], allocs, atol=1e-12, err_msg=where)
                np.testing.assert_array_equal(got[3], modes, err_msg=where)
            np.testing.assert_array_equal(got[6], over, err_msg=where)


def test_a_strategy_that_recovers_goes_shadow_then_reduced_then_active():
    # one strategy, long all the time, on returns of ±0.1 % around a drift that turns from
    # losing (Sharpe about −3) to modest (about 0.75) to strong (about 3)
    per_day = 288
    a = 0.001
    per_bar_sharpe = lambda annual: annual / math.sqrt(365 * per_day)  # noqa: E731
    drift = np.concatenate([
        np.full(20 * per_day, -a * per_bar_sharpe(3.0)),
        np.full(20 * per_day, a * per_bar_sharpe(0.75)),
        np.full(20 * per_day, a * per_bar_sharpe(3.0)),
    ])
    noise = np.where(np.arange(len(drift)) % 2 == 0, a, -a)
    close = 100 * np.cumprod(1 + drift + noise)
    decided = np.ones((1, len(close)))
    s = AllocationSettings(window_days=5, min_history_days=2)
    result = run_portfolio(close, decided, ["trend"], np.array([0.5]), s, 300_000)
    names = [MODES[m] for m in result.modes[:, 0]]
    seen = [m for i, m in enumerate(names) if i == 0 or m != names[i - 1]]
    assert seen == ["ACTIVE", "SHADOW", "REDUCED", "ACTIVE"], seen  # ACTIVE first: too little history
    assert result.allocations[-1, 0] == 0.5
    assert set(result.comparisons) == {"controller_pnl", "equal_weights_pnl", "no_override_pnl"}


def test_override_events_name_the_strategies_held():
    n = 10
    close = np.linspace(100, 110, n)
    decided = np.zeros((4, n))
    decided[:3, 2:] = 1   # three strategies long from bar 2
    decided[:3, 5:] = -1  # ... all three sell at bar 5
    decided[3, 5:] = 1    # while the fourth wants to buy on that very bar
    result = run_portfolio(close, decided, ["A", "B", "C", "D"], np.full(4, 0.25), AllocationSettings(), 300_000,
                           compare=False)
    assert result.override_bars() == [(5, ["D"])]
    assert not result.strategy_equity[3].any()  # the held BUY left D flat (and paid no cost) while prices rose


def test_two_sells_do_not_trigger_the_override():
    n = 10
    close = np.linspace(100, 110, n)
    decided = np.zeros((3, n))
    decided[:2, 2:] = 1
    decided[:2, 5:] = -1  # two strategies sell at bar 5
    decided[2, 5:] = 1    # the third buys on that bar: not held
    result = run_portfolio(close, decided, ["A", "B", "C"], np.full(3, 1 / 3), AllocationSettings(), 300_000,
                           compare=False)
    assert result.override_bars() == [] and result.strategy_equity[2, -1] > 0


def test_decided_positions_follow_the_trades():
    trades = np.zeros(2, dtype=[("entry_idx", "i8"), ("exit_idx", "i8"), ("side", "i1")])
    trades[0] = (3, 6, 1)
    trades[1] = (8, 9, -1)
    assert decided_positions(trades, 11).tolist() == [0, 0, 1, 1, 1, 1, 0, -1, -1, 0, 0]


def test_nonces_are_never_drawn_twice_not_even_by_a_forked_child():
    drawn = {new_identity("research", "A", "s").nonce for _ in range(2_000)}  # past one read of the pool
    assert len(drawn) == 2_000 and all(len(n) == 16 for n in drawn)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next nonce, to the parent
        os.close(read)
        os.write(write, new_identity("research", "A", "s").nonce.encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    mine = new_identity("research", "A", "s").nonce
    assert child != mine and child not in drawn and len(child) == 16
