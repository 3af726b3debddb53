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


# Where each shared parameter sits in the kernel's vectors (the layout of engine.simulator)
FLOAT_SLOTS: dict[str, int] = {
    "atr_stop_mult": F_STOP_MULT, "hard_tp_usd": F_TP_USD, "atr_z_min": F_Z_MIN, "imb_min": F_IMB_MIN,
    "vhf_min": F_VHF_MIN, "fee_bps": F_FEE_BPS, "slippage_bps": F_SLIP_BPS, "notional_usd": F_NOTIONAL,
}
INT_SLOTS: dict[str, int] = {
    "atr_period": I_ATR_PERIOD, "timeout_bars": I_TIMEOUT, "atr_z_window": I_Z_WINDOW, "cvd_window": I_CVD_WINDOW,
    "imb_window": I_IMB_WINDOW, "vhf_period": I_VHF_PERIOD, "gate_cvd": I_GATE_CVD, "gate_imb": I_GATE_IMB,
    "gate_atrz": I_GATE_ATRZ, "gate_vhf": I_GATE_VHF,
}


def first_signal_bar(method_warmup: np.ndarray | int, ip: np.ndarray, *, has_taker: bool) -> np.ndarray:
    """First bar whose close may produce a signal: the first bar at which every indicator the
    config uses has its full lookback (the rule in engine/methods.py), from the strategy's
    declared warm-up and the kernel's int vector `ip` (or a matrix of them, one config a row,
    with one warm-up each). In use, and full from:

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
    atr_full = ip[..., I_ATR_PERIOD] + 1
    first = np.maximum(method_warmup, atr_full)
    first = np.maximum(first, np.where(ip[..., I_GATE_ATRZ] != 0, atr_full + ip[..., I_Z_WINDOW] - 1, 0))
    first = np.maximum(first, np.where(ip[..., I_GATE_VHF] != 0, ip[..., I_VHF_PERIOD], 0))
    if has_taker:
        first = np.maximum(first, np.where(ip[..., I_GATE_CVD] != 0, ip[..., I_CVD_WINDOW] - 1, 0))
        first = np.maximum(first, np.where(ip[..., I_GATE_IMB] != 0, ip[..., I_IMB_WINDOW] - 1, 0))
    return first


def warmup_bars(params: Params, *, has_taker: bool = True) -> int:
    """First bar whose close may produce a signal for `params` (first_signal_bar says which)."""
    args = kernel_args(params)
    return int(args.ip[I_WARMUP]) if has_taker else args.warmup_without_taker


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
    for name, slot in FLOAT_SLOTS.items():
        fp[slot] = getattr(params, name)
    ip = np.zeros(N_INT, np.int64)
    for name, slot in INT_SLOTS.items():
        ip[slot] = getattr(params, name)
    method_warmup = int(strategy.warmup(params.method_params))
    ip[I_WARMUP] = first_signal_bar(method_warmup, ip, has_taker=True)
    without_taker = int(first_signal_bar(method_warmup, ip, has_taker=False))
    args = KernelArgs(strategy, strategy.vector(params.method_params), fp, ip, without_taker)
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
    # engine.metrics.phase_table's rows, computed on first use unless given (engine.sweep)
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


def window_ip(ip: np.ndarray, warmup_without_taker: np.ndarray | int, bars: Bars, train_end: int,
              validation_end: int, episode_bars: int, blunder_bars: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy of `ip` (one config's integer vector, or a sweep's rows of them) set for a window of `bars`:
    its phase ends, episode and blunder bars, and whether taker volume is there (without it, the warm-up
    without taker); and the taker volume the kernel reads (the volume, when there is none)."""
    ip = ip.copy()
    ip[..., I_TRAIN_END] = train_end
    ip[..., I_VAL_END] = validation_end
    ip[..., I_EPISODE_BARS] = episode_bars
    ip[..., I_BLUNDER_BARS] = blunder_bars
    taker = bars.taker_buy_volume
    ip[..., I_HAS_TAKER] = taker is not None
    if taker is None:
        ip[..., I_WARMUP] = warmup_without_taker
        taker = bars.volume
    return ip, taker


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
    ip, taker = window_ip(args.ip, args.warmup_without_taker, bars, train_end, validation_end, episode_bars,
                          blunder_bars)
    signal = args.strategy.signals(bars, params.method_params, args.method_p)
    trades, equity, episodes = simulate(
        bars.open, bars.high, bars.low, bars.close, bars.volume, taker, signal, args.fp, ip
    )
    return BacktestResult(trades, episodes, equity, params, train_end, validation_end, bars.interval_ms, blunder_bars)
