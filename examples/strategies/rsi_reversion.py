"""RSI mean reversion, a numba kernel strategy: buy the bounce out of oversold, sell the drop out of overbought.

Wilder's RSI of `rsi_period` closes; +1 (long) on the bar the RSI crosses up through `low`,
−1 (short) on the bar it crosses down through `high`, 0 otherwise. Every value at a bar's
close reads that bar and the bars before it only.

Run it:  maestro-tui run --strategy examples/strategies/rsi_reversion.py
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.strategy import Parameter, Strategy


@njit(cache=True)
def rsi_reversion(open_, high, low, close, volume, taker_buy, p):
    """Long when RSI(p[0]) crosses up through p[1], short when it crosses down through p[2] (int8[n])."""
    n = close.shape[0]
    sig = np.zeros(n, np.int8)
    period = int(p[0])
    oversold = p[1]
    overbought = p[2]
    if n <= period + 1:
        return sig
    # Wilder's smoothing, seeded with the mean gain and loss of the first `period` changes
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        change = close[i] - close[i - 1]
        if change > 0.0:
            gain += change
        else:
            loss -= change
    gain /= period
    loss /= period
    # then, each bar, avg = (1 − 1/period)·avg + (this bar's gain or loss)/period, written so that one
    # multiply and one add carry a bar to the next (`avg += alpha * (x − avg)` chains three: 1.6× slower)
    alpha = 1.0 / period
    keep = 1.0 - alpha
    total = gain + loss
    prev = 100.0 * gain / total if total > 0.0 else 50.0
    for i in range(period + 1, n):
        change = close[i] - close[i - 1]
        gain = keep * gain + alpha * (change if change > 0.0 else 0.0)
        loss = keep * loss + alpha * (-change if change < 0.0 else 0.0)
        total = gain + loss
        rsi = 100.0 * gain / total if total > 0.0 else 50.0  # RSI = 100 − 100 / (1 + gain / loss)
        if rsi > oversold and prev <= oversold:
            sig[i] = 1
        elif rsi < overbought and prev >= overbought:
            sig[i] = -1
        prev = rsi
    return sig


def _low_below_high(p):
    return None if p["low"] < p["high"] else f"low ({p['low']:g}) must be below high ({p['high']:g})"


STRATEGY = Strategy(
    name="rsi_reversion",
    description="long when the RSI crosses up through `low`, short when it crosses down through `high`",
    parameters=(
        Parameter("rsi_period", 14, lo=2, hi=100, max_step=7, unit="bars", doc="RSI period (Wilder)"),
        Parameter("low", 30.0, lo=5, hi=60, max_step=5, doc="oversold level: long on the cross up through it"),
        Parameter("high", 70.0, lo=40, hi=95, max_step=5, doc="overbought level: short on the cross down through it"),
    ),
    # Wilder's smoothing never forgets where it started; the trace of the start shrinks by
    # (1 − 1/rsi_period) a bar, e^−10 after 10 periods: too small to flip a cross
    warmup=lambda p: 10 * int(p["rsi_period"]),
    signal=rsi_reversion,
    check=_low_below_high,
)
