"""Synthetic BTC-like 5-minute bars: the embedded default, so everything runs with no data.

A regime-switching random walk. Two independent regime chains drive it:

- volatility: calm / normal / stormy, each persisting hours to days;
- direction: choppy stretches (returns slightly mean-reverting) alternating with trends
  (a drift and slightly persistent returns) that trend-following can find, sometimes.

A slow pull toward a wandering anchor keeps a year of prices in the 60-70k area instead of
drifting off like a pure random walk. Volume swells with volatility, and the taker-buy share
leans with each bar's return and the trend, so volume-delta gates have something to read.

Deterministic: one `numpy.random.default_rng(seed)`, a fixed sequence of draws, and only
arithmetic, cumsum/cumprod, sqrt and interp afterwards. Transcendental ufuncs (exp, log,
tanh) are avoided on purpose: numpy dispatches them to CPU-specific SIMD code whose last
bit can differ between machines.
"""

from __future__ import annotations

import math

import numpy as np

from engine.data import Bars

_FIVE_MINUTES_MS = 300_000
_HOUR_MS = 3_600_000

# Return sd per 5-minute bar in each volatility regime: ~1.4 %, ~2.5 %, ~5 % a day.
_VOL_LEVELS = np.array([0.0008, 0.0015, 0.0030])
_VOL_MEAN_HOURS = (30.0, 18.0, 8.0)
# Where a volatility regime goes when it ends (rows: from calm, normal, stormy).
_VOL_NEXT = ((0.0, 0.8, 0.2), (0.55, 0.0, 0.45), (0.35, 0.65, 0.0))

# Direction regimes: 0 chop, 1 trend. A trend may end in a new trend (either way) or chop.
_TREND_MEAN_HOURS = (16.0, 10.0)
_TREND_NEXT = ((0.0, 1.0), (0.7, 0.3))
# MA(1) coefficient of the return noise: chop reverts a little, trends follow through.
_NOISE_MA = np.array([-0.25, 0.12])
# Drift per bar in units of the bar's sd, min and max: strong enough that a plain EMA
# crossover wins in about half the 15-day windows after 5 bp fees, not in all of them.
_TREND_DRIFT_SD = (0.03, 0.10)

# The anchor wanders within ±4 % of the start price, one waypoint a month.
_ANCHOR_SPAN = 0.04
_ANCHOR_WAYPOINT_HOURS = 30 * 24.0
# Pull toward the anchor per 5-minute bar, as a share of the (log) distance: half-life
# ~1.6 days. With it a year stays mostly within 62-68k (5th-95th percentile at 65k start).
_PULL_PER_BAR = 0.0015

_VOLUME_PER_BAR = 80.0  # BTC per 5-minute bar in the normal regime


