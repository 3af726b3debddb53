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
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numba import njit

PAYOFF_CAP = 10.0
YEAR_MS = 365 * 24 * 3600 * 1000

EXIT_REASONS = ("tp_hit", "sl_hit", "timeout", "signal_flip", "end_of_data")
TP_HIT, SL_HIT, TIMEOUT, SIGNAL_FLIP, END_OF_DATA = range(5)
PHASES = ("train", "validation", "holdout")
TRAIN, VALIDATION, HOLDOUT = range(3)
VOL_BINS = ("low", "mid", "high")


def in_numba_cache(kernel: Any) -> bool:
    """Whether numba's cache holds `kernel` (an `@njit(cache=True)` function: its index file exists), so
    that calling it loads it instead of compiling it."""
    try:
        return os.path.exists(kernel._cache._cache_file._index_path)  # numba's insides
    except AttributeError:  # another numba's: say no, and the caller does what it does when it would compile
        return False


@njit(cache=True, error_model="numpy", inline="always")
def _clip01(x: float) -> float:
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


# Called from Python as `payoff_ratio.py_func`: the same IEEE arithmetic (no fastmath), without
# starting numba's compiler (a quarter second) in a process, like the conductor, that runs no kernel for it.
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
        return payoff_ratio.py_func(self.wins, self.sum_win, self.losses, self.sum_loss)

    @property
    def blunders_per_100(self) -> float:
        return 100.0 * self.blunders / self.trades if self.trades else 0.0

    @property
    def high_vol_share(self) -> float:
        return self.high_vol / self.trades if self.trades else 0.0


class Metrics(NamedTuple):
    """Aggregate metrics of a set of trades and the equity over a range of bars (a named tuple:
    a backtest builds four of them, and a tuple builds four times faster than a frozen dataclass)."""

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
    payoff = float(payoff_ratio.py_func(n_wins, float(pnl[wins].sum()), int(losses.sum()), float(pnl[losses].sum())))
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


# ---------------------------------------------------------------- the numba twin of summarize
#
# `summarize` above is the definition; `summarize_ranges` gives the same Metrics for many
# ranges of bars in one numba call, bit for bit (tests/test_metrics.py holds it to that on
# random trades and equity, and on backtests). Its sums add in numpy's order (pairwise, as
# ndarray.sum does), so a backtest's metrics cost microseconds where numpy's cost hundreds.
#
# It reads the trades and the equity as the simulator writes them: the trades in exit order,
# each entering no earlier than the one before exited, and the equity level (at the realized
# PnL, 0.0 before the first exit) on every bar no trade holds — a trade holds its bars from
# entry_idx to exit_idx. That keeps its work on the held bars, exactly: a level bar can neither
# raise the peak nor deepen the drawdown; its return is 0.0, which adds nothing to a sum but
# a zero's sign (numpy's leading 0.0 + clears that); and a block of the pairwise sum with no
# held bar has every squared deviation the same, so its sum needs no loads.

N_METRICS = len(Metrics._fields)
(M_N_TRADES, M_HIT, M_PAYOFF, M_TOTAL_PNL, M_MAXDD, M_BLUNDERS, M_BLUNDERS_PER_100, M_HIGH_VOL_SHARE, M_SHARPE,
 M_SCORE) = range(N_METRICS)
# what the kernels below are called with: numpy's int64 and bool, never a literal (each literal a caller passes is a
# specialisation numba compiles: seconds of a cold start)
Index = int | np.int64
Flag = bool | np.bool_
PAIRWISE_BLOCK = 128  # numpy's: a sum of up to this many terms is one block of 8 accumulators
_STACK = 64  # halvings of a pairwise sum: enough for 128 · 2^63 terms


@njit(cache=True, error_model="numpy", inline="always")
def _term(x: float, center: float, squared: Flag) -> float:
    return (x - center) * (x - center) if squared else x


@njit(cache=True, error_model="numpy")
def _block_sum(a: np.ndarray, lo: Index, n: Index, center: float, squared: Flag) -> float:
    """numpy's pairwise sum of the terms of a[lo:lo + n], n ≤ PAIRWISE_BLOCK: a plain loop below 8, else
    8 accumulators. A term is a[i], or (a[i] − center)² when `squared` (a variance's, made as added)."""
    # unsigned indices: numba then skips its negative-index wrap-around code, twice as fast here
    first = np.uint64(lo)
    stop = np.uint64(lo + n)
    if n < 8:
        res = -0.0
        for i in range(first, stop):
            res += _term(a[i], center, squared)
        return res
    r0 = _term(a[first], center, squared)
    r1 = _term(a[first + np.uint64(1)], center, squared)
    r2 = _term(a[first + np.uint64(2)], center, squared)
    r3 = _term(a[first + np.uint64(3)], center, squared)
    r4 = _term(a[first + np.uint64(4)], center, squared)
    r5 = _term(a[first + np.uint64(5)], center, squared)
    r6 = _term(a[first + np.uint64(6)], center, squared)
    r7 = _term(a[first + np.uint64(7)], center, squared)
    tail = first + np.uint64(n - n % 8)
    at = first + np.uint64(8)
    while at < tail:
        r0 += _term(a[at], center, squared)
        r1 += _term(a[at + np.uint64(1)], center, squared)
        r2 += _term(a[at + np.uint64(2)], center, squared)
        r3 += _term(a[at + np.uint64(3)], center, squared)
        r4 += _term(a[at + np.uint64(4)], center, squared)
        r5 += _term(a[at + np.uint64(5)], center, squared)
        r6 += _term(a[at + np.uint64(6)], center, squared)
        r7 += _term(a[at + np.uint64(7)], center, squared)
        at += np.uint64(8)
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for j in range(tail, stop):
        res += _term(a[j], center, squared)
    return res


