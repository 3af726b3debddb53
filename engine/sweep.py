"""A sweep: many configs over one window in one call — a parameter search, or a test's several configs.

`run_sweep(bars, sweep)` simulates every config of `sweep` and measures its phases in one numba
call (engine.simulator.simulate_sweep), and gives back for each config what `run_backtest` gives,
bit for bit: trades, episodes, equity and the Metrics of every phase. No config goes through
pydantic on the way:

- `sweep_of(configs)`: configs validated already (Params), as a test's chosen, baseline and
  ensemble configs are; their kernel vectors are cached on them.
- `sweep_grid(base, axes)`: every combination of the `axes` values on `base`. Each value of a
  shared parameter is validated once, and each combination of the strategy's own parameters
  (with `method`) once, since those may rule each other out (ema_fast < ema_slow); the kernel's
  rows are then filled a column at a time. A config's Params is built when asked for
  (`Sweep.config(k)`), as `base.with_changes(...)` builds it.

A signal is computed once per strategy and parameter values, however many configs share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from engine.backtest import (
    BLUNDER_BARS,
    EPISODE_BARS,
    FLOAT_SLOTS,
    INT_SLOTS,
    BacktestResult,
    default_phases,
    first_signal_bar,
    kernel_args,
    window_ip,
)
from engine.data import Bars
from engine.metrics import TABLE_PHASES, YEAR_MS, Metrics, in_numba_cache, metrics_of_row
from engine.params import SHARED_FIELDS, ParamError, Params
from engine.simulator import (
    EPISODE_DTYPE,
    I_WARMUP,
    N_FLOAT,
    N_INT,
    TRADE_DTYPE,
    episode_count,
    simulate_sweep,
)
from engine.strategy import ParamValue, Strategy


@dataclass(frozen=True, eq=False)
class SignalSource:
    """A strategy with its own parameter values: the signal every config of a sweep that has them shares."""

    strategy: Strategy
    values: Mapping[str, ParamValue]
    vector: np.ndarray  # the values as the kernel takes them (Strategy.vector)
    warmup: int  # the strategy's declared warm-up for these values, bars


@dataclass(frozen=True, eq=False)
class Sweep:
    """Configs as the kernel's rows: config k runs sources[signal_of[k]] with fp[k] and ip[k]."""

    sources: tuple[SignalSource, ...]
    signal_of: np.ndarray  # int64[configs]
    fp: np.ndarray  # float64[configs, N_FLOAT]
    ip: np.ndarray  # int64[configs, N_INT], the warm-up for data with taker-buy volume
    warmup_without_taker: np.ndarray  # int64[configs]
    config: Callable[[int], Params]  # config k's Params (a grid's is validated when asked for)

    def __len__(self) -> int:
        return int(self.fp.shape[0])


class _Sources:
    """Signal sources of a sweep being built, one per strategy and parameter values."""

    def __init__(self) -> None:
        self.sources: list[SignalSource] = []
        self._index: dict[tuple[int, bytes], int] = {}

    def of(self, params: Params, vector: np.ndarray | None = None) -> int:
        """The index of `params`' signal source (`vector`: its strategy's values as the kernel takes them)."""
        strategy = params.strategy
        vector = strategy.vector(params.method_params) if vector is None else vector
        key = (id(strategy), vector.tobytes())
        if key not in self._index:
            self._index[key] = len(self.sources)
            warmup = int(strategy.warmup(params.method_params))
            self.sources.append(SignalSource(strategy, params.method_params, vector, warmup))
        return self._index[key]


def kernels_cached() -> bool:
    """Whether numba's cache holds the sweep kernel, the simulator in it: if not, the worker pool's warm-up
    compiles them before the first test (engine.warmup), most of a first session's start."""
    return in_numba_cache(simulate_sweep)


