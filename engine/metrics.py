"""Metric definitions (README "Metrics" repeats them for people).

- hit: winning trades / trades; a win is a trade with pnl > 0 (USD, after fees).
- payoff: mean win / |mean loss|; 0 without wins; PAYOFF_CAP when there are wins and no losses.
- total_pnl: sum of trade pnl, USD after fees and slippage.
- maxdd: most negative drop of mark-to-market equity below its running peak, USD, ≤ 0.
  Within a range of bars the peak starts at the equity just before the range.
- blunder: a trade stopped out (sl_hit) fewer than `blunder_bars` (default 3) bars after its
  fill — a whipsaw entry. Reported as a count and per 100 trades.
- vol_bin / vol_regime: ATR% (ATR / close) against the terciles of ATR% over the train part
  of the window: below the first tercile low, below the second mid, else high. A trade's bin
  is taken at its signal bar, an episode's regime from its mean ATR%.
- high-vol share: trades in the high vol_bin / trades.
- Sharpe: mean / sd of per-bar returns (equity change / notional_usd), × sqrt(bars per year),
  365-day crypto year; 0 when the sd is 0.
- per-test Sharpe: mean / sample sd of a config's per-test returns (validation PnL /
  notional_usd, one per walk-forward test), not annualised; 0 when the returns are equal up
  to rounding (population variance ≤ (1e-12 · max |r|)²). The deflated Sharpe, PBO and the
  significance counts all start from it.
- score (0–100): 100 × (0.30·s_hit + 0.30·s_payoff + 0.25·s_dd + 0.15·s_clean) with
  s_hit = clip((hit − 0.30) / 0.40), s_payoff = clip((payoff − 0.5) / 1.5),
  s_dd = clip(1 + maxdd / (2 % of notional_usd)), s_clean = 1 − blunders / trades;
  clip to [0, 1]. No trades scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

PAYOFF_CAP = 10.0
YEAR_MS = 365 * 24 * 3600 * 1000

EXIT_REASONS = ("tp_hit", "sl_hit", "timeout", "signal_flip", "end_of_data")
TP_HIT, SL_HIT, TIMEOUT, SIGNAL_FLIP, END_OF_DATA = range(5)
PHASES = ("train", "validation", "holdout")
TRAIN, VALIDATION, HOLDOUT = range(3)
VOL_BINS = ("low", "mid", "high")


@njit(cache=True, error_model="numpy", inline="always")
def _clip01(x: float) -> float:
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


@njit(cache=True, error_model="numpy", inline="always")
def payoff_ratio(wins: int, sum_win: float, losses: int, sum_loss: float) -> float:
    """Mean win / |mean loss| (USD/USD); 0 without wins, PAYOFF_CAP without losses, capped."""
    if wins == 0:
        return 0.0
    if losses == 0 or sum_loss == 0.0:
        return PAYOFF_CAP
    ratio = (sum_win / wins) / (-sum_loss / losses)
    return PAYOFF_CAP if ratio > PAYOFF_CAP else ratio


@njit(cache=True, error_model="numpy", inline="always")
def score(n_trades: int, hit: float, payoff: float, maxdd: float, blunders: int, notional_usd: float) -> float:
    """The 0–100 episode score of the module docstring."""
    if n_trades == 0:
        return 0.0
    s_hit = _clip01((hit - 0.30) / 0.40)
    s_payoff = _clip01((payoff - 0.5) / 1.5)
    s_dd = _clip01(1.0 + maxdd / (0.02 * notional_usd))
    s_clean = 1.0 - blunders / n_trades
    return 100.0 * (0.30 * s_hit + 0.30 * s_payoff + 0.25 * s_dd + 0.15 * s_clean)


@njit(cache=True, error_model="numpy")
def max_drawdown(equity: np.ndarray, start: int, stop: int) -> float:
    """Most negative equity − running peak over bars [start, stop), USD ≤ 0; peak starts at equity[start − 1] (0 at 0)."""
    peak = equity[start - 1] if start > 0 else 0.0
    worst = 0.0
    for j in range(start, stop):
        e = equity[j]
        peak = e if e > peak else peak
        dd = e - peak
        worst = dd if dd < worst else worst
    return worst


def chained_drawdown(parts: Iterable[tuple[float, float]]) -> float:
    """Drawdown (USD ≤ 0) of consecutive parts (episodes) of one equity curve, from each part's PnL
    and its own drawdown below the equity it started from."""
    worst = equity = peak = 0.0
    for pnl, dd in parts:
        worst = min(worst, equity - peak + dd)
        equity += pnl
        peak = max(peak, equity)
        worst = min(worst, equity - peak)
    return worst


SD_ZERO_RELATIVE = 1e-12  # relative floor under which a spread of returns counts as none


def return_moments(returns: Sequence[float]) -> tuple[float, float, float, float] | None:
    """(mean, m2, m3, m4): the mean and the central moments (population) of `returns`; None when flat.

    Two passes: the mean first, then exact sums (fsum) of the deviations' powers; the
    element-wise products run in numpy, bit for bit what Python's floats give. Flat: fewer
    than 2 returns, or m2 ≤ (SD_ZERO_RELATIVE · max |r|)² (equal up to rounding).
    """
    n = len(returns)
    if n < 2:
        return None
    mean = math.fsum(returns) / n
    dev = np.asarray(returns, dtype=np.float64) - mean
    d2 = dev * dev
    m2 = math.fsum(d2.tolist()) / n
    if m2 <= (SD_ZERO_RELATIVE * max(map(abs, returns))) ** 2:
        return None
    return mean, m2, math.fsum((d2 * dev).tolist()) / n, math.fsum((d2 * d2).tolist()) / n


def per_test_sharpe(returns: Sequence[float]) -> float:
    """Mean / sample sd of per-test returns, not annualised; 0 when flat (return_moments)."""
    moments = return_moments(returns)
    if moments is None:
        return 0.0
    n = len(returns)
    return moments[0] / math.sqrt(moments[1] * n / (n - 1))


def annualised_sharpe(returns: np.ndarray, periods_per_year: float) -> float:
    """Mean / sd (population) of per-period returns × √(periods per year); 0 when flat (sd ≤ 1e-15)."""
    sd = float(returns.std())
    if sd <= 1e-15:
        return 0.0
    return float(returns.mean() / sd * math.sqrt(periods_per_year))


def sharpe(equity: np.ndarray, start: int, stop: int, notional_usd: float, interval_ms: int) -> float:
    """Annualised Sharpe of per-bar returns (equity change / notional) over bars [start, stop)."""
    if stop - start < 2:
        return 0.0
    before = equity[start - 1] if start > 0 else 0.0
    return annualised_sharpe(np.diff(equity[start:stop], prepend=before) / notional_usd, YEAR_MS / interval_ms)


def is_blunder(exit_reason: str, bars_held: int, blunder_bars: int) -> bool:
    """A TradeEvent's blunder: stopped out (`sl_hit`) fewer than `blunder_bars` bars after its fill."""
    return exit_reason == "sl_hit" and bars_held < blunder_bars


