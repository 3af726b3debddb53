"""The parameter schema: every tunable of a micro-backtest, with its bounds.

A config is one strategy (`method`, by registered name) with its own parameters
(`method_params`, declared by the strategy: engine/strategy.py) and the parameters every
strategy shares — exits, gates, costs and size — declared here. This model is the only
thing agents and humans may change (DESIGN.md §6, §7): a PlanEvent's patch names
parameters of `Params` (shared, or of the config's strategy), and every value is validated
here before it can reach a backtest. `bounds_for(method)` is the one table of types, bounds
and largest steps that prompts, tool schemas, the review form and the validators read.

Flat input is accepted: `Params(method="macd_trend", macd_fast=8)` puts macd_fast into
method_params, and a session written before strategies were declared (every built-in's
parameters flat, side by side) reads back with the other methods' parameters left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from engine.strategies import get as get_strategy
from engine.strategies import registered
from engine.strategy import Parameter, ParamValue, Strategy, StrategyError

DEFAULT_METHOD = "ema_crossover"


def _p(default: Any, lo: float, hi: float, step: float, doc: str, *, unit: str = "") -> Any:
    """A bounded field; `step` is the largest change one plan may make to it."""
    return Field(default, ge=lo, le=hi, description=doc, json_schema_extra={"max_step": step, "unit": unit})


def _switch(default: bool, doc: str) -> Any:
    return Field(default, description=doc, json_schema_extra={"max_step": 1, "unit": "on/off"})


class Params(BaseModel):
    """One strategy configuration: method, its parameters, exits, gates, costs and size."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, strict=False)

    method: str = Field(DEFAULT_METHOD, description="signal method: a registered strategy, by name")
    method_params: dict[str, ParamValue] = Field(
        default_factory=dict, description="the strategy's own parameters (its declaration fills the defaults)")
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

    @model_validator(mode="before")
    @classmethod
    def _route_flat(cls, data: Any) -> Any:
        """Flat names of the strategy's parameters go into method_params (module docstring)."""
        if not isinstance(data, dict):
            return data
        try:
            strategy = get_strategy(str(data.get("method", DEFAULT_METHOD)))
        except StrategyError:
            return data  # the after-validator says it, with the field
        own = dict(data.get("method_params") or {})
        out: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("method", "method_params") or name in SHARED_FIELDS:
                out[name] = value
            elif strategy.parameter(name) is not None:
                own[name] = value  # flat wins: Params.with_changes passes changes flat
            elif name not in _BUILT_IN_NAMES:  # another built-in's, written flat by an older session: not this config's
                out[name] = value  # refused as an unknown field
        out["method_params"] = own
        return out

    @model_validator(mode="after")
    def _method_params_are_the_strategys(self) -> Params:
        strategy = get_strategy(self.method)
        values = strategy.defaults()
        for name, raw in self.method_params.items():
            p = strategy.parameter(name)
            if p is None:
                raise ValueError(f"{name} is not a parameter of {self.method} (its parameters: {', '.join(strategy.names) or 'none'})")
            values[name] = _checked(p, raw)
        if strategy.check is not None:
            why = strategy.check(values)
            if why:
                raise ValueError(why)
        object.__setattr__(self, "method_params", values)
        return self

    @property
    def strategy(self) -> Strategy:
        return get_strategy(self.method)

    def value(self, name: str) -> ParamValue | str:
        """The value of a parameter by name: shared, the method, or one of the strategy's own."""
        if name in self.method_params:
            return self.method_params[name]
        if name == "method" or name in SHARED_FIELDS:
            return getattr(self, name)
        raise ParamError(name, f"not a parameter of {self.method} (nor a shared one)")

    def bounds(self) -> dict[str, ParamBound]:
        """Every parameter this config may change: shared, then its strategy's own."""
        return bounds_for(self.method)

    def flat(self) -> dict[str, Any]:
        """method, the strategy's own parameters and the shared ones in one flat dict."""
        shared = self.model_dump(exclude={"method_params"})
        return {"method": self.method, **self.method_params, **{k: v for k, v in shared.items() if k != "method"}}

    def with_changes(self, **changes: Any) -> Params:
        """A validated copy with `changes` applied (flat names); raises ParamError naming the field.

        A change of method starts the new strategy from its declared defaults (but for any of
        its parameters named in `changes`)."""
        base = self.model_dump()
        if "method" in changes and changes["method"] != self.method:
            base.pop("method_params")
        return params_from_dict({**base, **changes}, where="patch")