def sweep_of(configs: Sequence[Params]) -> Sweep:
    """The sweep of validated configs, in their order."""
    configs = tuple(configs)
    args = [kernel_args(p) for p in configs]
    sources = _Sources()
    signal_of = np.array([sources.of(p, a.method_p) for p, a in zip(configs, args)], dtype=np.int64)
    fp = np.array([a.fp for a in args], dtype=np.float64).reshape(len(configs), N_FLOAT)
    ip = np.array([a.ip for a in args], dtype=np.int64).reshape(len(configs), N_INT)
    without = np.array([a.warmup_without_taker for a in args], dtype=np.int64)
    return Sweep(tuple(sources.sources), signal_of, fp, ip, without, configs.__getitem__)


def _checked(base: Params, changes: Mapping[str, Any]) -> Params:
    try:
        return base.with_changes(**changes)
    except ParamError as err:
        raise ParamError(err.field, err.problem, "sweep") from None


def sweep_grid(base: Params, axes: Mapping[str, Sequence[Any]]) -> Sweep:
    """Every combination of the `axes` values (flat parameter names, as Params.with_changes takes them) on
    `base`, the last axis varying fastest (itertools.product's order). A refused value raises ParamError
    naming it, where "sweep"."""
    names = list(axes)
    values = [list(axes[name]) for name in names]
    for name, vals in zip(names, values):
        if not vals:
            raise ParamError(name, "no values to sweep", "sweep")
    shape = tuple(len(v) for v in values)
    n = math.prod(shape)
    at = np.indices(shape).reshape(len(names), n)  # at[a, k]: config k's value index on axis a
    own = [a for a, name in enumerate(names) if name not in SHARED_FIELDS]  # `method` and the strategy's

    # the strategy's part: each combination of its axes validated once, one signal source each
    sources = _Sources()
    combos = product(*(range(shape[a]) for a in own))
    source_of_combo = [sources.of(_checked(base, {names[a]: values[a][i] for a, i in zip(own, combo)}))
                       for combo in combos]
    combo = np.ravel_multi_index(tuple(at[own]), tuple(shape[a] for a in own)) if own else np.zeros(n, np.int64)
    signal_of = np.array(source_of_combo, dtype=np.int64)[combo]

    # the shared part: each value validated once, then a column of the kernel's rows
    args = kernel_args(base)
    fp = np.tile(args.fp, (n, 1))
    ip = np.tile(args.ip, (n, 1))
    for a, name in enumerate(names):
        if name in SHARED_FIELDS:
            column = np.array([getattr(_checked(base, {name: v}), name) for v in values[a]])[at[a]]
            if name in FLOAT_SLOTS:
                fp[:, FLOAT_SLOTS[name]] = column
            else:
                ip[:, INT_SLOTS[name]] = column
    method_warmup = np.array([s.warmup for s in sources.sources], dtype=np.int64)[signal_of]
    ip[:, I_WARMUP] = first_signal_bar(method_warmup, ip, has_taker=True)
    without = first_signal_bar(method_warmup, ip, has_taker=False).astype(np.int64)

    def config(k: int) -> Params:
        if not 0 <= k < n:
            raise IndexError(f"config {k} of a sweep of {n}")
        return _checked(base, {name: values[a][at[a, k]] for a, name in enumerate(names)})

    return Sweep(tuple(sources.sources), signal_of, fp, ip, without, config)


