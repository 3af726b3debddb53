"""A strategy's signal function checked for look-ahead and for dependence on where its data starts.

The classic look-ahead mistakes are each caught with the bar that changed named; honest
functions, in pandas and the built-in numba methods, pass. Every finding is checked against a
rerun of the signal on the altered bars: the bar it names is the first one that changed.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from engine import Bars, Params, registered, synthetic_bars, warmup_bars
from engine.strategy_check import (
    DEFAULT_CUTS,
    DEFAULT_DRAWS,
    Finding,
    SignalError,
    _mirrored_after,
    check_lookahead,
    check_recursion,
    check_signal_shape,
    draw_param_sets,
)

BARS = synthetic_bars(6000, seed=11)  # about three weeks of 5-minute bars
HOUR_MS = 3_600_000


def frame(bars: Bars) -> pd.DataFrame:
    """The bars as a strategy author would use them: a DataFrame indexed by open time (UTC)."""
    columns = {name: getattr(bars, name) for name in ("open", "high", "low", "close", "volume")}
    return pd.DataFrame(columns, index=pd.to_datetime(bars.ts, unit="ms", utc=True))


def sides(long: pd.Series, short: pd.Series) -> np.ndarray:
    return np.where(long, 1, np.where(short, -1, 0)).astype(np.int8)


# ------------------------------------------------------------------ look-ahead, the classic forms


def next_close_peek(bars, params):
    """Long when the NEXT bar closes higher: shift(-1) reads the future."""
    close = frame(bars).close
    following = close.shift(-1)
    return sides(following > close, following < close)


def centred_mean(bars, params):
    """Price against a centred rolling mean: the window reaches window // 2 bars ahead."""
    close = frame(bars).close
    mean = close.rolling(params["window"], center=True).mean()
    return sides(close > mean, close < mean)


def share_of_series_high(bars, params):
    """Price as a share of the whole series' high: the high may come later."""
    close = frame(bars).close
    share = close / close.max()
    return sides(share > 0.98, share < 0.95)


def hour_close_forward_filled(bars, params):
    """The hour's LAST close, resampled to 1h and forward-filled onto the hour's 5-minute bars:
    every bar but the hour's last sees a close that has not happened yet."""
    df = frame(bars)
    hour_close = df.close.resample("1h").last().reindex(df.index, method="ffill")
    return sides(hour_close > df.close, hour_close < df.close)


# ------------------------------------------------------------------------- honest functions


def ema_cross(bars, params):
    """EMA(fast) crossing EMA(slow), both started at the first close (pandas adjust=False)."""
    close = frame(bars).close
    diff = close.ewm(span=params["fast"], adjust=False).mean() - close.ewm(span=params["slow"], adjust=False).mean()
    before = diff.shift(1)
    return sides((diff > 0) & (before <= 0), (diff < 0) & (before >= 0))


def donchian_breakout(bars, params):
    """Close beyond the high / low of the `lookback` bars before it."""
    df = frame(bars)
    upper = df.high.rolling(params["lookback"]).max().shift(1)
    lower = df.low.rolling(params["lookback"]).min().shift(1)
    return sides(df.close > upper, df.close < lower)


def price_against_expanding_mean(bars, params):
    """Close against the mean of every close so far: never forgets where the series started."""
    close = frame(bars).close
    mean = close.expanding().mean()
    return sides(close > mean * 1.002, close < mean * 0.998)


EMA_SPACE = {"fast": (12, 3, 60, 1), "slow": (48, 10, 200, 2)}
DONCHIAN_SPACE = {"lookback": (48, 5, 300, 1)}


def fast_below_slow(params) -> bool:
    return params["fast"] < params["slow"]


def method_signal(name: str):
    """A built-in numba method in the signal-function shape: the kernel fed the params it reads."""
    strategy = registered()[name]

    def signal(bars, params):
        return strategy.signals(bars, params)

    return signal


def method_space(name: str):
    """The method's declared parameters: defaults and bounds, on a grid of whole bars."""
    return {p.name: (p.default, p.lo, p.hi, 1) for p in registered()[name].parameters}


def valid_for(name: str):
    def keep(params) -> bool:
        try:
            Params(method=name, **params)
        except ValidationError:
            return False
        return True

    return keep


# ---------------------------------------------------------------------------------- helpers


