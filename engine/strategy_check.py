"""Checking a strategy's signal function for look-ahead and for dependence on where its data starts.

A signal function `signal(bars, params) -> array` gives, at each bar's close, +1 long, −1 short,
0 none: len(bars) integer values, no NaN. Its backtest is honest only if

- it does not look ahead: the signal at a bar depends on that bar and the bars before it only.
  `check_lookahead` cuts the series at bars c spread over it; the signals at every bar up to c,
  all of them and not only those that fired, must be identical when the bars after c are
  removed and when they are replaced by other bars (the continuation mirrored around the close
  at c, so rises become falls of the same size);
- it does not depend on how much history came before (recursion): past its declared warm-up,
  a signal is the same whether the series starts here or earlier. `check_recursion` drops the
  first k bars for several k and compares the bars that are past the warm-up in both runs.

Identical means identical, with no tolerance: a signal is an integer, and one that flips is a
different trade. An indicator that reads back without end (an EMA, Wilder's ATR) started from
its first input never forgets that start exactly; started k bars apart, two runs differ by a
residue that shrinks by (1 − α) a bar, and their signals agree only once the residue is too
small to flip a comparison. Such a strategy has to declare a warm-up several times its longest
period (on the synthetic bars an EMA cross needed 5 to 8 slow periods; the tests declare 10),
or start its indicators from a full window instead of from the first bar.

The checks run the signal function many times on slices and variants of the bars; each stops at
its first finding for a parameter set. `draw_param_sets` picks the parameter sets to check from
a declared space: the defaults plus seeded draws on each parameter's step grid.

`check_strategy` is what `maestro-tui check-strategy` and a session starting on a trader's
strategy run: the declaration, the signal's shape on the defaults, then look-ahead and
recursion over parameter sets drawn from the declared parameters, one line per check.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np

from engine.data import Bars
from engine.strategies import declaration_problem
from engine.strategy import ParamValue, SignalError, Strategy, check_signal_shape, code_line

Signal = Callable[[Bars, Mapping[str, ParamValue]], np.ndarray]
# name -> (default, lo, hi, step); the kind (bool, int or float) is the default's type
ParamSpace = Mapping[str, tuple[ParamValue, float, float, float]]

# 24 cuts, one in each 25th of the series after the first: a look-ahead that shows only at some
# bars (an hourly resample at bars inside an hour, a series high before the global one) meets
# one soon, while one parameter set costs at most 48 runs, ~36 runs' worth of the whole series
# (the removed runs are prefixes, on average half of it).
DEFAULT_CUTS = 24
# 8 starts, geometric from 1 bar to half the series past the warm-up: small offsets leave a small
# residue in a recursive indicator, large ones a residue the size of the price's swings.
DEFAULT_STARTS = 8
# the defaults and 4 draws: 5 parameter sets
DEFAULT_DRAWS = 4
# bars a strategy is checked on (the first of a session's): room for warm-ups of thousands of bars
# with half the series left to start from, and a check in about a second for a numba kernel
CHECK_BARS = 20_000

_CUT_SEED = 20240105  # fixed: the same bars always get the same cuts
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Finding:
    """A signal that changed when it should not have: at `bar` (index into the bars checked),
    `full` with all the bars, `changed` with the bars altered as `how` says."""

    check: Literal["look-ahead", "recursion"]
    how: Literal["removed", "replaced", "started later"]
    bar: int
    time_ms: int | None  # the bar's open time, ms since epoch UTC
    params: Mapping[str, ParamValue]
    full: int
    changed: int
    cut: int | None = None  # look-ahead: the last bar kept as it was
    start: int | None = None  # recursion: bars dropped from the start
    warmup: int | None = None  # recursion: the declared warm-up for these params, bars

    def line(self) -> str:
        """One line for a person: what changed, where, under which alteration and params."""
        when = f" ({_time(self.time_ms)})" if self.time_ms is not None else ""
        if self.how == "removed":
            alteration = f"the bars after bar {self.cut} were removed"
        elif self.how == "replaced":
            alteration = f"the bars after bar {self.cut} were replaced by other bars"
        else:
            bars = "bar" if self.start == 1 else "bars"
            alteration = f"the series started {self.start} {bars} later (declared warm-up {self.warmup} bars)"
        return (
            f"{self.check}: signal at bar {self.bar}{when} changed from {self.full} to {self.changed} "
            f"when {alteration}; params {format_params(self.params)}"
        )


def check_lookahead(
    signal: Signal,
    bars: Bars,
    param_sets: Iterable[Mapping[str, ParamValue]],
    cuts: int | Sequence[int] = DEFAULT_CUTS,
) -> list[Finding]:
    """At most one Finding per parameter set: at the first cut (in bar order) where a signal at a
    bar ≤ cut changed when the bars after the cut were removed, or else replaced.

    `cuts` is how many cut points to spread over the series, or the cut bars themselves (each
    must leave a bar after it). Raises SignalError for a malformed signal (an exception the
    signal function raises goes through), ValueError for cuts outside the bars.
    """
    cut_bars = _cuts(cuts, len(bars))
    if not cut_bars:
        raise ValueError(f"{len(bars)} bars leave no bar to cut after; the look-ahead check needs at least 2")
    findings = []
    for params in param_sets:
        full = _signals(signal, bars, params, "all bars")
        for cut in cut_bars:
            finding = _lookahead_at(signal, bars, params, full, cut)
            if finding is not None:
                findings.append(finding)
                break
    return findings


def check_recursion(
    signal: Signal,
    bars: Bars,
    param_sets: Iterable[Mapping[str, ParamValue]],
    warmup: Callable[[Mapping[str, ParamValue]], int],
    starts: int | Sequence[int] = DEFAULT_STARTS,
) -> list[Finding]:
    """At most one Finding per parameter set: for the first start k (ascending) where a signal at a
    bar at least `warmup(params)` bars after bar k changed when the first k bars were dropped.

    `starts` is how many start offsets to spread geometrically from 1 bar to half the bars past the
    warm-up, or the offsets themselves (those leaving no bar past the warm-up are skipped).
    Raises SignalError for a malformed signal, ValueError for a negative warm-up or one that
    leaves no bar to compare.
    """
    n = len(bars)
    findings = []
    for params in param_sets:
        w = int(warmup(params))
        if w < 0:
            raise ValueError(f"warm-up is {w} bars for params {format_params(params)}; it must be 0 or more")
        start_bars = _starts(starts, n, w)
        if not start_bars:
            raise ValueError(
                f"a warm-up of {w} bars (params {format_params(params)}) leaves no bar to compare in {n} bars "
                "from any start; give more bars"
            )
        full = _signals(signal, bars, params, "all bars")
        for start in start_bars:
            later = _signals(signal, bars.slice(start, n), params, f"bars {start}..{n - 1}, the first {start} dropped")
            offset = _first_difference(full[start + w :], later[w:])
            if offset is not None:
                bar = start + w + offset
                findings.append(Finding(
                    "recursion", "started later", bar, int(bars.ts[bar]), dict(params),
                    int(full[bar]), int(later[bar - start]), start=start, warmup=w,
                ))
                break
    return findings


def draw_param_sets(
    space: ParamSpace,
    draws: int = DEFAULT_DRAWS,
    *,
    seed: int = 0,
    keep: Callable[[Mapping[str, ParamValue]], bool] | None = None,
) -> list[dict[str, ParamValue]]:
    """The defaults, then up to `draws` distinct sets drawn uniformly from each parameter's grid
    lo, lo + step, … ≤ hi (bools: False or True), seeded so the same call gives the same sets.

    A draw that `keep` rejects (e.g. a fast period not below the slow one) or that repeats one
    already drawn is redrawn, 20 × draws tries in all; a small space may give fewer sets.
    Raises ValueError naming the parameter for a bad space entry or defaults `keep` rejects.
    """
    grids = {name: _grid(name, *entry) for name, entry in space.items()}
    defaults = {name: entry[0] for name, entry in space.items()}
    if keep is not None and not keep(defaults):
        raise ValueError(f"the defaults {format_params(defaults)} are not a valid parameter set")
    rng = np.random.default_rng(seed)
    sets = [defaults]
    for _ in range(20 * draws):
        if len(sets) > draws:
            break
        drawn = {name: grid[int(rng.integers(len(grid)))] for name, grid in grids.items()}
        if drawn not in sets and (keep is None or keep(drawn)):
            sets.append(drawn)
    return sets


def format_params(params: Mapping[str, ParamValue]) -> str:
    """`ema_fast=12 ema_slow=48 use_gate=on`: names as given, floats in their shortest form."""
    parts = []
    for name, value in params.items():
        if isinstance(value, (bool, np.bool_)):
            text = "on" if value else "off"
        elif isinstance(value, (float, np.floating)):
            text = f"{float(value):g}" if float(value) == float(f"{float(value):g}") else repr(float(value))
        else:
            text = str(value)
        parts.append(f"{name}={text}")
    return " ".join(parts) if parts else "(none)"


# ------------------------------------------------------------------------ a declared strategy

Outcome = Literal["ok", "FAIL", "skip"]
CHECKS = ("declaration", "signal", "look-ahead", "recursion")


@dataclass(frozen=True)
class StrategyVerdict:
    """What `check_strategy` found: one (outcome, text) per check, in the order of CHECKS; each
    text starts with its check's name (`look-ahead: 5 parameter sets × 24 cuts, no signal changed`)."""

    strategy: Strategy
    checks: tuple[tuple[Outcome, str], ...]

    @property
    def ok(self) -> bool:
        return all(outcome == "ok" for outcome, _ in self.checks)

    @property
    def lines(self) -> list[str]:
        """One line per check: `ok    look-ahead: …`, `FAIL  look-ahead: signal at bar …`, `skip  …`."""
        return [f"{outcome:4s}  {text}" for outcome, text in self.checks]

    @property
    def refusal(self) -> str | None:
        """The first failure in one line, naming the strategy (and its file); None when every check passed."""
        for outcome, text in self.checks:
            if outcome == "FAIL":
                return f"strategy {self.strategy.where()}: {text}"
        return None


