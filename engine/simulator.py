"""The backtest kernel: one numba call simulates a whole micro-backtest window.

Semantics (DESIGN.md §9), in the order the kernel applies them on bar i:

1. A signal accepted at the close of bar i − 1 fills at open[i]: an opposite position is
   closed first (`signal_flip`), then the new one opens. Fills pay slippage
   (long buys at open × (1 + slip), sells at × (1 − slip)); size = notional / fill price.
   Stop = fill ∓ atr_stop_mult × ATR[i − 1] (the ATR known at the signal);
   take-profit price = the price at which unrealized PnL (before fees) is hard_tp_usd.
2. An open position (including one filled at this open) checks its exits: if the open is
   already through the stop or the target, that level fills at the open (a gap); else if
   the bar's range reaches the stop it fills at the stop, even when the target is also in
   range (stop first); else the target. Else, if i − fill bar ≥ timeout_bars it closes at
   close[i] (`timeout`); else on the last bar at close[i] (`end_of_data`).
3. Equity is marked to market at close[i]; entry fees are charged at the fill.
4. The signal at close[i] (from bar `warmup` on, not on the last bar) is accepted if it is
   not the current side and every enabled gate passes for its side at bar i. A position
   stopped on bar i may so re-enter on a signal at bar i's close.

Fees are fee_bps per side on the traded notional. pnl = side × qty × (exit − entry) − fees.
bars_held = exit bar − fill bar. A trade belongs to the episode and phase of its exit bar.

`simulate_sweep` runs many configs over one window in one call, each as `simulate` runs it,
with the metrics of its phases (engine.sweep is its Python face).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.metrics import (
    END_OF_DATA,
    SIGNAL_FLIP,
    SL_HIT,
    TIMEOUT,
    TP_HIT,
    payoff_ratio,
    phase_table,
    score,
)

TRADE_DTYPE = np.dtype(
    [
        ("entry_idx", np.int64),  # fill bar (its open)
        ("exit_idx", np.int64),  # exit bar
        ("side", np.int8),  # +1 long, −1 short
        ("entry", np.float64),  # fill price, slippage included
        ("exit", np.float64),
        ("qty", np.float64),  # base units
        ("fees", np.float64),  # USD, both sides
        ("pnl", np.float64),  # USD after fees
        ("bars_held", np.int64),
        ("exit_reason", np.int8),  # index into metrics.EXIT_REASONS
        ("vol_bin", np.int8),  # index into metrics.VOL_BINS, at the signal bar
        ("phase", np.int8),  # index into metrics.PHASES, of the exit bar
        ("episode", np.int64),  # episode id of the exit bar
        ("gate_cvd", np.bool_),  # each gate as evaluated at the signal bar, enabled or not
        ("gate_imb", np.bool_),
        ("gate_atrz", np.bool_),
        ("gate_vhf", np.bool_),
        ("stop", np.float64),
        ("target", np.float64),
        ("atr", np.float64),  # ATR used for the stop
    ]
)

EPISODE_DTYPE = np.dtype(
    [
        ("episode", np.int64),
        ("start", np.int64),  # first bar
        ("stop", np.int64),  # one past the last bar
        ("phase", np.int8),
        ("n_trades", np.int64),
        ("wins", np.int64),
        ("hit", np.float64),
        ("payoff", np.float64),
        ("total_pnl", np.float64),
        ("maxdd", np.float64),
        ("blunders", np.int64),
        ("score", np.float64),
        ("vol_regime", np.int8),
    ]
)

# Layout of the kernel's parameter vectors (built by engine.backtest from Params).
F_STOP_MULT, F_TP_USD, F_Z_MIN, F_IMB_MIN, F_VHF_MIN, F_FEE_BPS, F_SLIP_BPS, F_NOTIONAL = range(8)
N_FLOAT = 8
(
    I_ATR_PERIOD,
    I_TIMEOUT,
    I_Z_WINDOW,
    I_CVD_WINDOW,
    I_IMB_WINDOW,
    I_VHF_PERIOD,
    I_GATE_CVD,
    I_GATE_IMB,
    I_GATE_ATRZ,
    I_GATE_VHF,
    I_WARMUP,
    I_TRAIN_END,
    I_VAL_END,
    I_EPISODE_BARS,
    I_BLUNDER_BARS,
    I_HAS_TAKER,
) = range(16)
N_INT = 16


# vol_terciles ranks ATR% through a histogram keyed on the top bits of each value's float64
# representation, which order like the values for x ≥ 0 (ATR% always is): 7 mantissa bits
# give 128 keys per binade, neighbours 0.8 % apart, from 2^-24 up to 1. Values outside that
# range share the end keys, which keeps the ranking exact, only slower, should a tercile
# ever fall there.
PCT_KEY_SHIFT = 45
PCT_KEY_MIN = (1023 - 24) << 7  # the key of 2^-24
PCT_KEYS = 24 * 128 + 1


@njit(cache=True, error_model="numpy")
def vol_terciles(atr_pct: np.ndarray, stop: int):
    """(q1, q2): the order statistics at m//3 and 2m//3 of atr_pct[:stop] (all bars if stop < 3).

    Exact, in O(m): a histogram of the keys finds the key holding each order statistic, and
    only that key's values are sorted. (A quickselect mispredicts its way through smooth
    series like ATR%, three times slower.)
    """
    n = atr_pct.shape[0]
    m = min(stop, n) if stop >= 3 else n
    if m < 3:
        return np.inf, np.inf
    x = np.ascontiguousarray(atr_pct)
    bits = x.view(np.int64)
    keys = np.empty(m, np.int32)
    kmin = PCT_KEYS
    kmax = 0
    for j in range(m):  # vectorizes
        key = (bits[j] >> PCT_KEY_SHIFT) - PCT_KEY_MIN
        key = 0 if key < 0 else (PCT_KEYS - 1 if key > PCT_KEYS - 1 else key)
        keys[j] = key
        kmin = key if key < kmin else kmin
        kmax = key if key > kmax else kmax
    hist = np.zeros(kmax - kmin + 1, np.int64)
    for j in range(m):
        hist[np.uint32(keys[j] - kmin)] += 1  # an unsigned index skips the wrap-around code
    k1 = m // 3
    k2 = (2 * m) // 3
    below = 0
    b = 0
    while below + hist[b] <= k1:
        below += hist[b]
        b += 1
    key1, rank1 = b + kmin, k1 - below
    while below + hist[b] <= k2:
        below += hist[b]
        b += 1
    key2, rank2 = b + kmin, k2 - below
    # the two keys' values side by side (the branches are rarely taken, so well predicted),
    # each group then sorted by insertion: a key holds a handful of values
    n1 = hist[key1 - kmin]
    n2 = hist[key2 - kmin]
    cand = np.empty(n1 + n2)
    c1 = 0
    c2 = n1
    for j in range(m):
        if keys[j] == key1:
            cand[c1] = x[j]
            c1 += 1
        if keys[j] == key2:
            cand[c2] = x[j]
            c2 += 1
    for first, stop_ in ((0, n1), (n1, n1 + n2)):
        for t in range(first + 1, stop_):
            v = cand[t]
            u = t - 1
            while u >= first and cand[u] > v:
                cand[u + 1] = cand[u]
                u -= 1
            cand[u + 1] = v
    return cand[rank1], cand[n1 + rank2]


@njit(cache=True, error_model="numpy", inline="always")
def _bin(x: float, q1: float, q2: float) -> np.int8:
    if x < q1:
        return np.int8(0)
    if x < q2:
        return np.int8(1)
    return np.int8(2)


@njit(cache=True, error_model="numpy", inline="always")
def _episode_of(i: int, train_end: int, val_end: int, ep_bars: int) -> int:
    # episodes restart at each phase boundary, so no episode straddles two phases
    if i < train_end:
        return i // ep_bars
    n_train = (train_end + ep_bars - 1) // ep_bars
    if i < val_end:
        return n_train + (i - train_end) // ep_bars
    n_val = (val_end - train_end + ep_bars - 1) // ep_bars
    return n_train + n_val + (i - val_end) // ep_bars


@njit(cache=True, error_model="numpy", inline="always")
def _zscore(x: float, s: float, s2: float, window: int) -> float:
    """(x − mean) / population sd from the window's Σx and Σx², as zscore in tests/indicators.py; 0 when flat."""
    mean = s / window
    var = s2 / window - mean * mean
    if var > 1e-18 * (mean * mean + 1.0):
        return (x - mean) / np.sqrt(var)
    return 0.0


