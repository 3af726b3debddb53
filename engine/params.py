"""The parameter schema: every tunable of a micro-backtest, with its bounds.

This model is the only thing agents and humans may change (DESIGN.md §6, §7): a
PlanEvent's patch names fields of `Params`, and every value is validated here before
it can reach a backtest. Bounds, types and the largest allowed step per change live
on the fields, so prompts, the approval form and the validators all read one table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from engine.methods import MethodName


def _p(default: Any, lo: float, hi: float, step: float, doc: str, *, unit: str = "") -> Any:
    """A bounded field; `step` is the largest change one plan may make to it."""
    return Field(default, ge=lo, le=hi, description=doc, json_schema_extra={"max_step": step, "unit": unit})


def _switch(default: bool, doc: str) -> Any:
    return Field(default, description=doc, json_schema_extra={"max_step": 1, "unit": "on/off"})


class Params(BaseModel):
    """One strategy configuration: method, its parameters, exits, gates, costs and size."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, strict=False)

    method: MethodName = Field("ema_crossover", description="signal method, by registered name")
    # ema_crossover
    ema_fast: int = _p(12, 2, 200, 20, "fast EMA period", unit="bars")
    ema_slow: int = _p(48, 3, 600, 60, "slow EMA period", unit="bars")
    # macd_trend
    macd_fast: int = _p(12, 2, 100, 10, "MACD fast EMA period", unit="bars")
    macd_slow: int = _p(26, 3, 300, 30, "MACD slow EMA period", unit="bars")
    macd_signal: int = _p(9, 2, 100, 10, "MACD signal EMA period", unit="bars")
    # trend_breakout
    breakout_lookback: int = _p(48, 5, 500, 48, "Donchian channel length", unit="bars")
    # exits
    atr_period: int = _p(14, 2, 200, 14, "ATR period (Wilder)", unit="bars")
    atr_stop_mult: float = _p(1.5, 0.3, 10.0, 1.0, "stop distance in ATRs from the entry price")
    hard_tp_usd: float = _p(400.0, 10.0, 100_000.0, 500.0, "take profit: unrealized PnL target", unit="USD")
    timeout_bars: int = _p(240, 1, 4320, 120, "close at the close of bar entry + timeout_bars", unit="bars")
    # gates
    gate_cvd: bool = _switch(True, "cvd gate: cumulative volume delta slope agrees with the side")
    cvd_window: int = _p(12, 2, 500, 24, "CVD slope window", unit="bars")
    gate_imb: bool = _switch(True, "imb gate: taker-buy imbalance beyond imb_min in the side's direction")
    imb_window: int = _p(12, 2, 500, 24, "imbalance window", unit="bars")
    imb_min: float = _p(0.02, 0.0, 1.0, 0.05, "imbalance threshold, (buy - sell) / volume")
    gate_atrz: bool = _switch(True, "atrz gate: ATR z-score at least atr_z_min")
    atr_z_min: float = _p(-0.5, -5.0, 5.0, 0.5, "minimum ATR z-score", unit="sd")
    atr_z_window: int = _p(96, 10, 2000, 96, "ATR z-score lookback", unit="bars")
    gate_vhf: bool = _switch(True, "vhf gate: vertical horizontal filter at least vhf_min (trending)")
    vhf_period: int = _p(28, 5, 500, 28, "VHF period", unit="bars")
    vhf_min: float = _p(0.25, 0.0, 1.0, 0.1, "minimum VHF")
    # costs and size
    fee_bps: float = _p(2.0, 0.0, 100.0, 2.0, "fee per side", unit="bps")
    slippage_bps: float = _p(1.0, 0.0, 100.0, 2.0, "slippage per side", unit="bps")
    notional_usd: float = _p(100_000.0, 100.0, 100_000_000.0, 50_000.0, "position size", unit="USD")

    # the kernel's vectors for these values, filled by engine.backtest (Params is immutable)
    _kernel_cache: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _periods_are_ordered(self) -> Params:
        if self.ema_fast >= self.ema_slow:
            raise ValueError(f"ema_fast ({self.ema_fast}) must be below ema_slow ({self.ema_slow})")
        if self.macd_fast >= self.macd_slow:
            raise ValueError(f"macd_fast ({self.macd_fast}) must be below macd_slow ({self.macd_slow})")
        return self

    def with_changes(self, **changes: Any) -> Params:
        """A validated copy with `changes` applied; raises ParamError naming the field."""
        return params_from_dict({**self.model_dump(), **changes}, where="patch")


@dataclass(frozen=True)
class ParamBound:
    """What may be set: a field's type, bounds and the largest step a single plan may take."""

    name: str
    kind: str  # "int", "float", "bool" or "method"
    lo: float | None
    hi: float | None
    max_step: float | None
    unit: str
    doc: str


class ParamError(ValueError):
    """A parameter value refused by the schema; str() is one line naming field and bound."""

    def __init__(self, field: str, problem: str, where: str = "") -> None:
        self.field = field
        self.problem = problem
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{field}: {problem}")


def _bounds() -> dict[str, ParamBound]:
    table: dict[str, ParamBound] = {}
    for name, info in Params.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        lo = hi = None
        for meta in info.metadata:
            lo = getattr(meta, "ge", lo)
            hi = getattr(meta, "le", hi)
        assert info.annotation is not None  # every field of Params is annotated
        kind = "method" if name == "method" else info.annotation.__name__
        step, unit = extra.get("max_step"), extra.get("unit", "")
        assert (step is None or isinstance(step, (int, float))) and isinstance(unit, str)  # as _p and _switch set them
        table[name] = ParamBound(name, kind, lo, hi, step, unit, info.description or "")
    return table


PARAM_BOUNDS: dict[str, ParamBound] = _bounds()


def coerce_value(name: str, raw: Any) -> Any:
    """Turn a typed-in or JSON value into the field's type; ParamError when it cannot be."""
    bound = PARAM_BOUNDS.get(name)
    if bound is None:
        raise ParamError(name, f"unknown parameter (allowed: {', '.join(sorted(PARAM_BOUNDS))})")
    if bound.kind == "method":
        return str(raw)
    if bound.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "on", "yes"):
            return True
        if text in ("0", "false", "off", "no"):
            return False
        raise ParamError(name, f"{raw!r} is not on/off")
    try:
        number = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        raise ParamError(name, f"{raw!r} is not a number") from None
    if not math.isfinite(number):
        raise ParamError(name, f"{raw!r} is not a finite number")
    if bound.kind == "int":
        if number != int(number):
            raise ParamError(name, f"{raw!r} is not a whole number of {bound.unit or 'units'}")
        return int(number)
    return number


def params_from_dict(values: dict[str, Any], where: str = "") -> Params:
    """Validate a full or partial parameter dict into Params; ParamError names the first bad field."""
    try:
        coerced = {name: coerce_value(name, raw) for name, raw in values.items()}
    except ParamError as err:
        raise ParamError(err.field, err.problem, where) from None
    try:
        return Params(**coerced)
    except ValidationError as err:
        first = err.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        # cross-field checks have no location; their message starts with the field name
        field = ".".join(str(x) for x in first["loc"]) or message.split(" ", 1)[0]
        raise ParamError(field, message, where) from None