@dataclass
class TradeTally:
    """TradeEvents (dicts) counted one by one: hit, payoff, blunders and high-vol share as defined above."""

    trades: int = 0
    wins: int = 0
    sum_win: float = 0.0
    losses: int = 0
    sum_loss: float = 0.0
    pnl: float = 0.0
    blunders: int = 0
    high_vol: int = 0
    sumsq_win: float = 0.0  # for the spread of the payoff (agents.rules)
    sumsq_loss: float = 0.0

    def add(self, trade: Mapping[str, Any], blunder_bars: int) -> None:
        pnl = trade["pnl"]
        self.trades += 1
        self.pnl += pnl
        if pnl > 0:
            self.wins += 1
            self.sum_win += pnl
            self.sumsq_win += pnl * pnl
        elif pnl < 0:
            self.losses += 1
            self.sum_loss += pnl
            self.sumsq_loss += pnl * pnl
        self.blunders += is_blunder(trade["exit_reason"], trade["bars_held"], blunder_bars)
        self.high_vol += trade["vol_bin"] == "high"

    @property
    def hit(self) -> float:
        return self.wins / self.trades if self.trades else 0.0

    @property
    def payoff(self) -> float:
        return float(payoff_ratio(self.wins, self.sum_win, self.losses, self.sum_loss))

    @property
    def blunders_per_100(self) -> float:
        return 100.0 * self.blunders / self.trades if self.trades else 0.0

    @property
    def high_vol_share(self) -> float:
        return self.high_vol / self.trades if self.trades else 0.0


@dataclass(frozen=True)
class Metrics:
    """Aggregate metrics of a set of trades and the equity over a range of bars."""

    n_trades: int
    hit: float
    payoff: float
    total_pnl: float
    maxdd: float
    blunders: int
    blunders_per_100: float
    high_vol_share: float
    sharpe: float
    score: float


def summarize(
    trades: np.ndarray,
    equity: np.ndarray,
    start: int,
    stop: int,
    *,
    notional_usd: float,
    interval_ms: int,
    blunder_bars: int = 3,
) -> Metrics:
    """Metrics of the trades that exit in bars [start, stop) and of the equity over them."""
    sel = trades[(trades["exit_idx"] >= start) & (trades["exit_idx"] < stop)]
    pnl = sel["pnl"]
    n = int(pnl.shape[0])
    wins = pnl > 0.0
    n_wins = int(wins.sum())
    losses = pnl < 0.0
    hit = n_wins / n if n else 0.0
    payoff = float(payoff_ratio(n_wins, float(pnl[wins].sum()), int(losses.sum()), float(pnl[losses].sum())))
    dd = float(max_drawdown(equity, start, stop)) if stop > start else 0.0
    blunders = int(((sel["exit_reason"] == SL_HIT) & (sel["bars_held"] < blunder_bars)).sum())
    return Metrics(
        n_trades=n,
        hit=hit,
        payoff=payoff,
        total_pnl=float(pnl.sum()),
        maxdd=dd,
        blunders=blunders,
        blunders_per_100=100.0 * blunders / n if n else 0.0,
        high_vol_share=float((sel["vol_bin"] == 2).sum()) / n if n else 0.0,
        sharpe=sharpe(equity, start, stop, notional_usd, interval_ms),
        score=float(score(n, hit, payoff, dd, blunders, notional_usd)),
    )