def assert_first_change(signal, bars: Bars, finding: Finding) -> None:
    """Rerun the signal on the bars as the finding altered them: the bar it names is the first that
    changed (among those compared), with the values it reports."""
    full = np.asarray(signal(bars, finding.params))
    if finding.check == "look-ahead":
        if finding.how == "removed":
            altered = signal(bars.slice(0, finding.cut + 1), finding.params)
        else:
            altered = signal(_mirrored_after(bars, finding.cut), finding.params)
        first, before, after = 0, full[: finding.cut + 1], np.asarray(altered)[: finding.cut + 1]
    else:
        altered = np.asarray(signal(bars.slice(finding.start, len(bars)), finding.params))
        first = finding.start + finding.warmup
        before, after = full[first:], altered[finding.warmup :]
    changed = np.flatnonzero(before != after)
    assert changed.size and first + changed[0] == finding.bar
    assert (finding.full, finding.changed) == (before[changed[0]], after[changed[0]])
    assert finding.time_ms == bars.ts[finding.bar]


# ----------------------------------------------------------------------------- look-ahead


def test_a_peek_at_the_next_close_is_caught_at_the_cut_bar():
    [finding] = check_lookahead(next_close_peek, BARS, [{}])
    assert finding.check == "look-ahead"
    assert finding.bar == finding.cut  # its last bar: the only one that reads the bar after it
    assert finding.cut < 2 * len(BARS) // (DEFAULT_CUTS + 1)  # the first cut: the check stops there
    assert_first_change(next_close_peek, BARS, finding)


def test_a_centred_rolling_window_is_caught_within_half_a_window_of_the_cut():
    [finding] = check_lookahead(centred_mean, BARS, [{"window": 13}])
    assert finding.cut - 6 <= finding.bar <= finding.cut
    assert_first_change(centred_mean, BARS, finding)


def test_normalising_by_the_whole_series_high_is_caught():
    [finding] = check_lookahead(share_of_series_high, BARS, [{}])
    assert finding.bar <= finding.cut
    assert_first_change(share_of_series_high, BARS, finding)


def test_an_hourly_last_close_forward_filled_onto_its_bars_is_caught_in_the_cut_hour():
    [finding] = check_lookahead(hour_close_forward_filled, BARS, [{}])
    assert BARS.ts[finding.bar] // HOUR_MS == BARS.ts[finding.cut] // HOUR_MS
    assert finding.bar < finding.cut
    assert_first_change(hour_close_forward_filled, BARS, finding)


def test_a_peek_that_removing_the_future_hides_is_caught_by_replacing_it():
    # at a bar whose next close is lower the peek says -1; with the next bar removed it says 0,
    # so make it say -1 there too: only different bars after the cut can show the peek
    def peek_short_at_the_end(bars, params):
        sig = next_close_peek(bars, params)
        sig[-1] = -1
        return sig

    cut = next(c for c in range(100, len(BARS) - 1) if BARS.close[c + 1] < BARS.close[c])
    [finding] = check_lookahead(peek_short_at_the_end, BARS, [{}], cuts=[cut])
    assert (finding.how, finding.bar, finding.full, finding.changed) == ("replaced", cut, -1, 1)
    assert_first_change(peek_short_at_the_end, BARS, finding)


def test_only_the_parameter_sets_that_look_ahead_are_reported_once_each():
    def peeks_when_asked(bars, params):
        close = frame(bars).close
        other = close.shift(-1 if params["peek"] else 1)
        return sides(other > close, other < close)

    sets = [{"peek": False}, {"peek": True}, {"peek": False, "unused": 3}, {"peek": True, "unused": 4}]
    findings = check_lookahead(peeks_when_asked, BARS, sets)
    assert [f.params for f in findings] == [sets[1], sets[3]]


@pytest.mark.parametrize(
    ("signal", "space", "keep"),
    [(ema_cross, EMA_SPACE, fast_below_slow), (donchian_breakout, DONCHIAN_SPACE, None)],
    ids=["ema_cross", "donchian_breakout"],
)
def test_honest_pandas_functions_do_not_look_ahead(signal, space, keep):
    assert check_lookahead(signal, BARS, draw_param_sets(space, keep=keep)) == []


@pytest.mark.parametrize("name", ["ema_crossover", "macd_trend", "trend_breakout"])
def test_the_builtin_methods_do_not_look_ahead(name):
    sets = draw_param_sets(method_space(name), keep=valid_for(name))
    assert check_lookahead(method_signal(name), BARS, sets) == []


# ------------------------------------------------------------------------------ recursion


