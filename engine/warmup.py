"""Importing this module compiles (or loads from the numba cache) every backtest kernel a worker runs.

The worker pool's fork server imports it once, so the workers forked from it start warm.

On a cold start (an empty numba cache) compiling is most of a session's first seconds, and
numba compiles on one core. The metrics kernel (phase_table, half of the sweep kernel's
compile) is compiled meanwhile in a process of its own, on the other core, into the same
cache; the sweep kernel then loads it from there. After it, on that core, the conductor's
portfolio kernel compiles (engine.warmup_metrics). When the cache has the metrics kernel
already, no process is started (it would take a second of CPU from a warm start's other core).
"""

from __future__ import annotations

import os
import subprocess
import sys

from engine.backtest import run_backtest
from engine.methods import BUILT_INS
from engine.metrics import in_numba_cache, phase_table
from engine.params import Params
from engine.sweep import run_sweep, sweep_of
from engine.synthetic import synthetic_bars

# phase_table called with the types simulate_sweep gives it (numba keeps one compiled copy per types)
METRICS = "from engine.warmup_metrics import warm_metrics; warm_metrics()"


def warm_up() -> None:
    """Run one tiny sweep of every method (engine.executor runs a test's configs as one): numba compiles
    every specialisation a test needs."""
    metrics = None
    # when the cache has the metrics kernel, loading it here is quicker than starting a process (a second
    # of CPU, taken from a warm start's other core)
    if not in_numba_cache(phase_table):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        metrics = subprocess.Popen([sys.executable, "-c", METRICS], env=env, stdin=subprocess.DEVNULL)
    bars = synthetic_bars(600, seed=0)
    configs = []
    for strategy in BUILT_INS:
        short = {p.name: 20 for p in strategy.parameters if p.name in ("ema_slow", "macd_slow", "breakout_lookback")}
        configs.append(Params(method=strategy.name, atr_z_window=50, vhf_period=20, **short))
    for config in configs:  # the signals and the simulator, while the metrics compile
        run_backtest(bars, config, train_end=300, validation_end=450)
    if metrics is not None:
        metrics.wait()  # whatever it did, the sweep below compiles what is not in the cache
    run_sweep(bars, sweep_of(configs), train_end=300, validation_end=450)


warm_up()
