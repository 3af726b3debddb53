"""Importing this module compiles (or loads from the numba cache) every backtest kernel a worker runs.

The worker pool's fork server imports it once, so the workers forked from it start warm.

On a cold start (an empty numba cache) compiling is most of a session's first seconds, and
numba compiles on one core, so the work is split over two processes, one a core:

- here, the simulator (`simulate_into`, the biggest compile, about 6 s of CPU), called as the
  sweep kernel calls it, on a signal of zeros: the strategies' kernels are not needed for it;
- meanwhile, in a process of its own (engine.warmup_aside), the metrics kernel
  (`phase_table`) and then every built-in strategy's signal kernels, into the same cache.

The sweep kernel is compiled last, here, loading those from the cache. After them, on the
other core, the conductor's portfolio kernel compiles. When the cache has the metrics kernel
already, no process is started (it would take a second of CPU from a warm start's other core).
Nothing compiles `simulate`, run_backtest's kernel: a session's tests run as sweeps.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from engine.backtest import BLUNDER_BARS, EPISODE_BARS, window_ip
from engine.data import Bars
from engine.metrics import in_numba_cache, phase_table
from engine.simulator import simulate_into
from engine.sweep import Sweep, run_sweep, sweep_of
from engine.warmup_aside import warm_up_bars, warm_up_configs

# what the other process compiles: the metrics kernel as simulate_sweep calls it, then the strategies' signals
ASIDE = "from engine.warmup_aside import warm_aside; warm_aside()"
TRAIN_END, VALIDATION_END = 300, 450


def warm_simulator(bars: Bars, sweep: Sweep) -> None:
    """`simulate_into` with the argument types simulate_sweep gives it (one row of each of its arrays), so the
    sweep kernel finds it compiled; the signal is zeros."""
    ip, taker = window_ip(sweep.ip, sweep.warmup_without_taker, bars, TRAIN_END, VALIDATION_END, EPISODE_BARS,
                          BLUNDER_BARS)
    signals = np.zeros((1, len(bars)), dtype=np.int8)
    equity = np.empty((1, len(bars)))
    simulate_into(bars.open, bars.high, bars.low, bars.close, bars.volume, taker, signals[0], sweep.fp[0], ip[0],
                  equity[0])


def warm_up() -> None:
    """Compile (or load) the simulator here and the rest aside, then the sweep kernel: every specialisation a
    test needs (engine.executor runs a test's configs as one sweep)."""
    aside = None
    if not in_numba_cache(phase_table):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        aside = subprocess.Popen([sys.executable, "-c", ASIDE], env=env, stdin=subprocess.DEVNULL)
    bars, sweep = warm_up_bars(), sweep_of(warm_up_configs())
    warm_simulator(bars, sweep)
    if aside is not None:
        aside.wait()  # whatever it did, the sweep below compiles what is not in the cache
    run_sweep(bars, sweep, train_end=TRAIN_END, validation_end=VALIDATION_END)


warm_up()
