"""The parameter schema: the only door through which agents and humans change a backtest."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine import ParamError, Params, bounds_for, params_from_dict, registered

# every parameter a config can have: the shared ones and each built-in's own, with the method it belongs to
EVERY = {name: (method, bound) for method in registered() for name, bound in bounds_for(method).items()}

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_are_valid_and_every_tunable_has_bounds_and_a_step():
    Params()
    for name, (_, bound) in EVERY.items():
        if bound.kind in ("int", "float"):
            assert bound.lo is not None and bound.hi is not None and bound.lo < bound.hi, name
            assert bound.max_step and bound.max_step > 0, name


def test_unknown_parameter_is_refused_by_name():
    with pytest.raises(ParamError, match="atr_stop_multiplier: unknown parameter"):
        params_from_dict({"atr_stop_multiplier": 2.0})
    with pytest.raises(ValidationError):
        Params(atr_stop_multiplier=2.0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("atr_stop_mult", 50, "less than or equal to 10"),
        ("atr_stop_mult", 0.1, "greater than or equal to 0.3"),
        ("timeout_bars", 0, "greater than or equal to 1"),
        ("hard_tp_usd", math.nan, "not a finite number"),
        ("hard_tp_usd", math.inf, "not a finite number"),
        ("hard_tp_usd", "lots", "not a number"),
        ("timeout_bars", 12.5, "not a whole number of bars"),
        ("gate_cvd", "maybe", "not on/off"),
    ],
)
def test_out_of_range_or_malformed_values_name_the_field(field, value, message):
    with pytest.raises(ParamError) as err:
        params_from_dict({field: value}, where="plan p-7")
    assert err.value.field == field
    assert str(err.value).startswith(f"plan p-7: {field}: ")
    assert message in str(err.value)


def test_cross_field_rule_names_the_field():
    with pytest.raises(ParamError) as err:
        params_from_dict({"ema_fast": 50, "ema_slow": 20})
    assert err.value.field == "ema_fast"
    assert "must be below ema_slow" in str(err.value)


def test_typed_in_text_is_coerced_to_the_field_type():
    p = params_from_dict({"timeout_bars": "180", "atr_stop_mult": "1.8", "gate_vhf": "off", "method": "macd_trend"})
    assert (p.timeout_bars, p.atr_stop_mult, p.gate_vhf, p.method) == (180, 1.8, False, "macd_trend")
    assert isinstance(p.timeout_bars, int)


def test_with_changes_validates_and_leaves_the_original_alone():
    base = Params()
    changed = base.with_changes(atr_stop_mult=1.8)
    assert changed.atr_stop_mult == 1.8 and base.atr_stop_mult == 1.5
    with pytest.raises(ParamError):
        base.with_changes(atr_stop_mult=99)


def test_params_are_immutable():
    with pytest.raises(ValidationError):
        Params().atr_stop_mult = 3.0  # type: ignore[misc]


def test_readme_documents_every_parameter_with_its_default_and_bounds():
    text = README.read_text()
    for name, (method, bound) in EVERY.items():
        row = re.search(rf"^\| `{name}` \|(.*)$", text, re.M)
        assert row, f"README has no row for parameter {name}"
        if bound.kind in ("int", "float"):
            cells = row.group(1).replace(",", "").replace("−", "-")
            assert f"{plain(bound.lo)} – {plain(bound.hi)}" in cells, f"README bounds for {name}: {cells}"
            default = Params(method=method).value(name)
            assert plain(default) in cells.split("|")[0], f"README default for {name}: {cells}"


def plain(x: float) -> str:
    """A number as the README writes it: no exponent, no trailing .0."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
