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


@njit(cache=True, error_model="numpy")
def _cross(diff: float, prev: float) -> np.int8:
    """+1 when diff turns positive, −1 when it turns negative, else 0."""
    if diff > 0.0 and prev <= 0.0:
        return np.int8(1)
    if diff < 0.0 and prev >= 0.0:
        return np.int8(-1)
    return np.int8(0)


# The EMAs below are engine.indicators.ema (same recurrence, bit for bit), run side by side
# in one loop so their dependency chains overlap.


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def trend_breakout(open_, high, low, close, p):
    """Long when the close breaks above the prior p[0]-bar high; short below the prior p[0]-bar low.

    Equal to comparing with rolling_max(high)[i − 1] / rolling_min(low)[i − 1], but only
    closes beyond the previous bar's range scan back, and stop at the first bar that holds.
    """
    n = close.shape[0]
    lookback = int(p[0])
    sig = np.zeros(n, np.int8)
    for i in range(lookback, n):
        c = close[i]
        if c > high[i - 1]:
            j = i - 2
            while j >= i - lookback and high[j] < c:
                j -= 1
            if j < i - lookback:
                sig[i] = 1
        elif c < low[i - 1]:
            j = i - 2
            while j >= i - lookback and low[j] > c:
                j -= 1
            if j < i - lookback:
                sig[i] = -1
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