def check_strategy(
    strategy: Strategy,
    bars: Bars,
    *,
    draws: int = DEFAULT_DRAWS,
    cuts: int | Sequence[int] = DEFAULT_CUTS,
    starts: int | Sequence[int] = DEFAULT_STARTS,
    seed: int = 0,
) -> StrategyVerdict:
    """Check a declared strategy on `bars`, in order: its declaration; its signal's shape on the
    defaults; look-ahead, then recursion past its declared warm-up, over `strategy_param_sets`.

    Never raises for the strategy's faults (its exceptions are failures, said with file and
    line); a check after a failed declaration or signal is reported skipped.
    """
    done: list[tuple[Outcome, str]] = []

    def verdict() -> StrategyVerdict:
        failed = next((text.split(":")[0] for outcome, text in done if outcome == "FAIL"), "")
        skipped: list[tuple[Outcome, str]] = [
            ("skip", f"{name}: not checked, as the {failed} check failed") for name in CHECKS[len(done):]
        ]
        return StrategyVerdict(strategy, tuple(done + skipped))

    # (a) the declaration, and the parameter sets it gives
    try:
        sets = strategy_param_sets(strategy, draws, seed=seed)
    except ValueError as err:
        done.append(("FAIL", f"declaration: {err}"))
        return verdict()
    done.append(("ok", _declaration_text(strategy)))

    # (b) the signal's shape on the defaults
    try:
        signal = strategy.signals(bars, strategy.defaults())
    except SignalError as err:
        done.append(("FAIL", f"signal: {_own_words(err, strategy)}; params {format_params(strategy.defaults())}, the defaults"))
        return verdict()
    longs, shorts = int((signal == 1).sum()), int((signal == -1).sum())
    done.append(("ok", f"signal: +1/-1/0 at each of {len(bars)} bars on the defaults ({longs} long, {shorts} short)"))

    done.append(_lookahead_check(strategy, bars, sets, cuts))
    done.append(_recursion_check(strategy, bars, sets, starts))
    return verdict()


