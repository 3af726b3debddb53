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
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.metrics import END_OF_DATA, SIGNAL_FLIP, SL_HIT, TIMEOUT, TP_HIT, payoff_ratio, score

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



# Bits of a signal's gate values in the kernel (a trade unpacks them into its gate_* fields).
GATE_CVD, GATE_IMB, GATE_ATRZ, GATE_VHF = 1, 2, 4, 8


@njit(cache=True, error_model="numpy")
def vol_terciles(atr_pct: np.ndarray, stop: int):
    """(q1, q2): the order statistics at m//3 and 2m//3 of atr_pct[:stop] (all bars if stop < 3)."""
    m = stop if stop >= 3 else atr_pct.shape[0]
    if m < 3:
        return np.inf, np.inf
    lo = atr_pct[0]
    hi = atr_pct[0]
    for j in range(1, m):
        v = atr_pct[j]
        lo = v if v < lo else lo
        hi = v if v > hi else hi
    return _terciles_between(atr_pct, m, lo, hi)


@njit(cache=True, error_model="numpy")
def _terciles_between(x, m, lo, hi):
    """vol_terciles of x[:m] (m ≥ 3) whose min and max are lo and hi.

    Exact, in O(m) without data-dependent branching: a 512-bin histogram between lo and hi
    finds the bin of each order statistic, and only that bin's values are sorted.
    (A quickselect mispredicts its way through smooth series like ATR%, three times slower.)
    """
    n_bins = 512
    scale = (n_bins - 1) / (hi - lo) if hi > lo else 0.0
    bins = np.empty(m, np.int64)
    for j in range(m):
        bins[j] = int((x[j] - lo) * scale)
    # four interleaved counters per bin: a smooth series lands runs of values in one bin, and a
    # single counter would make each increment wait for the store of the one before
    hist = np.zeros((4, n_bins + 1), np.int64)
    m4 = m - m % 4
    for j in range(0, m4, 4):
        hist[0, bins[j]] += 1
        hist[1, bins[j + 1]] += 1
        hist[2, bins[j + 2]] += 1
        hist[3, bins[j + 3]] += 1
    for j in range(m4, m):
        hist[0, bins[j]] += 1
    out = np.empty(2)
    for r in range(2):
        k = m // 3 if r == 0 else (2 * m) // 3
        below = 0
        b = 0
        while True:
            count = hist[0, b] + hist[1, b] + hist[2, b] + hist[3, b]
            if below + count > k:
                break
            below += count
            b += 1
        cand = np.empty(count)
        c = 0
        for j in range(m):
            if bins[j] == b:
                cand[c] = x[j]
                c += 1
        cand.sort()
        out[r] = cand[k - below]
    return out[0], out[1]


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


@njit(cache=True, error_model="numpy")
def _atr_by_episode(high, low, close, period, episodes, train_end):
    """(ATR, ATR% per bar, ATR% sum per episode, min and max of ATR% over the bars vol_terciles ranks).

    The ATR recurrence is one multiply-add chain per bar; the division and the per-episode
    sums and extremes ride along in its shadow. Equal to engine.indicators.atr bit for bit.
    """
    n = close.shape[0]
    n_ep = episodes.shape[0]
    atr_ = np.empty(n)
    atr_pct = np.empty(n)
    ep_vol = np.empty(n_ep)
    beta = 1.0 - 1.0 / period
    alpha = 1.0 / period
    acc = high[0] - low[0]
    lo = acc / close[0]
    hi = lo
    train_lo = lo
    train_hi = hi
    for e in range(n_ep):
        start = episodes[e].start
        stop = episodes[e].stop
        vol_acc = 0.0
        if start == 0:  # the first bar seeds the recurrence
            atr_[0] = acc
            atr_pct[0] = lo
            vol_acc += lo
            start = 1
        for i in range(start, stop):
            h = high[i]
            lo_ = low[i]
            pc = close[i - 1]
            tr = h - lo_
            up = abs(h - pc)
            down = abs(lo_ - pc)
            if up > tr:
                tr = up
            if down > tr:
                tr = down
            acc = beta * acc + alpha * tr
            pct = acc / close[i]
            atr_[i] = acc
            atr_pct[i] = pct
            vol_acc += pct
            lo = pct if pct < lo else lo
            hi = pct if pct > hi else hi
        ep_vol[e] = vol_acc
        if stop <= train_end:  # train episodes come first: the extremes so far are the train part's
            train_lo = lo
            train_hi = hi
    if train_end < 3:  # vol_terciles ranks all bars then
        return atr_, atr_pct, ep_vol, lo, hi
    return atr_, atr_pct, ep_vol, train_lo, train_hi


