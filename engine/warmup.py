"""Importing this module compiles (or loads from the numba cache) every backtest kernel a worker runs.

The worker pool's fork server imports it once, so the workers forked from it start warm.
"""

from engine.methods import BUILT_INS
from engine.params import Params
from engine.sweep import run_sweep, sweep_of
from engine.synthetic import synthetic_bars


def warm_up() -> None:
    """Run one tiny sweep of every method (engine.executor runs a test's configs as one): numba compiles
    every specialisation a test needs."""
    bars = synthetic_bars(600, seed=0)
    configs = []
    for strategy in BUILT_INS:
        short = {p.name: 20 for p in strategy.parameters if p.name in ("ema_slow", "macd_slow", "breakout_lookback")}
        configs.append(Params(method=strategy.name, atr_z_window=50, vhf_period=20, **short))
    run_sweep(bars, sweep_of(configs), train_end=300, validation_end=450)


warm_up()