# Bits of the four gate values carried from a signal to its trade record.
GATE_CVD, GATE_IMB, GATE_ATRZ, GATE_VHF = 1, 2, 4, 8


@njit(cache=True, error_model="numpy", inline="always")
def _write_trade(
    t, entry_idx, exit_idx, side, entry, exit_px, qty, fee, reason, gates, stop, target, entry_atr, phase, episode
):
    """Fill one TRADE_DTYPE record (all but vol_bin); returns its pnl (USD after fees)."""
    fees = fee * qty * (entry + exit_px)
    pnl = side * qty * (exit_px - entry) - fees
    t.entry_idx = entry_idx
    t.exit_idx = exit_idx
    t.side = side
    t.entry = entry
    t.exit = exit_px
    t.qty = qty
    t.fees = fees
    t.pnl = pnl
    t.bars_held = exit_idx - entry_idx
    t.exit_reason = reason
    t.phase = phase
    t.episode = episode
    t.gate_cvd = (gates & GATE_CVD) != 0
    t.gate_imb = (gates & GATE_IMB) != 0
    t.gate_atrz = (gates & GATE_ATRZ) != 0
    t.gate_vhf = (gates & GATE_VHF) != 0
    t.stop = stop
    t.target = target
    t.atr = entry_atr
    return pnl