def test_an_ema_started_at_the_first_close_depends_on_the_start_without_a_warmup():
    [finding] = check_recursion(ema_cross, BARS, [{"fast": 12, "slow": 48}], warmup=lambda p: 0)
    assert (finding.check, finding.how, finding.warmup) == ("recursion", "started later", 0)
    assert_first_change(ema_cross, BARS, finding)


def test_an_ema_cross_passes_with_a_warmup_of_ten_slow_periods():
    sets = draw_param_sets(EMA_SPACE, keep=fast_below_slow)
    assert check_recursion(ema_cross, BARS, sets, warmup=lambda p: 10 * p["slow"]) == []


def test_a_rolling_window_needs_no_more_warmup_than_its_length():
    sets = draw_param_sets(DONCHIAN_SPACE)
    assert check_recursion(donchian_breakout, BARS, sets, warmup=lambda p: p["lookback"]) == []


def test_a_window_one_bar_short_of_its_length_is_caught():
    [finding] = check_recursion(donchian_breakout, BARS, [{"lookback": 20}], warmup=lambda p: p["lookback"] - 1)
    assert finding.bar == finding.start + 19  # the first compared bar: its channel lacks a bar
    assert_first_change(donchian_breakout, BARS, finding)


def test_an_expanding_mean_depends_on_the_start_whatever_the_warmup():
    [finding] = check_recursion(price_against_expanding_mean, BARS, [{}], warmup=lambda p: 2000)
    assert_first_change(price_against_expanding_mean, BARS, finding)


def test_trend_breakout_passes_with_its_declared_warmup():
    name = "trend_breakout"
    sets = draw_param_sets(method_space(name))
    assert check_recursion(method_signal(name), BARS, sets, registered()[name].warmup) == []


def ten_longest_periods(name: str):
    """10 × the longest chain of EMA periods a signal reads: ema_slow; macd_slow + macd_signal."""
    if name == "ema_crossover":
        return lambda p: 10 * p["ema_slow"]
    return lambda p: 10 * (p["macd_slow"] + p["macd_signal"])


@pytest.mark.parametrize("name", ["ema_crossover", "macd_trend"])
def test_the_ema_methods_pass_with_a_warmup_of_ten_periods(name):
    bars = synthetic_bars(20_000, seed=11)  # the periods go to 600 bars: room past 10 of them
    sets = draw_param_sets(method_space(name), keep=valid_for(name))
    assert check_recursion(method_signal(name), bars, sets, ten_longest_periods(name)) == []


@pytest.mark.parametrize("name", ["ema_crossover", "macd_trend"])
def test_the_ema_methods_pass_with_their_declared_warmup(name):
    sets = draw_param_sets(method_space(name), keep=valid_for(name))
    findings = check_recursion(method_signal(name), BARS, sets, lambda p: warmup_bars(Params(method=name, **p)))
    assert findings == [], findings[0].line()


def test_explicit_starts_are_used_and_those_leaving_nothing_past_the_warmup_skipped():
    [finding] = check_recursion(ema_cross, BARS, [{"fast": 5, "slow": 20}], lambda p: 0, starts=[len(BARS), 300])
    assert finding.start == 300


def test_a_warmup_that_leaves_nothing_to_compare_is_refused():
    with pytest.raises(ValueError, match=r"a warm-up of 6000 bars \(params lookback=20\) leaves no bar to compare in 6000 bars"):
        check_recursion(donchian_breakout, BARS, [{"lookback": 20}], warmup=lambda p: len(BARS))


# --------------------------------------------------------------------------- the findings


def test_a_lookahead_finding_reads_as_one_line():
    finding = Finding("look-ahead", "removed", 1234, int(BARS.ts[1234]), {"ema_fast": 12, "ema_slow": 48}, 1, 0, cut=1300)
    assert finding.line() == (
        "look-ahead: signal at bar 1234 (2024-01-05 06:50 UTC) changed from 1 to 0 when the bars after bar 1300 "
        "were removed; params ema_fast=12 ema_slow=48"
    )


def test_a_recursion_finding_reads_as_one_line():
    params = {"lookback": 20, "atr_stop_mult": 1.5, "gate": True}
    finding = Finding("recursion", "started later", 220, None, params, -1, 0, start=1, warmup=19)
    assert finding.line() == (
        "recursion: signal at bar 220 changed from -1 to 0 when the series started 1 bar later "
        "(declared warm-up 19 bars); params lookback=20 atr_stop_mult=1.5 gate=on"
    )


