"""Importing this module compiles (or loads from the numba cache) every backtest kernel.

The worker pool's fork server imports it once, so the workers forked from it start warm.
"""

from engine.backtest import run_backtest
from engine.methods import METHODS
from engine.params import Params
from engine.synthetic import synthetic_bars


def warm_up() -> None:
    """Run one tiny backtest per method: numba compiles every specialisation a test needs."""
    bars = synthetic_bars(600, seed=0)
    for name in METHODS:
        run_backtest(bars, Params(method=name, ema_slow=20, macd_slow=20, breakout_lookback=20,
                                  atr_z_window=50, vhf_period=20), train_end=300, validation_end=450)


warm_up()