@njit(cache=True, error_model="numpy")
def _same_block_sum(x: float, n: Index) -> float:
    """_block_sum of n terms that all equal x, in its order of additions (its 8 accumulators are equal)."""
    if n < 8:
        res = -0.0
        for _ in range(n):
            res += x
        return res
    r = x
    for _ in range(n // 8 - 1):
        r += x
    res = ((r + r) + (r + r)) + ((r + r) + (r + r))
    for _ in range(n % 8):
        res += x
    return res


@njit(cache=True, error_model="numpy", inline="always")
def _no_held_bar(entry: np.ndarray, exit_: np.ndarray, q: int, stop: Index) -> bool:
    """No trade from q on (the first not exited before the block) holds a bar before `stop`."""
    return q == entry.shape[0] or entry[q] >= stop


@njit(cache=True, error_model="numpy")
def _np_sum(a: np.ndarray, lo: Index, n: Index, center: float, squared: Flag, held: Flag, entry: np.ndarray,
            exit_: np.ndarray, frames: np.ndarray, lefts: np.ndarray) -> float:
    """The sum of the terms of a[lo:lo + n] (_block_sum) in the order numpy's ndarray.sum adds them:
    0.0, plus the pairwise sum — one block up to PAIRWISE_BLOCK terms, above that the sum of the two
    halves, the first a multiple of 8 long.

    `held`: a is 0.0 on every bar no trade (entry, exit_) holds, so a block with no held bar sums
    to a zero (plain) or to its one squared deviation added n times, the same for every block of
    its length. The halving is walked on a stack (frames: int64[3, _STACK], lefts: float64[_STACK],
    scratch), as numba's cache cannot hold a recursive function.
    """
    if n == 0:
        return 0.0
    q = 0  # the first trade not exited before the block at hand (blocks come in order)
    if held:
        while q < entry.shape[0] and exit_[q] < lo:
            q += 1
        if _no_held_bar(entry, exit_, q, lo + n):
            return 0.0 + _same_block_sum(_term(0.0, center, squared), n)
    if n <= PAIRWISE_BLOCK:
        return 0.0 + _block_sum(a, lo, n, center, squared)
    level = _term(0.0, center, squared)  # the term of a level bar
    level_n = -1  # the length of the last block of level bars summed, and its sum
    level_sum = 0.0
    # frames[0]: first term, frames[1]: length, frames[2]: 0 new, 1 first half asked for, 2 second half asked for
    frames[0, 0], frames[1, 0], frames[2, 0] = lo, n, 0
    depth = 1
    value = 0.0  # the sum of the part asked for last
    while depth > 0:
        top = depth - 1
        m = frames[1, top]
        half = m // 2
        half -= half % 8
        state = frames[2, top]
        if state == 0:
            start, length = frames[0, top], half
        elif state == 1:
            lefts[top] = value
            start, length = frames[0, top] + half, m - half
        else:
            value = lefts[top] + value
            depth -= 1
            continue
        frames[2, top] = state + 1
        if length > PAIRWISE_BLOCK:
            frames[0, depth], frames[1, depth], frames[2, depth] = start, length, 0
            depth += 1
            continue
        if held:
            while q < entry.shape[0] and exit_[q] < start:
                q += 1
            if _no_held_bar(entry, exit_, q, start + length):
                if not squared:
                    value = 0.0  # the sum of ±0: a zero, its sign no matter
                elif length == level_n:
                    value = level_sum
                else:
                    level_n, level_sum = length, _same_block_sum(level, length)
                    value = level_sum
                continue
        value = _block_sum(a, start, length, center, squared)
    return 0.0 + value


@njit(cache=True, error_model="numpy")
def summarize_ranges(trades: np.ndarray, equity: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                     notional_usd: float, periods_per_year: float, blunder_bars: int) -> np.ndarray:
    """`summarize` of each range [starts[r], stops[r]) of bars (0 ≤ start, stop ≤ len(equity)), for trades
    and equity as the simulator writes them (see above): row r holds its Metrics' fields in order, as
    float64 (periods_per_year: YEAR_MS / interval_ms)."""
    k = starts.shape[0]
    out = np.empty((k, N_METRICS))
    hi = 0
    for r in range(k):
        hi = max(hi, stops[r])
    n_trades = trades.shape[0]
    entry = np.empty(n_trades, np.int64)
    exit_ = np.empty(n_trades, np.int64)
    for j in range(n_trades):
        entry[j] = trades[j].entry_idx
        exit_[j] = trades[j].exit_idx
    # per-bar returns (equity change / notional), the same in every range holding the bar
    returns = np.empty(hi)
    if hi > 0:
        returns[0] = (equity[0] - 0.0) / notional_usd
    for j in range(1, hi):
        returns[j] = (equity[j] - equity[j - 1]) / notional_usd
    frames = np.empty((3, _STACK), np.int64)
    lefts = np.empty(_STACK)
    first = np.int64(0)
    no, yes = np.bool_(False), np.bool_(True)  # flags, not literals: one specialisation of _np_sum
    pnl_all = np.empty(n_trades)
    win_pnl = np.empty(n_trades)
    loss_pnl = np.empty(n_trades)
    for r in range(k):
        start = starts[r]
        stop = stops[r]
        n = 0
        n_wins = 0
        n_losses = 0
        blunders = 0
        high_vol = 0
        for j in range(n_trades):
            t = trades[j]
            if t.exit_idx < start or t.exit_idx >= stop:
                continue
            pnl = t.pnl
            pnl_all[n] = pnl
            n += 1
            if pnl > 0.0:
                win_pnl[n_wins] = pnl
                n_wins += 1
            if pnl < 0.0:
                loss_pnl[n_losses] = pnl
                n_losses += 1
            if t.exit_reason == SL_HIT and t.bars_held < blunder_bars:
                blunders += 1
            if t.vol_bin == 2:
                high_vol += 1
        hit = n_wins / n if n else 0.0
        # counts as int64, never a literal 0: each literal is a specialisation numba compiles, seconds of a cold start
        payoff = payoff_ratio(n_wins, _np_sum(win_pnl, first, np.int64(n_wins), 0.0, no, no, entry, exit_,
                                              frames, lefts),
                              n_losses, _np_sum(loss_pnl, first, np.int64(n_losses), 0.0, no, no, entry, exit_,
                                                frames, lefts))
        # max_drawdown, over the held bars
        dd = 0.0
        if stop > start:
            peak = equity[start - 1] if start > 0 else 0.0
            done = start - 1  # the last bar seen: consecutive trades share the bar of a flip
            for j in range(n_trades):
                if exit_[j] < start:
                    continue
                if entry[j] >= stop:
                    break
                for b in range(max(entry[j], done + 1), min(exit_[j] + 1, stop)):
                    e = equity[b]
                    peak = e if e > peak else peak
                    x = e - peak
                    dd = x if x < dd else dd
                    done = b
        # `sharpe`: numpy's mean of the returns, then its population sd from the squared deviations
        m = stop - start
        sharpe_ = 0.0
        if m >= 2:
            mean = _np_sum(returns, np.int64(start), np.int64(m), 0.0, no, yes, entry, exit_, frames, lefts) / m
            sd = np.sqrt(_np_sum(returns, np.int64(start), np.int64(m), mean, yes, yes, entry, exit_, frames,
                                 lefts) / m)
            sharpe_ = 0.0 if sd <= 1e-15 else mean / sd * np.sqrt(periods_per_year)
        row = out[r]
        row[M_N_TRADES] = n
        row[M_HIT] = hit
        row[M_PAYOFF] = payoff
        row[M_TOTAL_PNL] = _np_sum(pnl_all, first, np.int64(n), 0.0, no, no, entry, exit_, frames, lefts)
        row[M_MAXDD] = dd
        row[M_BLUNDERS] = blunders
        row[M_BLUNDERS_PER_100] = 100.0 * blunders / n if n else 0.0
        row[M_HIGH_VOL_SHARE] = high_vol / n if n else 0.0
        row[M_SHARPE] = sharpe_
        row[M_SCORE] = score(n, hit, payoff, dd, blunders, notional_usd)
    return out


# the rows of a backtest's metrics table (phase_table): each phase, then the whole window
TABLE_PHASES = (*PHASES, "all")


@njit(cache=True, error_model="numpy")
def phase_table(trades: np.ndarray, equity: np.ndarray, train_end: int, validation_end: int, notional_usd: float,
                periods_per_year: float, blunder_bars: int) -> np.ndarray:
    """summarize_ranges of a backtest's phases — train [0, train_end), validation, holdout, then all
    of its bars — one row each, in TABLE_PHASES order."""
    n = equity.shape[0]
    starts = np.array([0, train_end, validation_end, 0])
    stops = np.array([train_end, validation_end, n, n])
    return summarize_ranges(trades, equity, starts, stops, notional_usd, periods_per_year, blunder_bars)


def metrics_of_row(row: list[float]) -> Metrics:
    """The Metrics of one row of `summarize_ranges` (as a list: `table.tolist()`), its counts back to int."""
    row[M_N_TRADES] = int(row[M_N_TRADES])
    row[M_BLUNDERS] = int(row[M_BLUNDERS])
    return Metrics._make(row)
