"""The Python face of the kernel: `run_backtest(bars, params)` → trades, episodes, equity.

Params are validated once (pydantic) and turned into the kernel's two parameter vectors,
cached on the Params instance, so the per-call Python overhead stays a few microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from engine.data import Bars
from engine.metrics import TABLE_PHASES, YEAR_MS, Metrics, metrics_of_row, phase_table
from engine.params import Params
from engine.simulator import (
    F_FEE_BPS,
    F_IMB_MIN,
    F_NOTIONAL,
    F_SLIP_BPS,
    F_STOP_MULT,
    F_TP_USD,
    F_VHF_MIN,
    F_Z_MIN,
    I_ATR_PERIOD,
    I_BLUNDER_BARS,
    I_CVD_WINDOW,
    I_EPISODE_BARS,
    I_GATE_ATRZ,
    I_GATE_CVD,
    I_GATE_IMB,
    I_GATE_VHF,
    I_HAS_TAKER,
    I_IMB_WINDOW,
    I_TIMEOUT,
    I_TRAIN_END,
    I_VAL_END,
    I_VHF_PERIOD,
    I_WARMUP,
    I_Z_WINDOW,
    N_FLOAT,
    N_INT,
    simulate,
)
from engine.strategy import Strategy
from engine.windows import WalkForward

EPISODE_BARS = 120
BLUNDER_BARS = 3


def warmup_bars(params: Params, *, has_taker: bool = True) -> int:
    """First bar whose close may produce a signal: the first bar at which every indicator the
    config uses has its full lookback (the rule in engine/methods.py). In use, and full from:

    - the strategy's indicators: its declared warm-up (engine/strategy.py; the built-ins': ema_slow;
      macd_slow + macd_signal; breakout_lookback);
    - the ATR, always (the stop): atr_period + 1, since a true range needs the previous close
      and bar 1's is the first;
    - the atrz gate: atr_period + atr_z_window, its z-score window of atr_z_window ATR values
      starting at the first full ATR;
    - the vhf gate: vhf_period, its Σ|Δclose| over vhf_period bars needing the close before them;
    - the cvd and imb gates: cvd_window − 1 and imb_window − 1, windows ending at the signal bar.

    A gate switched off decides nothing (its value is still recorded on the trade, from the
    bars there are), and without taker-buy volume (`has_taker` False) the cvd and imb gates
    pass every signal unread: neither delays signals.
    """
    atr_full = params.atr_period + 1
    first = [int(params.strategy.warmup(params.method_params)), atr_full]
    if params.gate_atrz:
        first.append(atr_full + params.atr_z_window - 1)
    if params.gate_vhf:
        first.append(params.vhf_period)
    if params.gate_cvd and has_taker:
        first.append(params.cvd_window - 1)
    if params.gate_imb and has_taker:
        first.append(params.imb_window - 1)
    return max(first)


@dataclass(frozen=True)
class KernelArgs:
    """Everything the kernel needs from Params, as arrays (`ip` with the warm-up for data with
    taker-buy volume; `warmup_without_taker` for data without)."""

    strategy: Strategy  # gives the signals: Strategy.signals(bars, values, method_p)
    method_p: np.ndarray
    fp: np.ndarray
    ip: np.ndarray
    warmup_without_taker: int


def kernel_args(params: Params) -> KernelArgs:
    """The kernel vectors for `params` (cached on the instance: Params is immutable)."""
    if params._kernel_cache is not None:
        return params._kernel_cache
    strategy = params.strategy
    fp = np.zeros(N_FLOAT)
    fp[F_STOP_MULT] = params.atr_stop_mult
    fp[F_TP_USD] = params.hard_tp_usd
    fp[F_Z_MIN] = params.atr_z_min
    fp[F_IMB_MIN] = params.imb_min
    fp[F_VHF_MIN] = params.vhf_min
    fp[F_FEE_BPS] = params.fee_bps
    fp[F_SLIP_BPS] = params.slippage_bps
    fp[F_NOTIONAL] = params.notional_usd
    ip = np.zeros(N_INT, np.int64)
    ip[I_ATR_PERIOD] = params.atr_period
    ip[I_TIMEOUT] = params.timeout_bars
    ip[I_Z_WINDOW] = params.atr_z_window
    ip[I_CVD_WINDOW] = params.cvd_window
    ip[I_IMB_WINDOW] = params.imb_window
    ip[I_VHF_PERIOD] = params.vhf_period
    ip[I_GATE_CVD] = params.gate_cvd
    ip[I_GATE_IMB] = params.gate_imb
    ip[I_GATE_ATRZ] = params.gate_atrz
    ip[I_GATE_VHF] = params.gate_vhf
    ip[I_WARMUP] = warmup_bars(params)
    args = KernelArgs(strategy, strategy.vector(params.method_params), fp, ip, warmup_bars(params, has_taker=False))
    params._kernel_cache = args
    return args


@lru_cache(maxsize=64)
def default_phases(n_bars: int, interval_ms: int, geometry: WalkForward = WalkForward()) -> tuple[int, int]:
    """(train_end, validation_end) for a window of n_bars: the walk-forward split if it is one
    full window, else the same 10 : 3 : 2 proportions."""
    train, val, hold, _ = geometry.bars(interval_ms)
    if n_bars == train + val + hold:
        return train, train + val
    total = geometry.train_days + geometry.validation_days + geometry.holdout_days
    train_end = int(n_bars * geometry.train_days / total)
    return train_end, int(n_bars * (geometry.train_days + geometry.validation_days) / total)


@dataclass
class BacktestResult:
    """Trades (simulator.TRADE_DTYPE), episodes (EPISODE_DTYPE) and mark-to-market equity (USD per bar)."""

    trades: np.ndarray
    episodes: np.ndarray
    equity: np.ndarray
    params: Params
    train_end: int
    validation_end: int
    interval_ms: int
    blunder_bars: int = BLUNDER_BARS
    # engine.metrics.phase_table's rows, computed on first use unless given
    table: np.ndarray | None = field(default=None, repr=False)

    def metrics(self, phase: str = "validation") -> Metrics:
        """Aggregate metrics of the trades exiting in `phase` (see engine.metrics)."""
        return self.by_phase[phase]

    @cached_property
    def by_phase(self) -> dict[str, Metrics]:
        """Metrics of each phase and of the whole window ('all'): engine.metrics.summarize's, from one numba pass."""
        if self.table is None:
            self.table = phase_table(self.trades, self.equity, self.train_end, self.validation_end,
                                     self.params.notional_usd, YEAR_MS / self.interval_ms, self.blunder_bars)
        return {phase: metrics_of_row(row) for phase, row in zip(TABLE_PHASES, self.table.tolist())}


