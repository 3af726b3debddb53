"""Bollinger breakout, a pandas ("frame") strategy: trade the close leaving its band.

The band is the mean ± `k` standard deviations (population) of the last `window` closes,
the bar's own included. +1 (long) on the bar the close crosses above the upper band, −1
(short) on the bar it crosses below the lower band, 0 otherwise.

Run it:  maestro-tui run --strategy examples/strategies/bollinger_breakout.py
"""

from __future__ import annotations

import numpy as np

from engine.strategy import Parameter, Strategy


def bollinger_breakout(bars, p):
    """+1 / −1 / 0 per bar: the close crossing out of its `window`-bar, `k`-sd band."""
    close = bars["close"]
    rolling = close.rolling(int(p["window"]))
    mean, sd = rolling.mean(), rolling.std(ddof=0)
    above = close > mean + p["k"] * sd  # False while the window is not full (NaN bands)
    below = close < mean - p["k"] * sd
    entered_above = above & ~above.shift(1, fill_value=False)
    entered_below = below & ~below.shift(1, fill_value=False)
    return entered_above.to_numpy(np.int8) - entered_below.to_numpy(np.int8)


STRATEGY = Strategy(
    name="bollinger_breakout",
    description="long when the close crosses above its Bollinger band, short when it crosses below",
    parameters=(
        Parameter("window", 20, lo=5, hi=500, max_step=20, unit="bars", doc="band length: closes in the mean and sd"),
        Parameter("k", 2.0, lo=0.5, hi=4.0, max_step=0.5, unit="sd", doc="band width in standard deviations"),
    ),
    # the band of `window` closes is full from bar window − 1, the cross compares with the bar before
    warmup=lambda p: int(p["window"]),
    signal=bollinger_breakout,
    form="frame",
)