@dataclass(eq=False)
class SweepResult:
    """Every config's backtest over one window (`result(k)` is config k's as a BacktestResult)."""

    sweep: Sweep
    trades: np.ndarray  # every config's (simulator.TRADE_DTYPE), config after config
    offsets: np.ndarray  # config k's trades are trades[offsets[k]:offsets[k + 1]]
    equity: np.ndarray | None  # [config, bar], USD, if kept (run_sweep's keep_equity)
    episodes: np.ndarray  # [config, episode], simulator.EPISODE_DTYPE
    tables: np.ndarray  # [config, phase (metrics.TABLE_PHASES), metric (Metrics' fields)]; no rows without metrics
    train_end: int
    validation_end: int
    interval_ms: int
    blunder_bars: int

    def __len__(self) -> int:
        return len(self.sweep)

    def trades_of(self, k: int) -> np.ndarray:
        """Config k's trades (a view)."""
        return self.trades[self.offsets[k] : self.offsets[k + 1]]

    def by_phase(self, k: int) -> dict[str, Metrics]:
        """Config k's metrics of each phase and of all its bars (BacktestResult.by_phase)."""
        return {phase: metrics_of_row(row) for phase, row in zip(TABLE_PHASES, self._measured()[k].tolist())}

    def result(self, k: int) -> BacktestResult:
        """Config k's backtest as run_backtest gives it (its metrics computed already); needs the equity kept."""
        if self.equity is None:
            raise ValueError("this sweep kept no equity curves: run_sweep(..., keep_equity=True) keeps them")
        return BacktestResult(self.trades_of(k), self.episodes[k], self.equity[k], self.sweep.config(k),
                              self.train_end, self.validation_end, self.interval_ms, self.blunder_bars,
                              table=self._measured()[k])

    def metric(self, name: str, phase: str = "validation") -> np.ndarray:
        """One metric (a Metrics field) of every config in `phase` (or 'all'): what a search ranks on."""
        return self._measured()[:, TABLE_PHASES.index(phase), Metrics._fields.index(name)]

    def _measured(self) -> np.ndarray:
        if len(self.tables) < len(self):
            raise ValueError("this sweep measured no phases: run_sweep(..., metrics=True) measures them")
        return self.tables


def run_sweep(
    bars: Bars,
    sweep: Sweep,
    *,
    train_end: int | None = None,
    validation_end: int | None = None,
    episode_bars: int = EPISODE_BARS,
    blunder_bars: int = BLUNDER_BARS,
    keep_equity: bool = False,
    metrics: bool = True,
) -> SweepResult:
    """Simulate every config of `sweep` over all of `bars`, as run_backtest does one (same phases, same results).

    `keep_equity` keeps every config's equity curve (8 bytes a bar a config). Without `metrics` the
    phases are not measured (`tables` has no rows, `by_phase` and `result` cannot be asked): for
    callers that want only the trades, as a trial matrix's cells (engine.executor.run_returns).
    """
    n = len(bars)
    if train_end is None or validation_end is None:
        train_end, validation_end = default_phases(n, bars.interval_ms)
    ip, taker = window_ip(sweep.ip, sweep.warmup_without_taker, bars, train_end, validation_end, episode_bars,
                          blunder_bars)
    signals = np.empty((len(sweep.sources), n), dtype=np.int8)
    for j, source in enumerate(sweep.sources):
        signals[j] = source.strategy.signals(bars, source.values, source.vector)
    # the outputs, made here by numpy (see simulate_sweep); the trades' room: every signal a config's kernel
    # may accept (those from its warm-up to the bar before the last), as simulate makes room for them
    configs = len(sweep)
    accepted_before = np.zeros((len(sweep.sources), n + 1), dtype=np.int64)
    np.cumsum(signals != 0, axis=1, out=accepted_before[:, 1:])
    first = np.minimum(ip[:, I_WARMUP], max(n - 1, 0))
    room = int((accepted_before[sweep.signal_of, max(n - 1, 0)] - accepted_before[sweep.signal_of, first]).sum())
    trades = np.empty(room, dtype=TRADE_DTYPE)
    offsets = np.empty(configs + 1, dtype=np.int64)
    equity = np.empty((configs if keep_equity else 1, n))
    episodes = np.empty((configs, episode_count(n, train_end, validation_end, episode_bars)), dtype=EPISODE_DTYPE)
    tables = np.empty((configs if metrics else 0, len(TABLE_PHASES), len(Metrics._fields)))
    simulate_sweep(bars.open, bars.high, bars.low, bars.close, bars.volume, taker, signals, sweep.signal_of, sweep.fp,
                   ip, YEAR_MS / bars.interval_ms, trades, offsets, equity, episodes, tables)
    return SweepResult(sweep, trades[: offsets[-1]], offsets, equity if keep_equity else None, episodes, tables,
                       train_end, validation_end, bars.interval_ms, blunder_bars)