def strategy_param_sets(strategy: Strategy, draws: int = DEFAULT_DRAWS, *, seed: int = 0) -> list[dict[str, ParamValue]]:
    """The parameter sets `check_strategy` checks: the defaults, up to `draws` seeded draws on each
    parameter's grid (Parameter.draw_step; a bool: off or on) that the strategy's own `check` rule
    accepts, then each bool flipped on the defaults if no draw flipped it.

    ValueError, one clause, for a declaration that gives none: engine.strategies.declaration_problem,
    defaults the strategy's rule refuses, a grid that is no grid, a rule or a parameter that raises.
    """
    problem = declaration_problem(strategy)
    if problem:
        raise ValueError(problem)
    defaults = strategy.defaults()
    space: dict[str, tuple[ParamValue, float, float, float]] = {}
    for p in strategy.parameters:
        if p.kind == "bool":
            space[p.name] = (p.default, 0, 1, 1)
        else:
            assert p.lo is not None and p.hi is not None  # declaration_problem: numbers have both bounds
            space[p.name] = (p.default, p.lo, p.hi, p.draw_step if p.hi > p.lo else 1)
    rule = strategy.check

    def refusal(values: Mapping[str, ParamValue]) -> str | None:
        if rule is None:
            return None
        try:
            return rule(values)
        except Exception as err:  # noqa: BLE001 - the trader's rule failed: say where
            raise ValueError(f"its check rule raised {type(err).__name__}: {err} (at {code_line(err, rule)}) "
                             f"on params {format_params(values)}") from None

    why = refusal(defaults)
    if why:
        raise ValueError(f"the defaults {format_params(defaults)} break the strategy's own check rule: {why}")
    sets = draw_param_sets(space, draws, seed=seed, keep=lambda values: refusal(values) is None)
    for p in strategy.parameters:
        flipped = {**defaults, p.name: not p.default}
        if p.kind == "bool" and all(s[p.name] == p.default for s in sets) and refusal(flipped) is None:
            sets.append(flipped)
    return sets