@njit(cache=True, error_model="numpy")
def simulate(open_, high, low, close, volume, taker_buy, signal, fp, ip):
    """Run one window: returns (trades TRADE_DTYPE, equity float64[n] USD, episodes EPISODE_DTYPE)."""
    equity = np.empty(close.shape[0])
    trades, episodes = simulate_into(open_, high, low, close, volume, taker_buy, signal, fp, ip, equity)
    return trades, equity, episodes


@njit(cache=True, error_model="numpy")
def simulate_into(open_, high, low, close, volume, taker_buy, signal, fp, ip, equity):
    """`simulate`, writing the equity into `equity` (float64[n]): returns (trades, episodes).

    Indicators are updated in the same pass as the trading loop (running sums, so the
    independent recurrences overlap in the CPU); gate values are only evaluated on bars
    with a signal. They equal the array functions of tests/indicators.py at every bar.

    The loop is bound by how many instructions a bar takes, not by any one dependency chain,
    so it is kept lean: no branch per window sum (see the lagged views below), no helper
    taking arrays on the per-bar path (numba would add reference counting calls there), and
    a flat bar skips the drawdown update, which cannot move while equity stands still.
    """
    n = close.shape[0]
    atr_period = ip[I_ATR_PERIOD]
    period_z = ip[I_Z_WINDOW]
    vhf_period = ip[I_VHF_PERIOD]
    cvd_window = ip[I_CVD_WINDOW]
    imb_window = ip[I_IMB_WINDOW]
    train_end = ip[I_TRAIN_END]
    val_end = ip[I_VAL_END]
    ep_bars = ip[I_EPISODE_BARS]
    timeout = ip[I_TIMEOUT]
    warmup = ip[I_WARMUP]
    has_taker = ip[I_HAS_TAKER] == 1
    use_cvd = ip[I_GATE_CVD] == 1
    use_imb = ip[I_GATE_IMB] == 1
    use_atrz = ip[I_GATE_ATRZ] == 1
    use_vhf = ip[I_GATE_VHF] == 1
    no_taker = not has_taker
    skip_cvd = not use_cvd
    skip_imb = not use_imb
    mult = fp[F_STOP_MULT]
    tp_usd = fp[F_TP_USD]
    fee = fp[F_FEE_BPS] * 1e-4
    slip = fp[F_SLIP_BPS] * 1e-4
    notional = fp[F_NOTIONAL]
    z_min = fp[F_Z_MIN]
    imb_min = fp[F_IMB_MIN]
    vhf_min = fp[F_VHF_MIN]

    # Each running window sum reads the value leaving its window through a view that lags
    # the current one by the window and starts on zeros: x − 0.0 = x exactly, so the first
    # bars need no branch, and every index is the loop's own (no wrap-around arithmetic).
    atr_pad = np.empty(n + period_z)
    atr_pad[:period_z] = 0.0
    atr_ = atr_pad[period_z:]
    atr_leaving = atr_pad[:n]
    atr_pct = np.empty(n)
    move_pad = np.empty(n + vhf_period)
    move_pad[:vhf_period] = 0.0
    moves = move_pad[vhf_period:]
    move_leaving = move_pad[:n]
    lag = max(cvd_window, imb_window)
    delta_pad = np.empty(n + lag)  # volume delta, 2 × taker_buy − volume
    delta_pad[:lag] = 0.0
    deltas = delta_pad[lag:]
    cvd_leaving = delta_pad[lag - cvd_window : lag - cvd_window + n]
    imb_leaving = delta_pad[lag - imb_window : lag - imb_window + n]
    vol_pad = np.empty(n + imb_window)
    vol_pad[:imb_window] = 0.0
    vols = vol_pad[imb_window:]
    vol_leaving = vol_pad[:n]
    # a trade opens on a signal from warm-up to the bar before the last
    n_signals = 0
    for i in range(min(warmup, n), n - 1):
        n_signals += signal[i] != 0
    trades = np.empty(n_signals, dtype=TRADE_DTYPE)
    k = 0
    realized = 0.0
    pos = 0
    entry = 0.0
    qty = 0.0
    stop = 0.0
    target = 0.0
    entry_atr = 0.0
    entry_idx = -1
    gates = 0  # GATE_* bits of the open position
    pending = 0
    pending_gates = 0

    # running indicator state (see tests/indicators.py for the array forms)
    atr_beta = 1.0 - 1.0 / atr_period
    atr_alpha = 1.0 / atr_period
    acc = 0.0
    zs = 0.0
    zs2 = 0.0
    path = 0.0
    cvd_sum = 0.0
    imb_sum = 0.0
    vol_sum = 0.0

    # per-episode drawdown (metrics.max_drawdown, tracked in the loop) and ATR% sums
    episodes = _episode_table(n, train_end, val_end, ep_bars)
    ep_maxdd = np.zeros(episodes.shape[0])
    ep_vol = np.zeros(episodes.shape[0])
    ep = 0
    ep_stop = episodes[0].stop if episodes.shape[0] > 0 else -1
    phase = episodes[0].phase if episodes.shape[0] > 0 else 0  # of the episode, for trades closing in it
    peak = 0.0
    worst = 0.0
    vol_acc = 0.0

    for i in range(n):
        # ---- indicators at the close of bar i (used by the signal step below)
        h = high[i]
        lo_ = low[i]
        c = close[i]
        if i == 0:
            acc = h - lo_
        else:
            pc = close[i - 1]
            tr = h - lo_
            up = abs(h - pc)
            down = abs(lo_ - pc)
            if up > tr:
                tr = up
            if down > tr:
                tr = down
            acc = atr_beta * acc + atr_alpha * tr
        # running sums add the difference (new − leaving), one addition per bar on each chain;
        # the same arithmetic as tests/indicators.py, so the values match bit for bit
        move = abs(c - close[i - 1]) if i > 0 else 0.0
        moves[i] = move
        path += move - move_leaving[i]
        atr_[i] = acc
        atr_pct[i] = acc / c
        old = atr_leaving[i]
        zs += acc - old
        zs2 += acc * acc - old * old
        if has_taker:
            v = volume[i]
            d = 2.0 * taker_buy[i] - v
            deltas[i] = d
            vols[i] = v
            cvd_sum += d - cvd_leaving[i]
            imb_sum += d - imb_leaving[i]
            vol_sum += v - vol_leaving[i]

        # ---- a signal accepted at the previous close fills at this open
        if pending != 0:
            px = open_[i]
            if pos != 0:
                realized += _write_trade(
                    trades[k], entry_idx, i, pos, entry, px * (1.0 - pos * slip), qty, fee,
                    SIGNAL_FLIP, gates, stop, target, entry_atr, phase, ep,
                )
                k += 1
            pos = pending
            pending = 0
            entry = px * (1.0 + pos * slip)
            qty = notional / entry
            entry_atr = atr_[i - 1]
            stop = entry - pos * mult * entry_atr
            target = entry + pos * tp_usd / qty
            entry_idx = i
            gates = pending_gates

        # ---- exits on this bar
        if pos != 0:
            reason = -1
            exit_px = 0.0
            o = open_[i]
            if pos == 1:
                if o <= stop:
                    reason, exit_px = SL_HIT, o
                elif o >= target:
                    reason, exit_px = TP_HIT, o
                elif lo_ <= stop:
                    reason, exit_px = SL_HIT, stop
                elif h >= target:
                    reason, exit_px = TP_HIT, target
            else:
                if o >= stop:
                    reason, exit_px = SL_HIT, o
                elif o <= target:
                    reason, exit_px = TP_HIT, o
                elif h >= stop:
                    reason, exit_px = SL_HIT, stop
                elif lo_ <= target:
                    reason, exit_px = TP_HIT, target
            if reason < 0 and i - entry_idx >= timeout:
                reason, exit_px = TIMEOUT, c
            if reason < 0 and i == n - 1:
                reason, exit_px = END_OF_DATA, c
            if reason >= 0:
                realized += _write_trade(
                    trades[k], entry_idx, i, pos, entry, exit_px * (1.0 - pos * slip), qty, fee,
                    reason, gates, stop, target, entry_atr, phase, ep,
                )
                k += 1
                pos = 0
            eq = realized + pos * qty * (c - entry) - fee * qty * entry if pos != 0 else realized
            peak = eq if eq > peak else peak
            dd = eq - peak
            worst = dd if dd < worst else worst
        else:
            # flat all bar: equity stands where the last exit left it, so peak and drawdown
            # cannot move either (also right after an episode boundary, where peak = eq)
            eq = realized
        equity[i] = eq
        vol_acc += atr_pct[i]
        if i + 1 == ep_stop:
            ep_maxdd[ep] = worst
            ep_vol[ep] = vol_acc
            ep += 1
            if ep < episodes.shape[0]:
                ep_stop = episodes[ep].stop
                phase = episodes[ep].phase
            peak = eq  # the next episode's peak starts at the equity before it
            worst = 0.0
            vol_acc = 0.0

        # ---- the signal at this close: its gates, cheapest first, stopping at the first
        # enabled gate that fails (a rejected signal's values are never recorded). Written out
        # here rather than in a helper: an inlined helper taking arrays would add reference
        # counting calls, and with them spills of every live register, on each signal bar.
        s = signal[i]
        if s != 0:
            if s != pos and i >= warmup and i < n - 1:
                # bitwise, not short-circuit: one branch for both volume gates
                g_cvd = no_taker | (s * cvd_sum > 0.0)
                imb = imb_sum / vol_sum if has_taker and vol_sum > 0.0 else 0.0
                g_imb = no_taker | (s * imb >= imb_min)
                if (g_cvd | skip_cvd) & (g_imb | skip_imb):
                    z = _zscore(acc, zs, zs2, period_z) if i >= period_z - 1 else 0.0
                    g_atrz = z >= z_min
                    if g_atrz or not use_atrz:
                        hi = c
                        lo = c
                        for j in range(max(0, i - vhf_period + 1), i):
                            cj = close[j]
                            hi = cj if cj > hi else hi
                            lo = cj if cj < lo else lo
                        trend = (hi - lo) / path if path > 0.0 else 0.0
                        g_vhf = trend >= vhf_min
                        if g_vhf or not use_vhf:
                            pending = s
                            pending_gates = (
                                GATE_CVD * g_cvd + GATE_IMB * g_imb + GATE_ATRZ * g_atrz + GATE_VHF * g_vhf
                            )

    # vol bins need the terciles of the whole train part
    q1, q2 = vol_terciles(atr_pct, train_end)
    trades = trades[:k].copy()
    for j in range(k):
        t = trades[j]
        t.vol_bin = _bin(atr_pct[t.entry_idx - 1], q1, q2)  # at the signal bar, the one before the fill
    _score_episodes(episodes, trades, ep_maxdd, ep_vol, q1, q2, ip[I_BLUNDER_BARS], notional)
    return trades, episodes


