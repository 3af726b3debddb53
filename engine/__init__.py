"""The engine: market data, numba kernels, metrics, events and session files.

Pure Python and numba; it imports nothing from `agents` or `maestro_tui`.

    from engine import load_bars, synthetic_bars, run_backtest, Params
    bars = synthetic_bars(4320, seed=7)
    result = run_backtest(bars, Params(method="macd_trend"))
    result.trades, result.episodes, result.equity, result.metrics("validation")
"""

from engine.backtest import BacktestResult, run_backtest, warmup_bars
from engine.data import Bars, DataError, Gap, bars_from_arrays, load_bars, validate_bars
from engine.methods import METHODS
from engine.metrics import EXIT_REASONS, PHASES, VOL_BINS, Metrics, summarize
from engine.params import PARAM_BOUNDS, ParamBound, ParamError, Params, params_from_dict
from engine.simulator import EPISODE_DTYPE, TRADE_DTYPE
from engine.synthetic import synthetic_bars
from engine.windows import WalkForward, Window, bars_needed, walk_forward_windows

__all__ = [
    "BacktestResult",
    "Bars",
    "DataError",
    "EPISODE_DTYPE",
    "EXIT_REASONS",
    "Gap",
    "METHODS",
    "Metrics",
    "PARAM_BOUNDS",
    "PHASES",
    "ParamBound",
    "ParamError",
    "Params",
    "TRADE_DTYPE",
    "VOL_BINS",
    "WalkForward",
    "Window",
    "bars_from_arrays",
    "bars_needed",
    "load_bars",
    "params_from_dict",
    "run_backtest",
    "summarize",
    "synthetic_bars",
    "validate_bars",
    "walk_forward_windows",
    "warmup_bars",
]
