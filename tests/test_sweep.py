"""The batch API (engine.sweep): many configs over one window give what run_backtest gives each, exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine import ParamError, Params, executor, run_backtest
from engine.leaderboard import row_from_metrics
from engine.sweep import run_sweep, sweep_grid, sweep_of
from tests.test_simulator import random_bars, random_params


def assert_same_backtest(got, want, context: str) -> None:
    """Bit for bit: trades, episodes, equity, and every phase's Metrics (reprs: bits, zero signs, types)."""
    assert got.trades.dtype == want.trades.dtype, context
    assert got.trades.tobytes() == want.trades.tobytes(), f"{context}: trades differ"
    assert got.episodes.tobytes() == want.episodes.tobytes(), f"{context}: episodes differ"
    assert got.equity.tobytes() == want.equity.tobytes(), f"{context}: equity differs"
    assert (got.train_end, got.validation_end, got.blunder_bars) == (want.train_end, want.validation_end,
                                                                     want.blunder_bars), context
    assert repr(got.by_phase) == repr(want.by_phase), f"{context}: metrics differ"


def test_a_sweep_of_configs_gives_each_what_run_backtest_gives():
    rng = np.random.default_rng(41)
    for case in range(12):
        n = int(rng.integers(400, 1200))
        bars = random_bars(n, seed=300 + case, taker=case % 4 != 0)
        configs = [random_params(rng) for _ in range(int(rng.integers(1, 8)))]
        configs.append(configs[0])  # a config twice: one signal, two results
        phases = {"train_end": int(n * 0.6), "validation_end": int(n * 0.8), "episode_bars": 50,
                  "blunder_bars": case % 3 + 1}
        swept = run_sweep(bars, sweep_of(configs), keep_equity=True, **phases)
        assert len(swept) == len(configs)
        for k, params in enumerate(configs):
            assert swept.sweep.config(k) is params
            assert_same_backtest(swept.result(k), run_backtest(bars, params, **phases), f"case {case}, config {k}")


def test_a_grid_sweep_gives_each_config_what_run_backtest_gives_on_base_with_its_changes():
    bars = random_bars(4320, seed=8)
    base = Params(method="ema_crossover", gate_cvd=False)
    axes = {
        "ema_fast": [5, 9],
        "atr_stop_mult": [0.8, 2.0],
        "gate_atrz": [False, True],
        "atr_z_window": [20, 96],
        "ema_slow": [21, 40],
        "timeout_bars": [30, 240],
        "vhf_period": [10, 28],
    }
    swept = run_sweep(bars, sweep_grid(base, axes), keep_equity=True)  # default walk-forward phases
    assert len(swept) == 2**7
    for k, values in enumerate(itertools.product(*axes.values())):
        params = base.with_changes(**dict(zip(axes, values)))
        assert swept.sweep.config(k) == params
        assert_same_backtest(swept.result(k), run_backtest(bars, params), f"config {k}: {dict(zip(axes, values))}")


def test_a_grid_may_change_the_method_and_sweep_its_parameters():
    bars = random_bars(1500, seed=9, taker=False)
    base = Params(method="macd_trend", atr_period=7)
    axes = {"hard_tp_usd": [150.0, 600.0], "method": ["ema_crossover", "trend_breakout"], "gate_imb": [True, False]}
    swept = run_sweep(bars, sweep_grid(base, axes), train_end=900, validation_end=1200, keep_equity=True)
    assert [swept.sweep.config(k).method for k in range(len(swept))] == ["ema_crossover", "ema_crossover",
                                                                         "trend_breakout", "trend_breakout"] * 2
    for k, values in enumerate(itertools.product(*axes.values())):
        params = base.with_changes(**dict(zip(axes, values)))
        want = run_backtest(bars, params, train_end=900, validation_end=1200)
        assert_same_backtest(swept.result(k), want, f"config {k}")


@pytest.mark.parametrize("taker", [True, False])
def test_a_grid_waits_for_the_volume_gates_only_on_data_with_taker_volume(taker):
    """Long cvd and imb windows set the warm-up on data with taker-buy volume, and nothing without it."""
    bars = random_bars(2500, seed=13, taker=taker)
    base = Params(method="trend_breakout", breakout_lookback=5, atr_period=3, gate_atrz=False, gate_vhf=False,
                  imb_min=0.0)
    axes = {"cvd_window": [50, 400], "gate_cvd": [True, False], "imb_window": [30, 300]}
    swept = run_sweep(bars, sweep_grid(base, axes), train_end=1500, validation_end=2000, keep_equity=True)
    firsts = set()
    for k, values in enumerate(itertools.product(*axes.values())):
        params = base.with_changes(**dict(zip(axes, values)))
        want = run_backtest(bars, params, train_end=1500, validation_end=2000)
        assert_same_backtest(swept.result(k), want, f"config {k}")
        firsts.add(int(want.trades["entry_idx"].min()))
    assert len(firsts) > 1 if taker else len(firsts) == 1  # the windows delay the first trade only with taker volume


def test_a_grid_validates_each_value_once_and_each_combination_of_the_strategys_own_once(monkeypatch):
    import engine.sweep

    asked: list[dict] = []
    checked = engine.sweep._checked
    monkeypatch.setattr(engine.sweep, "_checked", lambda base, changes: asked.append(changes) or checked(base, changes))
    axes = {"ema_fast": [5, 8, 12], "ema_slow": [30, 50], "atr_stop_mult": [1.0, 1.5, 2.0, 2.5], "hard_tp_usd": [300, 500],
            "timeout_bars": [60, 120, 240]}
    sweep = sweep_grid(Params(), axes)
    assert len(sweep) == 3 * 2 * 4 * 2 * 3
    assert len(asked) == 3 * 2 + 4 + 2 + 3  # not one per config
    assert len(sweep.sources) == 3 * 2  # one signal per strategy values
    assert isinstance(sweep.config(100), Params)


