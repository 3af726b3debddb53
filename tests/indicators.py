"""Causal indicators as numba kernels over plain float64 arrays.

Every value at index i uses bars 0..i only (no look-ahead). Warm-up values are
defined (never NaN) so kernels stay branch-light; the simulator ignores signals
before its warm-up bar. The slow references in tests/reference.py pin each one.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def ema(x: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, alpha = 2 / (period + 1), seeded with x[0]."""
    n = x.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    alpha = 2.0 / (period + 1.0)
    beta = 1.0 - alpha
    acc = x[0]
    out[0] = acc
    for i in range(1, n):
        acc = beta * acc + alpha * x[i]
        out[i] = acc
    return out


@njit(cache=True, error_model="numpy")
def macd(close: np.ndarray, fast: int, slow: int, signal: int):
    """MACD line (EMA fast − EMA slow), its signal EMA and the histogram (line − signal)."""
    line = ema(close, fast) - ema(close, slow)
    sig = ema(line, signal)
    return line, sig, line - sig


@njit(cache=True, error_model="numpy")
def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's average true range in price units, seeded with the first bar's range."""
    n = close.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    # Wilder's smoothing written as beta·acc + alpha·tr: one multiply-add on the dependency chain
    beta = 1.0 - 1.0 / period
    alpha = 1.0 / period
    acc = high[0] - low[0]
    out[0] = acc
    for i in range(1, n):
        tr = high[i] - low[i]
        up = abs(high[i] - close[i - 1])
        down = abs(low[i] - close[i - 1])
        if up > tr:
            tr = up
        if down > tr:
            tr = down
        acc = beta * acc + alpha * tr
        out[i] = acc
    return out


@njit(cache=True, error_model="numpy")
def zscore(x: np.ndarray, window: int) -> np.ndarray:
    """(x − rolling mean) / rolling population sd over the last `window` values; 0 until full or flat."""
    n = x.shape[0]
    out = np.zeros(n)
    s = 0.0
    s2 = 0.0
    for i in range(n):
        v = x[i]
        # add the difference: one addition per bar on each running sum's dependency chain
        if i >= window:
            old = x[i - window]
            s += v - old
            s2 += v * v - old * old
        else:
            s += v
            s2 += v * v
        if i >= window - 1:
            mean = s / window
            var = s2 / window - mean * mean
            if var > 1e-18 * (mean * mean + 1.0):
                out[i] = (x[i] - mean) / np.sqrt(var)
    return out


@njit(cache=True, error_model="numpy")
def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    """max(x[i − window + 1 .. i]) (fewer values at the start); O(n) by van Herk/Gil-Werman blocks."""
    n = x.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    prefix = np.empty(n)  # max from the start of i's block to i
    suffix = np.empty(n)  # max from i to the end of i's block
    for start in range(0, n, window):
        stop = min(start + window, n)
        acc = x[start]
        for i in range(start, stop):
            v = x[i]
            acc = v if v > acc else acc
            prefix[i] = acc
        acc = x[stop - 1]
        for i in range(stop - 1, start - 1, -1):
            v = x[i]
            acc = v if v > acc else acc
            suffix[i] = acc
    for i in range(min(window - 1, n)):
        out[i] = prefix[i]
    for i in range(window - 1, n):
        a = suffix[i - window + 1]
        b = prefix[i]
        out[i] = a if a > b else b
    return out


@njit(cache=True, error_model="numpy")
def rolling_min(x: np.ndarray, window: int) -> np.ndarray:
    """min(x[i − window + 1 .. i]) (fewer values at the start): rolling_max of −x, negated (exact)."""
    return -rolling_max(-x, window)


@njit(cache=True, error_model="numpy")
def rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """sum(x[i − window + 1 .. i]) (fewer values at the start)."""
    n = x.shape[0]
    out = np.empty(n)
    s = 0.0
    for i in range(n):
        if i >= window:
            s += x[i] - x[i - window]
        else:
            s += x[i]
        out[i] = s
    return out


@njit(cache=True, error_model="numpy")
def vhf(close: np.ndarray, period: int) -> np.ndarray:
    """Vertical horizontal filter: (max − min of close) / Σ|Δclose| over `period` bars; 0 when flat."""
    n = close.shape[0]
    hi = rolling_max(close, period)
    lo = rolling_min(close, period)
    moves = np.zeros(n)
    for i in range(1, n):
        moves[i] = abs(close[i] - close[i - 1])
    path = rolling_sum(moves, period)
    out = np.zeros(n)
    for i in range(n):
        if path[i] > 0.0:
            out[i] = (hi[i] - lo[i]) / path[i]
    return out


@njit(cache=True, error_model="numpy")
def volume_delta(volume: np.ndarray, taker_buy: np.ndarray) -> np.ndarray:
    """Per-bar delta: taker buys − taker sells = 2 × taker_buy − volume (base units)."""
    return 2.0 * taker_buy - volume


@njit(cache=True, error_model="numpy")
def cvd_slope(volume: np.ndarray, taker_buy: np.ndarray, window: int) -> np.ndarray:
    """Change of cumulative volume delta over the last `window` bars (base units)."""
    return rolling_sum(volume_delta(volume, taker_buy), window)


@njit(cache=True, error_model="numpy")
def imbalance(volume: np.ndarray, taker_buy: np.ndarray, window: int) -> np.ndarray:
    """Taker-buy imbalance over `window` bars: Σ(buy − sell) / Σ volume, in [−1, 1]; 0 without volume."""
    num = rolling_sum(volume_delta(volume, taker_buy), window)
    den = rolling_sum(volume, window)
    n = volume.shape[0]
    out = np.zeros(n)
    for i in range(n):
        if den[i] > 0.0:
            out[i] = num[i] / den[i]
    return out