def _declaration_text(strategy: Strategy) -> str:
    names = strategy.names
    if not names:
        return "declaration: no parameters of its own"
    count = f"{len(names)} parameter{'s' if len(names) != 1 else ''}"
    return f"declaration: {count} ({', '.join(names)}), defaults in bounds, steps positive, no shared name taken"


def _own_words(err: SignalError, strategy: Strategy) -> str:
    """A SignalError's words without the `strategy NAME (FILE): ` the verdict says once."""
    return str(err).removeprefix(f"strategy {strategy.where()}: ")


def _lookahead_check(
    strategy: Strategy, bars: Bars, sets: list[dict[str, ParamValue]], cuts: int | Sequence[int]
) -> tuple[Outcome, str]:
    """(c): the first parameter set, in order, whose signal changes at a bar ≤ a cut when the bars after it change."""
    try:
        cut_count = len(_cuts(cuts, len(bars)))
        for params in sets:
            try:
                findings = check_lookahead(strategy.signals, bars, [params], cuts)
            except SignalError as err:
                return "FAIL", (f"look-ahead: on the bars cut or altered for the check, {_own_words(err, strategy)}; "
                                f"params {format_params(params)}")
            if findings:
                return "FAIL", findings[0].line()
    except ValueError as err:  # too few bars, cuts outside them
        return "FAIL", f"look-ahead: {err}"
    return "ok", f"look-ahead: {_count(len(sets), 'parameter set')} × {cut_count} cuts, no signal changed"