@njit(cache=True, error_model="numpy")
def _accept_signals(close, volume, taker_buy, signal, atr_, fp, ip, side, gates):
    """Mark the signals that every enabled gate lets through: side[i] = signal[i] and gates[i] =
    its four gate values as GATE_* bits, for bars from warm-up to the one before the last.
    Returns how many.

    The gate inputs are running sums over all bars that add the difference (new − leaving),
    the arithmetic of engine.indicators, so they equal its arrays bit for bit. Gates are
    evaluated only at signal bars, cheapest first, stopping at the first enabled gate that
    fails: a rejected signal's gate values are never recorded.
    """
    n = close.shape[0]
    period_z = ip[I_Z_WINDOW]
    vhf_period = ip[I_VHF_PERIOD]
    cvd_window = ip[I_CVD_WINDOW]
    imb_window = ip[I_IMB_WINDOW]
    warmup = ip[I_WARMUP]
    has_taker = ip[I_HAS_TAKER] == 1
    use_cvd = ip[I_GATE_CVD] == 1
    use_imb = ip[I_GATE_IMB] == 1
    use_atrz = ip[I_GATE_ATRZ] == 1
    use_vhf = ip[I_GATE_VHF] == 1
    z_min = fp[F_Z_MIN]
    imb_min = fp[F_IMB_MIN]
    vhf_min = fp[F_VHF_MIN]
    zs = 0.0
    zs2 = 0.0
    path = 0.0
    cvd_sum = 0.0
    imb_sum = 0.0
    vol_sum = 0.0
    accepted = 0
    for i in range(n - 1):  # a signal at the last close opens nothing
        acc = atr_[i]
        c = close[i]
        move = abs(c - close[i - 1]) if i > 0 else 0.0
        if i >= vhf_period:
            leaving = i - vhf_period
            path += move - (abs(close[leaving] - close[leaving - 1]) if leaving > 0 else 0.0)
        else:
            path += move
        if i >= period_z:
            old = atr_[i - period_z]
            zs += acc - old
            zs2 += acc * acc - old * old
        else:
            zs += acc
            zs2 += acc * acc
        if has_taker:
            d = 2.0 * taker_buy[i] - volume[i]
            if i >= cvd_window:
                cvd_sum += d - (2.0 * taker_buy[i - cvd_window] - volume[i - cvd_window])
            else:
                cvd_sum += d
            if i >= imb_window:
                j = i - imb_window
                imb_sum += d - (2.0 * taker_buy[j] - volume[j])
                vol_sum += volume[i] - volume[j]
            else:
                imb_sum += d
                vol_sum += volume[i]

        s = signal[i]
        if s == 0 or i < warmup:
            continue
        g_cvd = (not has_taker) or s * cvd_sum > 0.0
        imb = imb_sum / vol_sum if has_taker and vol_sum > 0.0 else 0.0
        g_imb = (not has_taker) or s * imb >= imb_min
        if (use_cvd and not g_cvd) or (use_imb and not g_imb):
            continue
        z = 0.0
        if i >= period_z - 1:
            mean = zs / period_z
            var = zs2 / period_z - mean * mean
            if var > 1e-18 * (mean * mean + 1.0):
                z = (acc - mean) / np.sqrt(var)
        g_atrz = z >= z_min
        if use_atrz and not g_atrz:
            continue
        # VHF: the close's range over the period (a short scan, only for signals that got here)
        hi = c
        lo = c
        for j in range(max(0, i - vhf_period + 1), i):
            cj = close[j]
            hi = cj if cj > hi else hi
            lo = cj if cj < lo else lo
        trend = (hi - lo) / path if path > 0.0 else 0.0
        g_vhf = trend >= vhf_min
        if use_vhf and not g_vhf:
            continue
        side[i] = s
        gates[i] = GATE_CVD * g_cvd + GATE_IMB * g_imb + GATE_ATRZ * g_atrz + GATE_VHF * g_vhf
        accepted += 1
    return accepted