def _checked(p: Parameter, raw: Any) -> ParamValue:
    """`raw` as the parameter's type, inside its bounds; ValueError naming it if not."""
    value = coerce_to(p.name, bound_of(p), raw)
    if p.kind != "bool":
        assert p.lo is not None and p.hi is not None
        if not p.lo <= value <= p.hi:
            raise ValueError(f"{p.name}: {value:g} is outside [{p.lo:g}, {p.hi:g}]")
    return value


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


def _shared_bounds() -> dict[str, ParamBound]:
    table: dict[str, ParamBound] = {}
    for name, info in Params.model_fields.items():
        if name == "method_params":
            continue
        extra = info.json_schema_extra
        assert extra is None or isinstance(extra, dict)  # the fields above give a dict or nothing
        extra = extra or {}
        lo = hi = None
        for meta in info.metadata:
            lo = getattr(meta, "ge", lo)
            hi = getattr(meta, "le", hi)
        annotation = info.annotation
        assert annotation is not None
        kind = "method" if name == "method" else annotation.__name__
        step = extra.get("max_step")
        table[name] = ParamBound(name, kind, lo, hi, float(step) if isinstance(step, int | float) else None,
                                 str(extra.get("unit", "")), info.description or "")
    return table


def bound_of(p: Parameter) -> ParamBound:
    """A strategy parameter's row of the bounds table."""
    return ParamBound(p.name, p.kind, p.lo, p.hi, 1 if p.kind == "bool" else p.max_step, p.unit or ("on/off" if p.kind == "bool" else ""), p.doc)


SHARED_FIELDS: frozenset[str] = frozenset(n for n in Params.model_fields if n not in ("method", "method_params"))
# the shared parameters (and `method`): what every strategy's config has
SHARED_BOUNDS: dict[str, ParamBound] = _shared_bounds()
# every built-in's parameter names: an older session wrote them all flat (Params._route_flat)
_BUILT_IN_NAMES: frozenset[str] = frozenset(
    p.name for s in registered().values() if s.origin == "built-in" for p in s.parameters)


def bounds_for(method: str) -> dict[str, ParamBound]:
    """The bounds table of a config of `method`: `method`, its strategy's own parameters, then the shared ones."""
    strategy = get_strategy(method)
    own = {p.name: bound_of(p) for p in strategy.parameters}
    return {"method": SHARED_BOUNDS["method"], **own, **{k: v for k, v in SHARED_BOUNDS.items() if k != "method"}}


def coerce_to(name: str, bound: ParamBound, raw: Any) -> Any:
    """Turn a typed-in or JSON value into the parameter's type; ParamError when it cannot be."""
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


def coerce_value(name: str, raw: Any, bounds: dict[str, ParamBound]) -> Any:
    """`coerce_to` by the row of `bounds` (a config's table, `bounds_for`) that `name` names."""
    bound = bounds.get(name)
    if bound is None:
        raise ParamError(name, f"unknown parameter (allowed: {', '.join(sorted(bounds))})")
    return coerce_to(name, bound, raw)


def params_from_dict(values: dict[str, Any], where: str = "") -> Params:
    """Validate a full or partial parameter dict (flat names) into Params; ParamError names the first bad field."""
    method = str(values.get("method", DEFAULT_METHOD))
    try:
        bounds = bounds_for(method)
    except StrategyError as err:
        raise ParamError("method", str(err), where) from None
    try:
        coerced = {name: raw if name == "method_params" else coerce_value(name, raw, bounds)
                   for name, raw in values.items()}
    except ParamError as err:
        raise ParamError(err.field, err.problem, where) from None
    try:
        return Params(**coerced)
    except ValidationError as err:
        first = err.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        # cross-field checks have no location; their message starts with the field name
        field = ".".join(str(x) for x in first["loc"]) or message.split(" ", 1)[0].rstrip(":")
        raise ParamError(field, message, where) from None