def test_a_refused_grid_value_names_its_parameter_and_the_sweep():
    with pytest.raises(ParamError) as err:
        sweep_grid(Params(), {"atr_stop_mult": [1.0, 50.0]})
    assert err.value.field == "atr_stop_mult" and err.value.where == "sweep"
    with pytest.raises(ParamError) as err:
        sweep_grid(Params(), {"ema_fast": [5, 40], "ema_slow": [30]})  # 40 ≥ 30 breaks the strategy's own rule
    assert "ema_fast" in str(err.value)
    with pytest.raises(ParamError, match="no values"):
        sweep_grid(Params(), {"timeout_bars": []})
    with pytest.raises(ParamError, match=r"unknown|not a parameter"):
        sweep_grid(Params(), {"no_such_thing": [1]})


def test_metric_gives_one_metric_of_every_config_for_ranking():
    bars = random_bars(2000, seed=10)
    swept = run_sweep(bars, sweep_grid(Params(gate_cvd=False, gate_imb=False), {"atr_stop_mult": [0.5, 1.0, 2.0, 3.0]}))
    for phase in ("train", "validation", "holdout", "all"):
        assert list(swept.metric("score", phase)) == [swept.by_phase(k)[phase].score for k in range(4)]
        assert list(swept.metric("n_trades", phase)) == [swept.by_phase(k)[phase].n_trades for k in range(4)]
    assert swept.metric("n_trades", "all").sum() == len(swept.trades) > 0
    with pytest.raises(ValueError, match="keep_equity=True"):
        swept.result(0)
    assert swept.equity is None


def test_a_sweep_without_metrics_gives_the_same_trades_and_refuses_to_be_measured():
    """What a trial matrix's cells take (engine.executor.run_returns): the trades, not the phases' metrics."""
    rng = np.random.default_rng(43)
    bars = random_bars(1500, seed=43)
    configs = [random_params(rng) for _ in range(5)]
    phases = {"train_end": 900, "validation_end": 1200, "episode_bars": 60, "blunder_bars": 2}
    measured = run_sweep(bars, sweep_of(configs), **phases)
    bare = run_sweep(bars, sweep_of(configs), metrics=False, **phases)
    assert len(measured.trades) > 0
    assert bare.trades.tobytes() == measured.trades.tobytes()
    assert bare.offsets.tobytes() == measured.offsets.tobytes()
    assert bare.episodes.tobytes() == measured.episodes.tobytes()
    assert bare.tables.shape[0] == 0
    for ask in (lambda: bare.by_phase(0), lambda: bare.metric("score"),
                lambda: run_sweep(bars, sweep_of(configs), metrics=False, keep_equity=True, **phases).result(0)):
        with pytest.raises(ValueError, match="metrics=True"):
            ask()


def assert_test_of_configs_alone(bars, configs, roles, test_id: str = "seg1_test001") -> None:
    """A test of `configs` run in this process as a worker runs it: its rows and trades are each config's
    backtested alone."""
    specs = tuple(executor.ConfigSpec(f"c{i}", role, p.model_dump_json()) for i, (p, role) in enumerate(zip(configs, roles)))
    task = executor.TestTask(test_id, 1, 1, 0, start=0, end=len(bars), train_end=1000, validation_end=1400,
                             configs=specs, episode_bars=60, blunder_bars=2)
    outcome = executor.run_test(task, bars)  # the session's bars: the test's window is all of them
    results = [run_backtest(bars, p, train_end=1000, validation_end=1400, episode_bars=60, blunder_bars=2)
               for p in configs]
    assert outcome.rows == [row_from_metrics(test_id, p, s.role, r.by_phase)
                            for p, s, r in zip(configs, specs, results)], test_id
    assert outcome.trades.tobytes() == results[0].trades.tobytes(), test_id
    assert outcome.episodes.tobytes() == results[0].episodes.tobytes(), test_id
    assert {k: v.tobytes() for k, v in outcome.extra_trades.items()} == {
        s.config_id: r.trades.tobytes() for s, r in zip(specs[1:], results[1:])}, test_id


def test_a_tests_rows_and_trades_are_those_of_each_config_backtested_alone():
    rng = np.random.default_rng(12)
    assert_test_of_configs_alone(random_bars(1800, seed=12), [random_params(rng) for _ in range(4)],
                                 ["chosen", "baseline", "baseline", "ensemble"])


def test_a_worker_running_test_after_test_gives_each_the_results_of_its_own_configs(monkeypatch):
    # a worker keeps each set of configs' sweep (and each config's id) for the next test with that set:
    # sets in another order, sharing configs, coming back, and more sets than it keeps
    monkeypatch.setattr(executor, "_SWEEPS_KEPT", 3)
    bars = random_bars(1800, seed=14)
    rng = np.random.default_rng(14)
    pool = [random_params(rng) for _ in range(5)]
    for n, picks in enumerate([(0, 1, 2), (2, 1, 0), (0, 1, 3), (0, 1, 2), (4,), (0, 1, 2, 3, 4), (2, 1, 0)]):
        roles = ["chosen", *["baseline"] * (len(picks) - 1)]
        assert_test_of_configs_alone(bars, [pool[k] for k in picks], roles, f"seg1_test{n + 1:03d}")


def test_an_empty_sweep_runs_nothing():
    swept = run_sweep(random_bars(500, seed=1), sweep_of([]))
    assert len(swept) == 0 and len(swept.trades) == 0 and swept.tables.shape[0] == 0
