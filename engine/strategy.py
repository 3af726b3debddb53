"""A strategy, declared: its name, what it does, its parameters, its warm-up and its signal.

A strategy module (a file named with `--strategy FILE`, an installed package's
`maestro_tui.strategies` entry point, or one of the built-ins in engine/methods.py) declares
one `Strategy` at module level as `STRATEGY` (or several as `STRATEGIES`):

    STRATEGY = Strategy(
        name="rsi_reversion",
        description="long when RSI crosses up through `low`, short when it crosses down through `high`",
        parameters=(
            Parameter("rsi_period", 14, lo=2, hi=200, max_step=7, unit="bars", doc="RSI period (Wilder)"),
            Parameter("low", 30.0, lo=5, hi=50, max_step=5, doc="oversold level"),
        ),
        warmup=lambda p: p["rsi_period"],
        signal=rsi_signal,  # numba kernel: (open, high, low, close, volume, taker_buy, p) -> int8[n]
    )

The signal gives, at each bar's close, +1 (go long), −1 (go short) or 0 (nothing). Two forms:

- `form="kernel"`: a numba `@njit` function over plain float64 arrays — open, high, low,
  close, volume, taker-buy volume (NaN where the data has none) — and `p`, the parameter
  values in declared order as float64; it returns int8[n]. The fast form.
- `form="frame"`: a plain function `(bars: pandas.DataFrame, params: dict) -> Series or array`
  over a DataFrame with columns open, high, low, close, volume, taker_buy_volume, indexed by
  bar time (UTC); for pandas or TA-library code. It runs once per backtest, in the worker.

The warm-up is the first bar whose close may give a signal, as a function of the parameter
values: from it on, the signal must not depend on how much data came before (the recursion
check of `maestro-tui check-strategy` holds it to that). Exits, gates, costs and size are
shared by every strategy (engine/params.py); the parameters here are the strategy's own.
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numba import njit

from engine.data import Bars

ParamValue = int | float | bool
Form = Literal["kernel", "frame"]


class StrategyError(ValueError):
    """A strategy that cannot be used: str() is one line naming the strategy (and its file) and what is wrong."""


class SignalError(StrategyError):
    """A signal function that raised, or returned something else than one +1/−1/0 per bar."""


@dataclass(frozen=True)
class Parameter:
    """One tunable of a strategy. Its type is its default's: bool, int or float.

    `lo`..`hi` bound the value (ints and floats); `max_step` is the largest change one plan may
    make to it (a bool may always flip); `grid` is the step values are drawn on when the
    strategy is checked (default: 1 for ints, (hi − lo) / 20 for floats).
    """

    name: str
    default: ParamValue
    lo: float | None = None
    hi: float | None = None
    max_step: float | None = None
    unit: str = ""
    doc: str = ""
    grid: float | None = None

    @property
    def kind(self) -> Literal["bool", "int", "float"]:
        if isinstance(self.default, bool):
            return "bool"
        return "int" if isinstance(self.default, int) else "float"

    @property
    def draw_step(self) -> float:
        if self.grid is not None:
            return self.grid
        if self.kind == "int":
            return 1
        assert self.lo is not None and self.hi is not None
        return (self.hi - self.lo) / 20

    def problem(self) -> str | None:
        """What is wrong with this declaration, in a few words; None when nothing is."""
        if not self.name.isidentifier() or keyword.iskeyword(self.name):
            return f"parameter name {self.name!r} is not a Python identifier"
        if not isinstance(self.default, int | float) or (isinstance(self.default, float) and not math.isfinite(self.default)):
            return f"{self.name}: default {self.default!r} is not a bool, an int or a finite float"
        if self.kind == "bool":
            return None
        if self.lo is None or self.hi is None:
            return f"{self.name}: an {self.kind} parameter needs both bounds, lo and hi"
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)) or self.lo > self.hi:
            return f"{self.name}: bounds lo={self.lo:g}, hi={self.hi:g} are not a range"
        if not self.lo <= self.default <= self.hi:
            return f"{self.name}: default {self.default:g} is outside its bounds [{self.lo:g}, {self.hi:g}]"
        if self.max_step is None or not math.isfinite(self.max_step) or self.max_step <= 0:
            return f"{self.name}: max_step must be a positive number, not {self.max_step!r}"
        if self.grid is not None and (not math.isfinite(self.grid) or self.grid <= 0):
            return f"{self.name}: grid must be a positive number, not {self.grid!r}"
        return None


@dataclass(frozen=True)
class Strategy:
    """A declared strategy (module docstring). `origin` says where it came from, for messages."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    warmup: Callable[[Mapping[str, ParamValue]], int]
    signal: Callable[..., Any]
    form: Form = "kernel"
    check: Callable[[Mapping[str, ParamValue]], str | None] | None = None  # a cross-parameter rule: why not, or None
    origin: str = "built-in"
    _index: dict[str, Parameter] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", tuple(self.parameters))
        object.__setattr__(self, "_index", {p.name: p for p in self.parameters})

    def parameter(self, name: str) -> Parameter | None:
        return self._index.get(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def defaults(self) -> dict[str, ParamValue]:
        return {p.name: p.default for p in self.parameters}

    def vector(self, values: Mapping[str, ParamValue]) -> np.ndarray:
        """The kernel's `p`: the values in declared order, as float64."""
        return np.array([float(values[p.name]) for p in self.parameters], dtype=np.float64)

    def signals(self, bars: Bars, values: Mapping[str, ParamValue], vector: np.ndarray | None = None) -> np.ndarray:
        """The signal at every bar's close (int8, +1/−1/0), by the declared form (`vector`: `self.vector(values)`).

        SignalError when the signal function raises (naming the strategy's file and line) or
        returns something else than one +1/−1/0 per bar.
        """
        try:
            if self.form == "kernel":
                taker = bars.taker_buy_volume if bars.taker_buy_volume is not None else np.full(len(bars), np.nan)
                out = self.signal(bars.open, bars.high, bars.low, bars.close, bars.volume, taker,
                                  self.vector(values) if vector is None else vector)
            else:
                out = self.signal(bars_frame(bars), dict(values))
        except Exception as err:  # noqa: BLE001 - the strategy's code failed: the trader's to fix, said with file and line
            said = first_line(err)
            at = "" if 'File "' in said else f" (at {code_line(err, self.signal)})"  # numba names the line itself
            raise SignalError(f"strategy {self.where()}: its signal raised {type(err).__name__}: {said}{at}") from None
        if isinstance(out, np.ndarray) and out.dtype == np.int8 and out.shape == (len(bars),) and _all_signals(out):
            return out  # a kernel's usual answer, checked in a microsecond
        problem = check_signal_shape(out, len(bars))
        if problem:
            raise SignalError(f"strategy {self.where()}: {problem}")
        return np.asarray(out).astype(np.int8, copy=False)

    def where(self) -> str:
        """`rsi_reversion (examples/strategies/rsi.py)`: the name and, for a trader's own, its origin."""
        return self.name if self.origin == "built-in" else f"{self.name} ({self.origin})"


@njit(cache=True)
def _all_signals(sig: np.ndarray) -> bool:
    """Every value +1, −1 or 0."""
    for v in sig:  # noqa: SIM110 - a numba kernel: a loop, not a generator
        if v > 1 or v < -1:
            return False
    return True


def bars_frame(bars: Bars) -> Any:
    """The bars as a pandas DataFrame (open, high, low, close, volume, taker_buy_volume), indexed by UTC time."""
    import pandas as pd

    taker = bars.taker_buy_volume if bars.taker_buy_volume is not None else np.full(len(bars), np.nan)
    return pd.DataFrame(
        {"open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close, "volume": bars.volume,
         "taker_buy_volume": taker},
        index=pd.to_datetime(bars.ts, unit="ms", utc=True),
    )


def check_signal_shape(signal_output: object, n: int) -> str | None:
    """None when `signal_output` is `n` values in {−1, 0, 1} (integers, or floats that are); else
    one line saying what is wrong and at which bar."""
    try:
        values = np.asarray(signal_output)
    except Exception as err:  # noqa: BLE001 - anything the function returned; say what it was
        return f"signal is a {type(signal_output).__name__} that is not an array of numbers ({err})"
    if values.ndim != 1:
        return f"signal has shape {values.shape}; it should be one value per bar, {n} values"
    if len(values) != n:
        return f"signal has {len(values)} values for {n} bars; it should have one per bar"
    if values.dtype == np.bool_:
        return "signal is True/False; it should be +1 (long), -1 (short) or 0 (none) at each bar"
    if values.dtype.kind not in "iuf":
        return f"signal values are of type {values.dtype}; they should be the numbers +1, -1 or 0"
    if values.dtype.kind == "f":
        nan = np.isnan(values)
        if nan.any():
            first = int(np.argmax(nan))
            return f"signal is NaN at bar {first} ({int(nan.sum())} NaN in all); give 0 where there is no signal"
    wrong = (values != 1) & (values != 0) & (values != -1)
    if wrong.any():
        first = int(np.argmax(wrong))
        return f"signal is {values[first].item()!r} at bar {first}; it should be +1 (long), -1 (short) or 0 (none)"
    return None


def first_line(err: BaseException) -> str:
    """The first line of an error's message — a numba typing error's first useful one, with where it arose."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return ""
    import re

    at = next((m.group(0) for line in lines if (m := re.search(r'File "[^"]+", line \d+', line))), None)
    useful = next((line for line in lines if not line.startswith(("Failed in", "During:", "File "))), lines[0])
    return f"{useful} ({at})" if at and at not in useful else useful


def raised_at(err: BaseException, home: str | None = None) -> str:
    """`file:line` where `err` was raised in the trader's code: the innermost frame in the file `home`, or (no
    `home`) outside the engine; a syntax error's own place; else the innermost frame."""
    import traceback

    if isinstance(err, SyntaxError) and err.filename:
        return f"{err.filename}:{err.lineno}"
    engine = str(Path(__file__).resolve().parent)
    frames = traceback.extract_tb(err.__traceback__)
    if home:
        mine = [f for f in frames if Path(f.filename).resolve() == Path(home).resolve()]
    else:
        mine = [f for f in frames if not str(Path(f.filename).resolve()).startswith(engine)]
    chosen = mine or list(frames)
    return f"{chosen[-1].filename}:{chosen[-1].lineno}" if chosen else "?"


def code_line(err: BaseException, function: Callable[..., Any]) -> str:
    """`raised_at` in `function`'s own file (a numba dispatcher's: its Python function's)."""
    import inspect

    try:
        home = inspect.getsourcefile(function) or ""
    except TypeError:  # a numba dispatcher or a builtin: no source of its own
        code = getattr(getattr(function, "py_func", None), "__code__", None)
        home = code.co_filename if code else ""
    return raised_at(err, home or None)
