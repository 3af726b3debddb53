"""A slow, obvious pure-Python backtester: the yardstick for the numba kernel.

Written straight from DESIGN.md §9 and the docstrings of engine.simulator, with plain
lists and direct window sums, no running state beyond what the definitions need. If the
kernel and this disagree, one of them is wrong; the tests say which trades differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.params import Params

EXIT = {"tp_hit": 0, "sl_hit": 1, "timeout": 2, "signal_flip": 3, "end_of_data": 4}


def ema(x: list[float], period: int) -> list[float]:
    alpha = 2.0 / (period + 1.0)
    out = [x[0]]
    for v in x[1:]:
        out.append((1.0 - alpha) * out[-1] + alpha * v)
    return out


def atr(high, low, close, period: int) -> list[float]:
    out = [high[0] - low[0]]
    for i in range(1, len(close)):
        tr = max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        out.append((1.0 - 1.0 / period) * out[-1] + (1.0 / period) * tr)
    return out


def window(x, i: int, w: int) -> list[float]:
    """The last w values up to and including i (fewer at the start)."""
    return x[max(0, i - w + 1) : i + 1]


def zscore_at(x, i: int, w: int) -> float:
    if i < w - 1:
        return 0.0
    vals = window(x, i, w)
    mean = sum(vals) / w
    var = sum(v * v for v in vals) / w - mean * mean
    if var <= 1e-18 * (mean * mean + 1.0):
        return 0.0
    return (x[i] - mean) / math.sqrt(var)


def vhf_at(close, i: int, period: int) -> float:
    vals = window(close, i, period)
    moves = sum(abs(close[j] - close[j - 1]) for j in range(max(1, i - period + 1), i + 1))
    return (max(vals) - min(vals)) / moves if moves > 0 else 0.0


def cvd_slope_at(volume, taker_buy, i: int, w: int) -> float:
    return sum(2.0 * taker_buy[j] - volume[j] for j in range(max(0, i - w + 1), i + 1))


def imbalance_at(volume, taker_buy, i: int, w: int) -> float:
    den = sum(window(volume, i, w))
    return cvd_slope_at(volume, taker_buy, i, w) / den if den > 0 else 0.0


def signals(p: Params, high, low, close) -> list[int]:
    """The method's signal at each close: crosses for the EMA methods, breakouts of the prior channel."""
    n = len(close)
    sig = [0] * n
    m = p.method_params
    if p.method in ("ema_crossover", "macd_trend"):
        if p.method == "ema_crossover":
            f, s = ema(close, m["ema_fast"]), ema(close, m["ema_slow"])
            diff = [a - b for a, b in zip(f, s)]
        else:
            line = [a - b for a, b in zip(ema(close, m["macd_fast"]), ema(close, m["macd_slow"]))]
            sigl = ema(line, m["macd_signal"])
            diff = [a - b for a, b in zip(line, sigl)]
        for i in range(1, n):
            if diff[i] > 0 and diff[i - 1] <= 0:
                sig[i] = 1
            elif diff[i] < 0 and diff[i - 1] >= 0:
                sig[i] = -1
    else:
        L = m["breakout_lookback"]
        for i in range(L, n):
            if close[i] > max(high[i - L : i]):
                sig[i] = 1
            elif close[i] < min(low[i - L : i]):
                sig[i] = -1
    return sig


def warmup(p: Params, has_taker: bool) -> int:
    """The first bar at which every indicator in use has its full lookback (engine/methods.py).

    Each term is the first bar where that indicator's lookback lies on complete inputs: a
    window of w bars ending at the bar from w − 1, the prior-L-bar channel from L, an EMA or
    Wilder smoothing of period P from P bars after its input's first complete bar.
    """
    m = p.method_params
    method = {
        # an EMA's crosses stop depending on where the data starts ten periods in (engine/methods.py)
        "ema_crossover": lambda: 10 * m["ema_slow"],  # close is complete from bar 0
        "macd_trend": lambda: 10 * (m["macd_slow"] + m["macd_signal"]),  # the signal EMA's input, the line, from macd_slow
        "trend_breakout": lambda: m["breakout_lookback"],  # high[i - L : i] needs i - L >= 0
    }[p.method]()
    atr_full = 1 + p.atr_period  # a true range needs close[i - 1]: complete from bar 1
    terms = [method, atr_full]
    if p.gate_atrz:
        terms.append(atr_full + p.atr_z_window - 1)  # window(atr, i, w) starts at atr_full
    if p.gate_vhf:
        terms.append(1 + p.vhf_period - 1)  # its moves need close[j - 1]: complete from bar 1
    if p.gate_cvd and has_taker:
        terms.append(p.cvd_window - 1)
    if p.gate_imb and has_taker:
        terms.append(p.imb_window - 1)
    return max(terms)


@dataclass
class RefTrade:
    entry_idx: int
    exit_idx: int
    side: int
    entry: float
    exit: float
    qty: float
    fees: float
    pnl: float
    bars_held: int
    exit_reason: int
    vol_bin: int
    phase: int
    episode: int
    gates: tuple[bool, bool, bool, bool]


def phase_of(i, train_end, val_end) -> int:
    return 0 if i < train_end else (1 if i < val_end else 2)


