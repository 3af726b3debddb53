"""The engine: market data, numba kernels, metrics, events and session files.

Pure Python and numba; it imports nothing from `agents` or `maestro_tui`.

    from engine import load_bars, synthetic_bars, run_backtest, Params
    bars = synthetic_bars(4320, seed=7)
    result = run_backtest(bars, Params(method="macd_trend"))
    result.trades, result.episodes, result.equity, result.metrics("validation")

The names below load their module on first use (PEP 562), so a process that needs only the
session files (`engine.session`, `engine.jsonl`: the console, `ls`, `decide`) does not import
numba and pandas, and the conductor can start its worker processes before it does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "engine.backtest": ("BacktestResult", "run_backtest", "warmup_bars"),
    "engine.data": ("Bars", "DataError", "Gap", "bars_from_arrays", "load_bars", "validate_bars"),
    "engine.metrics": ("EXIT_REASONS", "PHASES", "VOL_BINS", "Metrics", "summarize"),
    "engine.params": ("ParamBound", "ParamError", "Params", "bounds_for", "params_from_dict"),
    "engine.simulator": ("EPISODE_DTYPE", "TRADE_DTYPE"),
    "engine.strategies": ("registered",),
    "engine.strategy": ("Parameter", "Strategy", "StrategyError"),
    "engine.synthetic": ("synthetic_bars",),
    "engine.windows": ("WalkForward", "Window", "bars_needed", "walk_forward_windows"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups find it without coming here
    return value


if TYPE_CHECKING:
    from engine.backtest import BacktestResult, run_backtest, warmup_bars
    from engine.data import Bars, DataError, Gap, bars_from_arrays, load_bars, validate_bars
    from engine.metrics import EXIT_REASONS, PHASES, VOL_BINS, Metrics, summarize
    from engine.params import ParamBound, ParamError, Params, bounds_for, params_from_dict
    from engine.simulator import EPISODE_DTYPE, TRADE_DTYPE
    from engine.strategies import registered
    from engine.strategy import Parameter, Strategy, StrategyError
    from engine.synthetic import synthetic_bars
    from engine.windows import WalkForward, Window, bars_needed, walk_forward_windows

__all__ = [
    "BacktestResult",
    "Bars",
    "DataError",
    "EPISODE_DTYPE",
    "EXIT_REASONS",
    "Gap",
    "Metrics",
    "PHASES",
    "ParamBound",
    "Parameter",
    "ParamError",
    "Params",
    "Strategy",
    "StrategyError",
    "TRADE_DTYPE",
    "VOL_BINS",
    "WalkForward",
    "Window",
    "bars_from_arrays",
    "bounds_for",
    "bars_needed",
    "load_bars",
    "registered",
    "params_from_dict",
    "run_backtest",
    "summarize",
    "synthetic_bars",
    "validate_bars",
    "walk_forward_windows",
    "warmup_bars",
]
