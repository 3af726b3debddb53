"""The engine: market data, numba kernels, metrics, events and session files.

Pure Python and numba; it imports nothing from `agents` or `maestro_tui`.

    from engine import load_bars, synthetic_bars, run_backtest, Params
    bars = synthetic_bars(4320, seed=7)
    result = run_backtest(bars, Params(method="macd_trend"))
    result.trades, result.episodes, result.equity, result.metrics("validation")
"""

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