@njit(cache=True, error_model="numpy", inline="always")
def _write_trade(t, entry_idx, exit_idx, side, entry, exit_px, qty, fee, reason, gates, stop, target, entry_atr):
    """Fill one TRADE_DTYPE record's fill, exit and gate fields; returns its pnl (USD after fees)."""
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
    """Run one window: returns (trades TRADE_DTYPE, equity float64[n] USD, episodes EPISODE_DTYPE).

    Three passes: the ATR, the gates at each signal bar (only those a trade can come from),
    then the trading loop below, which touches only prices, ATR and the accepted signals.
    Indicator values equal engine.indicators' array functions at every bar.
    """
    n = close.shape[0]
    timeout = ip[I_TIMEOUT]
    train_end = ip[I_TRAIN_END]
    ep_bars = ip[I_EPISODE_BARS]
    mult = fp[F_STOP_MULT]
    tp_usd = fp[F_TP_USD]
    fee = fp[F_FEE_BPS] * 1e-4
    slip = fp[F_SLIP_BPS] * 1e-4
    notional = fp[F_NOTIONAL]

    episodes = _episode_table(n, train_end, ip[I_VAL_END], ep_bars)
    equity = np.empty(n)
    if n == 0:
        return np.empty(0, TRADE_DTYPE), equity, episodes
    n_ep = episodes.shape[0]
    atr_, atr_pct, ep_vol, lo, hi = _atr_by_episode(high, low, close, ip[I_ATR_PERIOD], episodes, train_end)
    m = train_end if train_end >= 3 else n
    q1, q2 = _terciles_between(atr_pct, min(m, n), lo, hi) if m >= 3 else (np.inf, np.inf)
    entry_side = np.zeros(n, np.int8)
    entry_gates = np.zeros(n, np.int8)
    n_accepted = _accept_signals(close, volume, taker_buy, signal, atr_, fp, ip, entry_side, entry_gates)

    trades = np.empty(n_accepted, dtype=TRADE_DTYPE)  # every trade opens on an accepted signal
    ep_maxdd = np.empty(n_ep)
    k = 0
    realized = 0.0
    pos = 0
    entry = 0.0
    qty = 0.0
    stop = 0.0
    target = 0.0
    entry_atr = 0.0
    entry_idx = -1
    gates = 0  # of the open position
    pending = 0
    pending_gates = 0
    peak = 0.0  # per-episode drawdown, metrics.max_drawdown tracked in the loop
    eq = 0.0
    for e in range(n_ep):
        phase = episodes[e].phase
        worst = 0.0
        for i in range(episodes[e].start, episodes[e].stop):
            h = high[i]
            lo_ = low[i]
            c = close[i]
            # ---- a signal accepted at the previous close fills at this open
            if pending != 0:
                px = open_[i]
                if pos != 0:
                    t = trades[k]
                    realized += _write_trade(
                        t, entry_idx, i, pos, entry, px * (1.0 - pos * slip), qty, fee,
                        SIGNAL_FLIP, gates, stop, target, entry_atr,
                    )
                    t.vol_bin = _bin(atr_pct[entry_idx - 1], q1, q2)
                    t.phase = phase
                    t.episode = e
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
                    t = trades[k]
                    realized += _write_trade(
                        t, entry_idx, i, pos, entry, exit_px * (1.0 - pos * slip), qty, fee,
                        reason, gates, stop, target, entry_atr,
                    )
                    t.vol_bin = _bin(atr_pct[entry_idx - 1], q1, q2)
                    t.phase = phase
                    t.episode = e
                    k += 1
                    pos = 0

            eq = realized + pos * qty * (c - entry) - fee * qty * entry if pos != 0 else realized
            equity[i] = eq
            peak = eq if eq > peak else peak
            dd = eq - peak
            worst = dd if dd < worst else worst

            # ---- the signal at this close (gates already passed)
            s = entry_side[i]
            if s != 0 and s != pos:
                pending = s
                pending_gates = entry_gates[i]
        ep_maxdd[e] = worst
        peak = eq  # the next episode's peak starts at the equity before it

    trades = trades[:k].copy()
    _score_episodes(episodes, trades, ep_maxdd, ep_vol, q1, q2, ip[I_BLUNDER_BARS], notional)
    return trades, equity, episodes


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