def _recursion_check(
    strategy: Strategy, bars: Bars, sets: list[dict[str, ParamValue]], starts: int | Sequence[int]
) -> tuple[Outcome, str]:
    """(d): the first parameter set, in order, whose signal past its declared warm-up changes when the series starts later."""
    n = len(bars)
    warmups, start_counts = [], []
    for params in sets:
        try:
            w = _warmup(strategy, params)
            findings = check_recursion(strategy.signals, bars, [params], _Declared(w), starts)
        except SignalError as err:
            return "FAIL", (f"recursion: on the bars started later for the check, {_own_words(err, strategy)}; "
                            f"params {format_params(params)}")
        except ValueError as err:  # a warm-up that raised, is no number of bars, or leaves none to compare
            return "FAIL", f"recursion: {err}"
        if findings:
            return "FAIL", findings[0].line()
        warmups.append(w)
        start_counts.append(len(_starts(starts, n, w)))
    bars_word = "bar" if max(warmups, default=0) == 1 else "bars"
    return "ok", (f"recursion: {_count(len(sets), 'parameter set')} × {_span(start_counts)} starts past the declared "
                  f"warm-up of {_span(warmups)} {bars_word}, no signal changed")


@dataclass(frozen=True)
class _Declared:
    """A warm-up computed (and checked) once: the same bars for any params."""

    bars: int

    def __call__(self, params: Mapping[str, ParamValue]) -> int:
        return self.bars


def _warmup(strategy: Strategy, params: Mapping[str, ParamValue]) -> int:
    """The declared warm-up for `params`, in bars; ValueError saying what is wrong with it."""
    try:
        w = strategy.warmup(params)
    except Exception as err:  # noqa: BLE001 - the trader's function failed: say where
        raise ValueError(f"its warm-up raised {type(err).__name__}: {err} (at {code_line(err, strategy.warmup)}) "
                         f"on params {format_params(params)}") from None
    whole = isinstance(w, (int, float, np.integer, np.floating)) and not isinstance(w, bool) and math.isfinite(w) and w == int(w)
    if not whole or w < 0:
        raise ValueError(f"its warm-up is {w!r} for params {format_params(params)}; it should be a whole number of bars, 0 or more")
    return int(w)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _span(values: Sequence[int]) -> str:
    """`8`, or `6–8` when they differ."""
    lo, hi = min(values, default=0), max(values, default=0)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


# ------------------------------------------------------------------------------- internals


def _lookahead_at(
    signal: Signal, bars: Bars, params: Mapping[str, ParamValue], full: np.ndarray, cut: int
) -> Finding | None:
    """The finding at `cut`, if any: the bars after it removed first, then (only if that changed
    nothing) replaced, so the cheaper prefix run answers most look-aheads."""
    variants: tuple[tuple[Literal["removed", "replaced"], Callable[[], Bars], str], ...] = (
        ("removed", lambda: bars.slice(0, cut + 1), f"bars 0..{cut}, those after removed"),
        ("replaced", lambda: _mirrored_after(bars, cut), f"all bars, those after {cut} replaced"),
    )
    for how, altered, what in variants:
        changed = _signals(signal, altered(), params, what)
        bar = _first_difference(full[: cut + 1], changed[: cut + 1])
        if bar is not None:
            return Finding("look-ahead", how, bar, int(bars.ts[bar]), dict(params), int(full[bar]), int(changed[bar]), cut=cut)
    return None


def _signals(signal: Signal, bars: Bars, params: Mapping[str, ParamValue], what: str) -> np.ndarray:
    """The signal on `bars` as int8, or SignalError naming the run and the params."""
    out = signal(bars, params)
    problem = check_signal_shape(out, len(bars))
    if problem is not None:
        raise SignalError(f"{problem} (on {what}; params {format_params(params)})")
    return np.asarray(out).astype(np.int8)


def _first_difference(a: np.ndarray, b: np.ndarray) -> int | None:
    differ = a != b
    return int(np.argmax(differ)) if differ.any() else None