def run_backtest(
    bars: Bars,
    params: Params,
    *,
    train_end: int | None = None,
    validation_end: int | None = None,
    episode_bars: int = EPISODE_BARS,
    blunder_bars: int = BLUNDER_BARS,
) -> BacktestResult:
    """Simulate `params` over all of `bars` (one walk-forward window: train, validation, holdout).

    Phase ends are bar indices into `bars`; by default the walk-forward split (DESIGN.md §9).
    """
    n = len(bars)
    if train_end is None or validation_end is None:
        train_end, validation_end = default_phases(n, bars.interval_ms)
    args = kernel_args(params)
    ip = args.ip.copy()
    ip[I_TRAIN_END] = train_end
    ip[I_VAL_END] = validation_end
    ip[I_EPISODE_BARS] = episode_bars
    ip[I_BLUNDER_BARS] = blunder_bars
    taker = bars.taker_buy_volume
    ip[I_HAS_TAKER] = taker is not None
    if taker is None:
        ip[I_WARMUP] = args.warmup_without_taker
        taker = bars.volume
    signal = args.strategy.signals(bars, params.method_params, args.method_p)
    trades, equity, episodes = simulate(
        bars.open, bars.high, bars.low, bars.close, bars.volume, taker, signal, args.fp, ip
    )
    return BacktestResult(trades, episodes, equity, params, train_end, validation_end, bars.interval_ms, blunder_bars)
