"""The three built-in strategies: their numba kernels and their declarations (`BUILT_INS`).

They are declared through the same API as a trader's own (engine/strategy.py): a kernel
`(open, high, low, close, volume, taker_buy, p) -> int8[n]` giving the signal at each bar's
close (+1 long, −1 short, 0 none), its parameters and its warm-up. Signals are events (a
cross, a breakout), not states: a position closed by its stop re-enters only on a fresh
signal.

The warm-up rule: the first bar whose close may produce a signal is the first bar at which
every indicator the config uses has its full lookback, that is, every bar its value reads
back to is in the data with a complete input. A window of w bars ending at the bar is full
w − 1 bars after its input's first complete bar; the Donchian channel, the L bars before
the bar, at bar L. An exponential smoothing of period P (an EMA) reads back without end:
two runs started at different bars give values that differ less and less, and their crosses
agree only about ten periods in (EMA_SETTLE; measured by engine/strategy_check.py's recursion
check, which every declared warm-up must pass), so an EMA's signal counts EMA_SETTLE × P bars
after its input's first complete bar. (A cross also compares with the bar before; the rule
asks for settled values at the signal bar.) Each method's `warmup` is that bar for its own
indicators; engine.backtest.warmup_bars adds the stop's ATR (Wilder's, counted as P bars:
it sizes the stop, it gives no signal) and the gates.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numba import njit

from engine.strategy import Parameter, ParamValue, Strategy


@njit(cache=True, error_model="numpy")
def _cross(diff: float, prev: float) -> np.int8:
    """+1 when diff turns positive, −1 when it turns negative, else 0."""
    if diff > 0.0 and prev <= 0.0:
        return np.int8(1)
    if diff < 0.0 and prev >= 0.0:
        return np.int8(-1)
    return np.int8(0)


# The EMAs below are ema of tests/indicators.py (same recurrence, bit for bit), run side by side
# in one loop so their dependency chains overlap.


@njit(cache=True, error_model="numpy")
def ema_crossover(open_, high, low, close, volume, taker_buy, p):
    """Long when EMA(p[0]) crosses above EMA(p[1]); short when it crosses below."""
    n = close.shape[0]
    sig = np.zeros(n, np.int8)
    if n == 0:
        return sig
    af = 2.0 / (p[0] + 1.0)
    as_ = 2.0 / (p[1] + 1.0)
    bf = 1.0 - af
    bs = 1.0 - as_
    fast = close[0]
    slow = close[0]
    prev = 0.0
    for i in range(1, n):
        fast = bf * fast + af * close[i]
        slow = bs * slow + as_ * close[i]
        diff = fast - slow
        sig[i] = _cross(diff, prev)
        prev = diff
    return sig


@njit(cache=True, error_model="numpy")
def macd_trend(open_, high, low, close, volume, taker_buy, p):
    """Long when the MACD(p[0], p[1], p[2]) histogram turns positive; short when it turns negative."""
    n = close.shape[0]
    sig = np.zeros(n, np.int8)
    if n == 0:
        return sig
    af = 2.0 / (p[0] + 1.0)
    as_ = 2.0 / (p[1] + 1.0)
    ag = 2.0 / (p[2] + 1.0)
    bf = 1.0 - af
    bs = 1.0 - as_
    bg = 1.0 - ag
    fast = close[0]
    slow = close[0]
    signal = fast - slow
    prev = 0.0
    for i in range(1, n):
        fast = bf * fast + af * close[i]
        slow = bs * slow + as_ * close[i]
        line = fast - slow
        signal = bg * signal + ag * line
        hist = line - signal
        sig[i] = _cross(hist, prev)
        prev = hist
    return sig


@njit(cache=True, error_model="numpy")
def trend_breakout(open_, high, low, close, volume, taker_buy, p):
    """Long when the close breaks above the prior p[0]-bar high; short below the prior p[0]-bar low.

    Equal to comparing with rolling_max(high)[i − 1] / rolling_min(low)[i − 1], in O(n)
    without data-dependent branches (van Herk/Gil-Werman): in blocks of p[0] bars, the
    window of bar i, bars i − p[0] .. i − 1, is a suffix of one block and a prefix of the next.
    """
    n = close.shape[0]
    lookback = int(p[0])
    sig = np.zeros(n, np.int8)
    if n <= lookback:
        return sig
    extremes = np.empty((4, n))
    pre_h, pre_l, suf_h, suf_l = extremes[0], extremes[1], extremes[2], extremes[3]
    for start in range(0, n, lookback):
        stop = min(start + lookback, n)
        m = stop - start
        # block views index from 0, so no index can be negative (numba then skips the
        # wrap-around arithmetic); prefix and suffix run in one loop, four independent chains
        hb, lb = high[start:stop], low[start:stop]
        ph, pl, sh, sl = pre_h[start:stop], pre_l[start:stop], suf_h[start:stop], suf_l[start:stop]
        fh, fl, bh, bl = hb[0], lb[0], hb[m - 1], lb[m - 1]
        for t in range(m):
            v = hb[t]
            fh = v if v > fh else fh
            v = lb[t]
            fl = v if v < fl else fl
            ph[t] = fh
            pl[t] = fl
            u = m - 1 - t
            v = hb[u]
            bh = v if v > bh else bh
            v = lb[u]
            bl = v if v < bl else bl
            sh[u] = bh
            sl[u] = bl
    # bar i against the suffix from bar i − lookback and the prefix to bar i − 1
    c, out = close[lookback:], sig[lookback:]
    sh, sl = suf_h[: n - lookback], suf_l[: n - lookback]
    ph, pl = pre_h[lookback - 1 : n - 1], pre_l[lookback - 1 : n - 1]
    for t in range(n - lookback):
        a, b = sh[t], ph[t]
        hi = a if a > b else b
        a, b = sl[t], pl[t]
        lo = a if a < b else b
        x = c[t]
        up = x > hi
        out[t] = np.int8(up) - np.int8((x < lo) > up)  # long wins, as in the reference
    return sig


def _below(fast: str, slow: str):
    def check(p: Mapping[str, ParamValue]) -> str | None:
        return f"{fast} ({p[fast]}) must be below {slow} ({p[slow]})" if p[fast] >= p[slow] else None
    return check


EMA_SETTLE = 10  # periods an EMA needs before its crosses no longer depend on where the data starts

# Each warm-up is the first bar at which the method's own indicators have their full lookback (the rule above).
BUILT_INS: tuple[Strategy, ...] = (
    Strategy(
        "ema_crossover", "long when the fast EMA of the close crosses above the slow one, short when below",
        (Parameter("ema_fast", 12, lo=2, hi=200, max_step=20, unit="bars", doc="fast EMA period"),
         Parameter("ema_slow", 48, lo=3, hi=600, max_step=60, unit="bars", doc="slow EMA period")),
        # EMA(ema_slow) is full at bar ema_slow (ema_slow bars of close before it); EMA(ema_fast) earlier
        warmup=lambda p: EMA_SETTLE * int(p["ema_slow"]), signal=ema_crossover, check=_below("ema_fast", "ema_slow"),
    ),
    Strategy(
        "macd_trend", "long when the MACD histogram turns positive, short when it turns negative",
        (Parameter("macd_fast", 12, lo=2, hi=100, max_step=10, unit="bars", doc="MACD fast EMA period"),
         Parameter("macd_slow", 26, lo=3, hi=300, max_step=30, unit="bars", doc="MACD slow EMA period"),
         Parameter("macd_signal", 9, lo=2, hi=100, max_step=10, unit="bars", doc="MACD signal EMA period")),
        # the MACD line is full at macd_slow, and its signal line, an EMA of it, macd_signal bars later
        warmup=lambda p: EMA_SETTLE * int(p["macd_slow"] + p["macd_signal"]), signal=macd_trend, check=_below("macd_fast", "macd_slow"),
    ),
    Strategy(
        "trend_breakout", "long when the close breaks above the prior channel high, short below its low",
        (Parameter("breakout_lookback", 48, lo=5, hi=500, max_step=48, unit="bars", doc="Donchian channel length"),),
        # the channel over the breakout_lookback bars before a bar is complete from bar breakout_lookback
        warmup=lambda p: int(p["breakout_lookback"]), signal=trend_breakout,
    ),
)
