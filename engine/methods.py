"""Signal methods, registered by name.

A method is one numba function `(open, high, low, close, p) -> int8[n]` giving the
signal at each bar's close (+1 long, −1 short, 0 none), plus one `METHODS` entry that
names the `Params` fields it reads (in the order of `p`) and its warm-up. Signals are
events (a cross, a breakout), not states: a position closed by its stop re-enters
only on a fresh signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba import njit

from engine.params import Params


@njit(cache=True)
def _cross(diff: float, prev: float) -> np.int8:
    """+1 when diff turns positive, −1 when it turns negative, else 0."""
    if diff > 0.0 and prev <= 0.0:
        return np.int8(1)
    if diff < 0.0 and prev >= 0.0:
        return np.int8(-1)
    return np.int8(0)


# The EMAs below are engine.indicators.ema (same recurrence, bit for bit), run side by side
# in one loop so their dependency chains overlap.


@njit(cache=True)
def ema_crossover(open_, high, low, close, p):
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


@njit(cache=True)
def macd_trend(open_, high, low, close, p):
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


@njit(cache=True)
def trend_breakout(open_, high, low, close, p):
    """Long when the close breaks above the prior p[0]-bar high; short below the prior p[0]-bar low.

    The channel of bars i − p[0] .. i − 1 is kept with two monotonic index queues (O(n)).
    """
    n = close.shape[0]
    lookback = int(p[0])
    sig = np.zeros(n, np.int8)
    hq = np.empty(n, np.int64)  # indices of decreasing highs
    lq = np.empty(n, np.int64)  # indices of increasing lows
    h_head = h_tail = l_head = l_tail = 0
    for i in range(n):
        if i >= lookback:
            # the queues hold bars i - lookback .. i - 1: the prior channel
            while hq[h_head] < i - lookback:
                h_head += 1
            while lq[l_head] < i - lookback:
                l_head += 1
            if close[i] > high[hq[h_head]]:
                sig[i] = 1
            elif close[i] < low[lq[l_head]]:
                sig[i] = -1
        while h_tail > h_head and high[hq[h_tail - 1]] <= high[i]:
            h_tail -= 1
        hq[h_tail] = i
        h_tail += 1
        while l_tail > l_head and low[lq[l_tail - 1]] >= low[i]:
            l_tail -= 1
        lq[l_tail] = i
        l_tail += 1
    return sig


@dataclass(frozen=True)
class Method:
    """A registered signal method: its kernel, the Params fields it reads, and its warm-up in bars."""

    name: str
    signals: Callable
    param_names: tuple[str, ...]
    warmup: Callable[[Params], int]

    def param_vector(self, params: Params) -> np.ndarray:
        """The kernel's `p` array for these params."""
        return np.array([float(getattr(params, n)) for n in self.param_names])


METHODS: dict[str, Method] = {
    "ema_crossover": Method("ema_crossover", ema_crossover, ("ema_fast", "ema_slow"), lambda p: p.ema_slow),
    "macd_trend": Method(
        "macd_trend", macd_trend, ("macd_fast", "macd_slow", "macd_signal"), lambda p: p.macd_slow + p.macd_signal
    ),
    "trend_breakout": Method("trend_breakout", trend_breakout, ("breakout_lookback",), lambda p: p.breakout_lookback + 1),
}