def episode_bounds(n, train_end, val_end, ep_bars=120) -> list[tuple[int, int, int]]:
    """(start, stop, phase) of every episode: 120-bar blocks restarting at each phase start."""
    out = []
    for ph, (a, b) in enumerate(((0, train_end), (train_end, val_end), (val_end, n))):
        for s in range(a, b, ep_bars):
            out.append((s, min(s + ep_bars, b), ph))
    return out


def episode_of(i, n, train_end, val_end, ep_bars=120) -> int:
    for e, (s, t, _) in enumerate(episode_bounds(n, train_end, val_end, ep_bars)):
        if s <= i < t:
            return e
    raise AssertionError(i)


def run(bars, p: Params, train_end: int, val_end: int, ep_bars: int = 120):
    """Simulate like engine.simulator.simulate; returns (trades, equity, atr_pct, (q1, q2))."""
    o, h, l, c = (list(map(float, a)) for a in (bars.open, bars.high, bars.low, bars.close))
    v = list(map(float, bars.volume))
    has_taker = bars.taker_buy_volume is not None
    tb = list(map(float, bars.taker_buy_volume)) if has_taker else v
    n = len(c)
    a = atr(h, l, c, p.atr_period)
    atr_pct = [a[i] / c[i] for i in range(n)]
    m = train_end if train_end >= 3 else n
    srt = sorted(atr_pct[:m])
    q1, q2 = (srt[m // 3], srt[(2 * m) // 3]) if m >= 3 else (math.inf, math.inf)
    vbin = lambda x: 0 if x < q1 else (1 if x < q2 else 2)  # noqa: E731
    sig = signals(p, h, l, c)
    wu = warmup(p, has_taker)
    fee, slip = p.fee_bps * 1e-4, p.slippage_bps * 1e-4

    trades: list[RefTrade] = []
    equity = []
    realized = 0.0
    pos = None  # dict of the open position
    pending = None  # (side, gates)

    def close_pos(i, price, reason):
        nonlocal realized, pos
        fees = fee * pos["qty"] * (pos["entry"] + price)
        pnl = pos["side"] * pos["qty"] * (price - pos["entry"]) - fees
        trades.append(
            RefTrade(
                pos["idx"], i, pos["side"], pos["entry"], price, pos["qty"], fees, pnl, i - pos["idx"],
                EXIT[reason], vbin(atr_pct[pos["idx"] - 1]), phase_of(i, train_end, val_end),
                episode_of(i, n, train_end, val_end, ep_bars), pos["gates"],
            )
        )
        realized += pnl
        pos = None

    for i in range(n):
        if pending is not None:
            side, gates = pending
            pending = None
            if pos is not None:  # an opposite signal: flip
                close_pos(i, o[i] * (1 - pos["side"] * slip), "signal_flip")
            entry = o[i] * (1 + side * slip)
            qty = p.notional_usd / entry
            pos = {
                "side": side, "entry": entry, "qty": qty, "idx": i, "gates": gates,
                "stop": entry - side * p.atr_stop_mult * a[i - 1],
                "target": entry + side * p.hard_tp_usd / qty,
            }
        if pos is not None:
            side, stop, target = pos["side"], pos["stop"], pos["target"]
            # a level the open is already through fills at the open; else stop before target
            if side == 1:
                through_stop, through_tp = o[i] <= stop, o[i] >= target
                hit_stop, hit_tp = l[i] <= stop, h[i] >= target
            else:
                through_stop, through_tp = o[i] >= stop, o[i] <= target
                hit_stop, hit_tp = h[i] >= stop, l[i] <= target
            if through_stop:
                close_pos(i, o[i] * (1 - side * slip), "sl_hit")
            elif through_tp:
                close_pos(i, o[i] * (1 - side * slip), "tp_hit")
            elif hit_stop:
                close_pos(i, stop * (1 - side * slip), "sl_hit")
            elif hit_tp:
                close_pos(i, target * (1 - side * slip), "tp_hit")
            elif i - pos["idx"] >= p.timeout_bars:
                close_pos(i, c[i] * (1 - side * slip), "timeout")
            elif i == n - 1:
                close_pos(i, c[i] * (1 - side * slip), "end_of_data")
        if pos is not None:
            equity.append(realized + pos["side"] * pos["qty"] * (c[i] - pos["entry"]) - fee * pos["qty"] * pos["entry"])
        else:
            equity.append(realized)
        if wu <= i < n - 1 and sig[i] != 0 and (pos is None or pos["side"] != sig[i]):
            s = sig[i]
            g_cvd = (not has_taker) or s * cvd_slope_at(v, tb, i, p.cvd_window) > 0
            g_imb = (not has_taker) or s * imbalance_at(v, tb, i, p.imb_window) >= p.imb_min
            g_atrz = zscore_at(a, i, p.atr_z_window) >= p.atr_z_min
            g_vhf = vhf_at(c, i, p.vhf_period) >= p.vhf_min
            ok = (
                (g_cvd or not p.gate_cvd)
                and (g_imb or not p.gate_imb)
                and (g_atrz or not p.gate_atrz)
                and (g_vhf or not p.gate_vhf)
            )
            if ok:
                pending = (s, (g_cvd, g_imb, g_atrz, g_vhf))
    return trades, equity, atr_pct, (q1, q2)