def synthetic_bars(
    n_bars: int = 105_120,
    *,
    seed: int = 0,
    interval_ms: int = 300_000,
    start_ms: int = 1_704_067_200_000,
    start_price: float = 65_000.0,
) -> Bars:
    """`n_bars` bars (default: one year of 5-minute bars) from `start_ms` (ms, UTC), prices in USD.

    Same arguments give bit-identical arrays on any machine; no gaps; taker-buy volume included.
    """
    if n_bars < 2:
        raise ValueError(f"n_bars must be at least 2, got {n_bars}")
    if interval_ms <= 0:
        raise ValueError(f"interval_ms must be positive, got {interval_ms}")
    if not (math.isfinite(start_price) and start_price > 0):
        raise ValueError(f"start_price must be a positive price, got {start_price}")
    n = int(n_bars)
    rng = np.random.default_rng(seed)
    # Everything is specified per 5-minute bar or per hour; rescale to the bar size asked for.
    scale = interval_ms / _FIVE_MINUTES_MS
    bars_per_hour = _HOUR_MS / interval_ms

    vol_state = _regime_path(rng, n, [h * bars_per_hour for h in _VOL_MEAN_HOURS], _VOL_NEXT, start=1)
    trend_starts, trend_lengths, trend_kind = _regime_segments(
        rng, n, [h * bars_per_hour for h in _TREND_MEAN_HOURS], _TREND_NEXT, start=0
    )
    is_trend = np.repeat(trend_kind, trend_lengths)[:n]

    sigma_normal = _VOL_LEVELS[1] * math.sqrt(scale)
    sigma = _VOL_LEVELS[vol_state] * math.sqrt(scale) * (0.8 + 0.4 * rng.random(n))
    eps = rng.standard_normal(n + 1)
    theta = _NOISE_MA[is_trend]
    noise = sigma * (eps[1:] + theta * eps[:-1]) / np.sqrt(1.0 + theta * theta)

    # Trend drifts and the pull to the anchor are set once per direction segment, from
    # where the price stands when the segment begins: a loop over ~1 segment per 10 hours.
    n_waypoints = int(n / (_ANCHOR_WAYPOINT_HOURS * bars_per_hour)) + 2
    waypoints = _ANCHOR_SPAN * (2.0 * rng.random(n_waypoints) - 1.0)
    waypoints[0] = 0.0
    waypoint_bars = np.arange(n_waypoints) * (_ANCHOR_WAYPOINT_HOURS * bars_per_hour)
    anchor = np.interp(np.arange(n, dtype=np.float64), waypoint_bars, waypoints)  # log(anchor / start)

    n_segments = len(trend_starts)
    u_direction = rng.random(n_segments)
    strength = _TREND_DRIFT_SD[0] + (_TREND_DRIFT_SD[1] - _TREND_DRIFT_SD[0]) * rng.random(n_segments)
    # log(price / start) ≈ Σ (r - r²/2); the drifts add to it inside the loop.
    noise_log = np.concatenate(([0.0], np.cumsum(noise - 0.5 * noise * noise)))
    sigma_sum = np.concatenate(([0.0], np.cumsum(sigma)))
    pull = _PULL_PER_BAR * scale
    direction = np.zeros(n_segments)
    pull_rate = np.zeros(n_segments)  # per bar, toward the anchor
    drift_log = 0.0
    for k in range(n_segments):
        s = int(trend_starts[k])
        e = min(s + int(trend_lengths[k]), n)
        distance = noise_log[s] + drift_log - anchor[s]
        if trend_kind[k]:
            # Trends lean back toward the anchor: far above it, most new trends point down.
            p_up = min(0.9, max(0.1, 0.5 - distance / 0.12))
            direction[k] = 1.0 if u_direction[k] < p_up else -1.0
        pull_rate[k] = -pull * distance
        drift_log += direction[k] * strength[k] * (sigma_sum[e] - sigma_sum[s]) + pull_rate[k] * (e - s)

    trend_sign = np.repeat(direction, trend_lengths)[:n]
    trend_drift = trend_sign * np.repeat(strength, trend_lengths)[:n] * sigma
    r = noise + trend_drift + np.repeat(pull_rate, trend_lengths)[:n]

    close = start_price * np.cumprod(1.0 + r)
    open_ = np.empty(n)
    open_[0] = start_price
    open_[1:] = close[:-1]
    # Wicks beyond the body; multiplying by (1 + x), x ≥ 0, keeps high ≥ max(open, close) exactly.
    wick_high = 0.6 * sigma * np.abs(rng.standard_normal(n))
    wick_low = 0.6 * sigma * np.abs(rng.standard_normal(n))
    high = np.maximum(open_, close) * (1.0 + wick_high)
    low = np.minimum(open_, close) * (1.0 - wick_low)

    z = r / sigma
    activity = (0.5 + 0.7 * np.abs(z)) * (0.7 + 0.6 * rng.random(n))
    volume = _VOLUME_PER_BAR * scale * (sigma / sigma_normal) * activity
    # Buyers lead up bars and trends. x / (1 + |x|) maps to (-1, 1) with no exp, so the
    # share stays in [0, 1] and volume * share never exceeds volume.
    lean = 0.9 * z + 0.3 * trend_sign + 0.5 * rng.standard_normal(n)
    buy_share = 0.5 + 0.5 * lean / (1.0 + np.abs(lean))
    taker_buy = volume * buy_share

    ts = int(start_ms) + np.arange(n, dtype=np.int64) * int(interval_ms)
    return Bars(
        ts=ts,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        taker_buy_volume=taker_buy,
        interval_ms=int(interval_ms),
        source=f"synthetic(seed={seed}, n_bars={n})",
    )


def _regime_segments(
    rng: np.random.Generator,
    n: int,
    mean_bars: list[float],
    next_state: tuple[tuple[float, ...], ...],
    *,
    start: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A semi-Markov chain covering n bars: segment starts, lengths and states.

    Lengths are uniform in [0.3, 1.7] × the state's mean (no log needed, unlike a geometric
    draw). The draws are a fixed number per call, so later draws do not depend on the path.
    """
    shortest = max(1, int(0.3 * min(mean_bars)))
    most = n // shortest + 2
    u_length = rng.random(most)
    u_next = rng.random(most)
    cumulative = [np.cumsum(row) for row in next_state]
    lengths: list[int] = []
    states: list[int] = []
    state, total, k = start, 0, 0
    while total < n:
        length = max(1, int(mean_bars[state] * (0.3 + 1.4 * u_length[k])))
        lengths.append(length)
        states.append(state)
        total += length
        state = int(np.searchsorted(cumulative[state], u_next[k], side="right"))
        state = min(state, len(next_state) - 1)
        k += 1
    length_array = np.array(lengths, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(length_array)[:-1]))
    return starts, length_array, np.array(states, dtype=np.int64)


def _regime_path(
    rng: np.random.Generator,
    n: int,
    mean_bars: list[float],
    next_state: tuple[tuple[float, ...], ...],
    *,
    start: int,
) -> np.ndarray:
    """The state of a semi-Markov chain at each of n bars."""
    _, lengths, states = _regime_segments(rng, n, mean_bars, next_state, start=start)
    return np.repeat(states, lengths)[:n]