def _cuts(cuts: int | Sequence[int], n: int) -> list[int]:
    """Cut bars in ascending order, each with at least one bar after it."""
    if isinstance(cuts, (int, np.integer)):
        if cuts < 1:
            raise ValueError(f"cuts must be at least 1, got {cuts}")
        # one cut in each of `cuts` equal stretches after the first n / (cuts + 1) bars, at a
        # seeded place in it: evenly spaced cuts would share a phase with the hours and days
        # (n = 6000 puts every one at an hour's last bar, where an hourly resample hides)
        k = int(cuts)
        first = n // (k + 1)
        width = (n - 1 - first) / k
        places = np.random.default_rng(_CUT_SEED).random(k)
        chosen = [first + int((i + places[i]) * width) for i in range(k)]
    else:
        chosen = [int(c) for c in cuts]
        wrong = [c for c in chosen if not 0 <= c <= n - 2]
        if wrong:
            raise ValueError(f"cut {wrong[0]} is outside the bars: a cut must be in 0..{n - 2} for {n} bars")
    return sorted({c for c in chosen if 0 <= c <= n - 2})


def _starts(starts: int | Sequence[int], n: int, warmup: int) -> list[int]:
    """Start offsets in ascending order that leave at least one bar past the warm-up."""
    if isinstance(starts, (int, np.integer)):
        if starts < 1:
            raise ValueError(f"starts must be at least 1, got {starts}")
        last = max(1, (n - warmup) // 2)
        chosen = [int(round(s)) for s in np.geomspace(1, last, int(starts))]
    else:
        chosen = [int(s) for s in starts]
        wrong = [s for s in chosen if s < 1]
        if wrong:
            raise ValueError(f"start {wrong[0]} drops no bars; a start must be 1 or more")
    return sorted({s for s in chosen if s + warmup < n})


def _mirrored_after(bars: Bars, cut: int) -> Bars:
    """`bars` with every bar after `cut` mirrored around the close at `cut` (a price p becomes
    close² / p: each rise a fall of the same size, high and low swapping roles) and its volumes
    in reverse order, buyers and sellers swapped. Still valid bars: p → close² / p reverses the
    order of prices, so the mirrored low is the new high."""
    pivot = float(bars.close[cut]) ** 2
    after = slice(cut + 1, None)

    def mirrored(prices: np.ndarray) -> np.ndarray:
        out = prices.copy()
        out[after] = pivot / prices[after]
        return out

    high, low = bars.high.copy(), bars.low.copy()
    high[after] = pivot / bars.low[after]
    low[after] = pivot / bars.high[after]
    volume = bars.volume.copy()
    volume[after] = bars.volume[after][::-1]
    taker = bars.taker_buy_volume
    if taker is not None:
        taker = taker.copy()
        taker[after] = (bars.volume[after] - taker[after])[::-1]
    return dataclasses.replace(
        bars, open=mirrored(bars.open), high=high, low=low, close=mirrored(bars.close),
        volume=volume, taker_buy_volume=taker,
    )


def _grid(name: str, default: ParamValue, lo: float, hi: float, step: float) -> list[ParamValue]:
    """The values a parameter may take: lo, lo + step, … ≤ hi, of the default's kind."""
    if isinstance(default, (bool, np.bool_)):
        return [False, True]
    numbers = (default, lo, hi, step)
    if not all(isinstance(x, (int, float, np.integer, np.floating)) and math.isfinite(x) for x in numbers):
        raise ValueError(f"{name}: default, lo, hi and step must be finite numbers, got {numbers}")
    if step <= 0 or lo > hi or not lo <= default <= hi:
        raise ValueError(f"{name}: need lo <= default <= hi and step > 0, got default {default}, lo {lo}, hi {hi}, step {step}")
    count = int(math.floor((hi - lo) / step + 1e-9)) + 1
    if isinstance(default, (int, np.integer)):
        if any(float(x) != int(x) for x in (lo, hi, step)):
            raise ValueError(f"{name}: an int parameter needs whole lo, hi and step, got {lo}, {hi}, {step}")
        return [int(lo) + k * int(step) for k in range(count)]
    # rounded so that 0.1 + 2 × 0.1 reads 0.3, as the trader typed the grid
    return [round(float(lo) + k * float(step), 12) for k in range(count)]


def _time(ms: int) -> str:
    """2024-01-05 10:15 UTC (seconds shown only when the time has them)."""
    moment = _EPOCH + timedelta(milliseconds=int(ms))
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if ms % 60_000 else "%Y-%m-%d %H:%M UTC")