@njit(cache=True, error_model="numpy")
def simulate_sweep(open_, high, low, close, volume, taker_buy, signals, signal_of, fp, ip, periods_per_year,
                   trades, offsets, equity, episodes, tables):
    """`simulate` every config k — signal signals[signal_of[k]], vectors fp[k] and ip[k] — over the same bars,
    with its engine.metrics.phase_table (the phases of ip[k]; periods_per_year: YEAR_MS / interval_ms), into
    arrays the caller made (numpy's allocator asks for huge pages, numba's does not, and the page faults
    of a large output cost more than its metrics):

    every config's trades one after the other into `trades` (room for every signal its kernel may
    accept), config k's being trades[offsets[k]:offsets[k + 1]]; its equity (USD) into equity[k], or
    into equity[0] for each config in turn when equity has one row; episodes[k, episode] (every
    config with the phases `episodes` was shaped for); tables[k, phase, metric], unless `tables` has no
    rows (only the trades are wanted: engine.sweep.run_sweep's `metrics`).
    """
    n_cfg = fp.shape[0]
    keep = equity.shape[0] == n_cfg
    offsets[0] = 0
    for k in range(n_cfg):
        curve = equity[k] if keep else equity[0]
        mine, eps = simulate_into(open_, high, low, close, volume, taker_buy, signals[signal_of[k]], fp[k], ip[k],
                                  curve)
        # copied element by element: an array assignment checks shapes with a message numba compiles
        # string formatting for, seconds of a cold start
        for e in range(eps.shape[0]):
            episodes[k, e] = eps[e]
        if offsets[k] + mine.shape[0] > trades.shape[0]:
            raise ValueError("simulate_sweep: no room left for a config's trades")
        for j in range(mine.shape[0]):
            trades[offsets[k] + j] = mine[j]
        offsets[k + 1] = offsets[k] + mine.shape[0]
        if tables.shape[0] == 0:
            continue
        table = phase_table(mine, curve, ip[k, I_TRAIN_END], ip[k, I_VAL_END], fp[k, F_NOTIONAL],
                            periods_per_year, ip[k, I_BLUNDER_BARS])
        for ph in range(table.shape[0]):
            for m in range(table.shape[1]):
                tables[k, ph, m] = table[ph, m]


