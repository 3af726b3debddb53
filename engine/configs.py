"""Config identity: the stable id and the human label of a set of parameters.

A config is named by `config_id`: "c-" + the first 8 hex digits of the SHA-256 of its
canonical parameter JSON (all fields, sorted keys, compact), so the same parameters get the
same id in every test, session and process, and any change of any parameter gives a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from engine.params import Params
from engine.strategies import get as get_strategy
from engine.strategy import StrategyError


def params_json(params: Params) -> str:
    """Canonical JSON of every parameter: sorted keys, compact separators (the hashed form)."""
    return json.dumps(params.model_dump(), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _id_of_json(canonical: str) -> str:
    return "c-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]


def config_id(params: Params) -> str:
    """Short stable id of a config: "c-" + 8 hex digits of SHA-256 of its canonical JSON."""
    return _id_of_json(params_json(params))


def _number(x: Any) -> str:
    # 400.0 reads better as "400"; other floats keep enough digits to tell configs apart.
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return format(x, ".10g") if isinstance(x, float) else str(x)


def label_of(values: Mapping[str, Any]) -> str:
    """`config_label` of a config given as a dict of its parameters (a row's params_json, parsed):
    the strategy's own parameters in declared order, then the stop and the take-profit."""
    method = str(values.get("method", "?"))
    own = values.get("method_params")
    source = own if isinstance(own, Mapping) else values  # flat: a row written before strategies were declared
    try:  # in declared order (the canonical JSON sorts the keys)
        names: Iterable[str] = get_strategy(method).names
    except StrategyError:  # not registered here: as recorded
        names = own.keys() if isinstance(own, Mapping) else ()
    parts = [method, "/".join(_number(source[n]) for n in names if n in source)]
    if "atr_stop_mult" in values:
        parts.append(f"stop{_number(values['atr_stop_mult'])}")
    if "hard_tp_usd" in values:
        parts.append(f"tp{_number(values['hard_tp_usd'])}")
    return " ".join(p for p in parts if p)


def config_label(params: Params) -> str:
    """Human label: method, its periods (bars), stop (ATRs), take-profit (USD): "ema_crossover 12/48 stop1.5 tp400"."""
    return label_of(params.model_dump())