# ------------------------------------------------------------------------- the signal's shape


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        (np.zeros(9), "signal has 9 values for 10 bars; it should have one per bar"),
        (np.zeros((10, 1)), "signal has shape (10, 1); it should be one value per bar, 10 values"),
        (np.r_[np.zeros(3), np.nan, np.nan, np.zeros(5)], "signal is NaN at bar 3 (2 NaN in all); give 0 where there is no signal"),
        (np.r_[np.zeros(4), 0.5, np.zeros(5)], "signal is 0.5 at bar 4; it should be +1 (long), -1 (short) or 0 (none)"),
        (np.r_[np.zeros(6, int), 2, np.zeros(3, int)], "signal is 2 at bar 6; it should be +1 (long), -1 (short) or 0 (none)"),
        (np.zeros(10, bool), "signal is True/False; it should be +1 (long), -1 (short) or 0 (none) at each bar"),
        (np.array(["1"] * 10), "signal values are of type <U1; they should be the numbers +1, -1 or 0"),
    ],
    ids=["short", "2-d", "nan", "fraction", "two", "bool", "text"],
)
def test_a_malformed_signal_is_named_in_one_line(output, problem):
    assert check_signal_shape(output, 10) == problem


def test_integer_and_whole_float_signals_are_well_formed():
    assert check_signal_shape(np.array([1, 0, -1, 0], np.int8), 4) is None
    assert check_signal_shape(pd.Series([1.0, 0.0, -1.0, 0.0]), 4) is None


def test_a_malformed_signal_stops_the_check_with_the_run_and_params_named():
    def fixed_length(bars, params):
        return np.zeros(len(BARS), np.int8)

    with pytest.raises(SignalError) as err:
        check_lookahead(fixed_length, BARS, [{"fast": 3}], cuts=[999])
    assert str(err.value) == (
        "signal has 6000 values for 1000 bars; it should have one per bar "
        "(on bars 0..999, those after removed; params fast=3)"
    )


def test_a_cut_outside_the_bars_is_refused():
    with pytest.raises(ValueError, match=re.escape("cut 5999 is outside the bars: a cut must be in 0..5998 for 6000 bars")):
        check_lookahead(ema_cross, BARS, [{"fast": 3, "slow": 9}], cuts=[5999])


# -------------------------------------------------------------------------- parameter sets


MIXED_SPACE = {"period": (20, 5, 50, 5), "mult": (1.5, 0.5, 3.0, 0.1), "gate": (True, 0, 1, 1)}


def test_parameter_sets_are_the_defaults_then_seeded_draws_on_the_grid():
    sets = draw_param_sets(MIXED_SPACE, 6, seed=3)
    assert sets[0] == {"period": 20, "mult": 1.5, "gate": True}
    assert len(sets) == 7 and len({tuple(s.items()) for s in sets}) == 7
    for s in sets[1:]:
        assert type(s["period"]) is int and s["period"] in range(5, 51, 5)
        assert type(s["mult"]) is float and 0.5 <= s["mult"] <= 3.0 and round(s["mult"] * 10) == s["mult"] * 10
        assert type(s["gate"]) is bool
    assert draw_param_sets(MIXED_SPACE, 6, seed=3) == sets
    assert draw_param_sets(MIXED_SPACE, 6, seed=4) != sets
    assert len(draw_param_sets(MIXED_SPACE)) == 1 + DEFAULT_DRAWS


def test_draws_that_keep_rejects_are_redrawn_and_a_small_space_gives_what_it_has():
    sets = draw_param_sets(EMA_SPACE, 10, keep=lambda p: 3 * p["fast"] < p["slow"])
    assert len(sets) == 11 and all(3 * s["fast"] < s["slow"] for s in sets)
    assert draw_param_sets({"gate": (False, 0, 1, 1)}, 5) == [{"gate": False}, {"gate": True}]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"period": (20, 30, 10, 1)}, "period: need lo <= default <= hi and step > 0"),
        ({"period": (20, 5, 50, 0)}, "period: need lo <= default <= hi and step > 0"),
        ({"period": (20, 5, 50, 2.5)}, "period: an int parameter needs whole lo, hi and step"),
        ({"mult": (1.5, 0.5, float("nan"), 0.1)}, "mult: default, lo, hi and step must be finite numbers"),
    ],
)
def test_a_bad_space_names_the_parameter(space, message):
    with pytest.raises(ValueError, match=message):
        draw_param_sets(space)


def test_defaults_that_keep_rejects_are_refused():
    with pytest.raises(ValueError, match="the defaults fast=12 slow=48 are not a valid parameter set"):
        draw_param_sets(EMA_SPACE, keep=lambda p: p["fast"] > p["slow"])