def episode_count(n: int, train_end: int, val_end: int, ep_bars: int) -> int:
    """How many episodes a window of n bars has (the rows of `simulate`'s episodes), as _episode_table counts
    them (in Python: a kernel of its own would be one more to compile on a cold start)."""
    return _episode_of.py_func(n - 1, train_end, val_end, ep_bars) + 1 if n > 0 else 0


@njit(cache=True, error_model="numpy")
def _episode_table(n, train_end, val_end, ep_bars):
    """Episodes with id, start, stop and phase filled in: blocks of ep_bars restarting per phase."""
    n_ep = _episode_of(n - 1, train_end, val_end, ep_bars) + 1 if n > 0 else 0
    eps = np.zeros(n_ep, dtype=EPISODE_DTYPE)
    bounds = np.array([0, min(train_end, n), min(val_end, n), n])
    e = 0
    for ph in range(3):
        for start in range(bounds[ph], bounds[ph + 1], ep_bars):
            eps[e].episode = e
            eps[e].start = start
            eps[e].stop = min(start + ep_bars, bounds[ph + 1])
            eps[e].phase = ph
            e += 1
    return eps


@njit(cache=True, error_model="numpy")
def _score_episodes(eps, trades, ep_maxdd, ep_vol, q1, q2, blunder_bars, notional):
    """Fill each episode's trade statistics and score from its trades and the loop's drawdowns."""
    n_ep = eps.shape[0]
    sum_win = np.zeros(n_ep)
    sum_loss = np.zeros(n_ep)
    losses = np.zeros(n_ep, np.int64)
    for j in range(trades.shape[0]):
        e = trades[j].episode
        pnl = trades[j].pnl
        eps[e].n_trades += 1
        eps[e].total_pnl += pnl
        if pnl > 0.0:
            eps[e].wins += 1
            sum_win[e] += pnl
        elif pnl < 0.0:
            losses[e] += 1
            sum_loss[e] += pnl
        if trades[j].exit_reason == SL_HIT and trades[j].bars_held < blunder_bars:
            eps[e].blunders += 1
    for e in range(n_ep):
        ep = eps[e]
        nt = ep.n_trades
        ep.hit = ep.wins / nt if nt > 0 else 0.0
        ep.payoff = payoff_ratio(ep.wins, sum_win[e], losses[e], sum_loss[e])
        ep.maxdd = ep_maxdd[e]
        ep.score = score(nt, ep.hit, ep.payoff, ep.maxdd, ep.blunders, notional)
        ep.vol_regime = _bin(ep_vol[e] / (ep.stop - ep.start), q1, q2)
