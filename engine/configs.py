"""Config identity: the stable id and the human labels of a set of parameters.

A config is named by `config_id`: "c-" + the first 8 hex digits of the SHA-256 of its
canonical parameter JSON (all fields, sorted keys, compact), so the same parameters get the
same id in every test, session and process, and any change of any parameter gives a new one.

A label says what a config is in a few words: its method, its own periods, then short codes
for the shared parameters (LABEL_CODES: `stop2.1`, `tp900`, `to180` for timeout_bars,
`z-0.75` for atr_z_min, `-cvd` for the cvd gate switched off). Two different configs never
get the same label: `config_label` names every shared parameter away from its default, and
`short_labels` names what differs from the strategy's defaults, for narrow columns.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from engine.params import SHARED_FIELDS, Params
from engine.strategies import get as get_strategy
from engine.strategy import StrategyError

# The shared parameters a label names, in the order it names them, each with the code written
# before its value: exits, gate switches ("-cvd": off, "+cvd": on), thresholds, windows, costs, size.
LABEL_CODES: dict[str, str] = {
    "atr_stop_mult": "stop", "hard_tp_usd": "tp", "timeout_bars": "to",
    "gate_cvd": "cvd", "gate_imb": "imb", "gate_atrz": "atrz", "gate_vhf": "vhf",
    "imb_min": "imb", "atr_z_min": "z", "vhf_min": "vhf",
    "cvd_window": "cvdw", "imb_window": "imbw", "atr_z_window": "zw", "vhf_period": "vhfp", "atr_period": "atr",
    "fee_bps": "fee", "slippage_bps": "slip", "notional_usd": "$",
}
HEADLINE = ("atr_stop_mult", "hard_tp_usd")  # named by `config_label` even at their defaults
SHARED_ORDER = (*LABEL_CODES, *sorted(SHARED_FIELDS - set(LABEL_CODES)))  # a shared field added later: last
SHARED_DEFAULTS: dict[str, Any] = {name: Params.model_fields[name].default for name in SHARED_FIELDS}


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


def _same(a: Any, b: Any) -> bool:
    """Equal as parameter values: 400 and 400.0 are; a switch is never a number (True is not 1)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _own(values: Mapping[str, Any]) -> tuple[str, list[tuple[str, Any]], dict[str, Any] | None]:
    """(method, its own parameters in declared order, their defaults: None when the strategy is not registered here)."""
    method = str(values.get("method", "?"))
    own = values.get("method_params")
    source = own if isinstance(own, Mapping) else values  # flat: a row written before strategies were declared
    try:  # in declared order (the canonical JSON sorts the keys)
        strategy = get_strategy(method)
        names: Iterable[str] = strategy.names
        defaults: dict[str, Any] | None = strategy.defaults()
    except StrategyError:  # not registered here: as recorded
        names = own.keys() if isinstance(own, Mapping) else ()
        defaults = None
    return method, [(n, source[n]) for n in names if n in source], defaults


def _token(name: str, value: Any) -> str:
    code = LABEL_CODES.get(name)
    if code is None:
        return f"{name}={_number(value)}"
    if isinstance(value, bool):
        return ("+" if value else "-") + code
    return code + _number(value)


def changes_of(values: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(parameter, value) of every parameter of a config (a row's params_json, parsed) away from its strategy's
    defaults: its own first, in declared order, then the shared ones in label order. A strategy not registered
    here has no known defaults: its own parameters all count."""
    _, own, defaults = _own(values)
    out = [(n, v) for n, v in own if defaults is None or not _same(v, defaults.get(n))]
    return out + [(n, values[n]) for n in SHARED_ORDER if n in values and not _same(values[n], SHARED_DEFAULTS[n])]


def method_label(values: Mapping[str, Any]) -> str:
    """The method of a config (a row's params_json, parsed) and its own periods: "ema_crossover 12/48"."""
    method, own, _ = _own(values)
    return " ".join(p for p in (method, "/".join(_number(v) for _, v in own)) if p)


def label_of(values: Mapping[str, Any]) -> str:
    """`config_label` of a config given as a dict of its parameters (a row's params_json, parsed)."""
    parts = [method_label(values)]
    parts += [_token(n, values[n]) for n in HEADLINE if n in values]
    parts += [_token(n, v) for n, v in changes_of(values) if n in SHARED_FIELDS and n not in HEADLINE]
    return " ".join(p for p in parts if p)


def config_label(params: Params) -> str:
    """Human label: method, its periods (bars), stop (ATRs), take-profit (USD), then every other shared parameter
    away from its default: "ema_crossover 12/48 stop1.5 tp400", "macd_trend 12/26/9 stop2.1 tp900 to180 z-1"."""
    return label_of(params.model_dump())


def method_codes(methods: Iterable[str]) -> dict[str, str]:
    """A short name per method for narrow columns: its first word (ema_crossover → ema) where no other of
    `methods` starts with the same word, else its whole name."""
    names = set(methods)
    firsts = Counter(m.split("_", 1)[0] for m in names)
    return {m: m.split("_", 1)[0] if firsts[m.split("_", 1)[0]] == 1 else m for m in names}


def _short_tokens(values: Mapping[str, Any]) -> list[str]:
    """What a short label names: the own periods ("12/48") when any is away from its default, then the codes."""
    _, own, _ = _own(values)
    changed = changes_of(values)
    own_names = {n for n, _ in own}
    tokens = ["/".join(_number(v) for _, v in own)] if any(n in own_names for n, _ in changed) else []
    return tokens + [_token(n, v) for n, v in changed if n not in own_names]


def short_labels(configs: Mapping[str, Mapping[str, Any]], width: int | None = None) -> dict[str, str]:
    """Labels that tell `configs` (config id -> parameters as a dict) apart in at most `width` characters (≥ 12).

    Each names the method (`method_codes`) and what differs from its strategy's defaults, in label order:
    "ema stop2.1 tp900 to180", "ema defaults". One longer than `width` keeps the changes that set it apart
    from the other configs of its method — the rarest first, shown in label order — and ends in "…".
    Labels that would still read the same (cut alike) end in hex digits of their config ids instead.
    """
    methods = {cid: str(v.get("method", "?")) for cid, v in configs.items()}
    codes = method_codes(methods.values())
    tokens = {cid: _short_tokens(v) for cid, v in configs.items()}
    seen: dict[str, Counter[str]] = defaultdict(Counter)  # per method: how many configs name each token
    for cid, ts in tokens.items():
        seen[methods[cid]].update(ts)
    out: dict[str, str] = {}
    for cid, ts in tokens.items():
        code = codes[methods[cid]]
        text = " ".join([code, *ts]) if ts else f"{code} defaults"
        if width is not None and len(text) > width:
            room, kept = width - len(code) - 1, set()  # one for the "…"
            for i in sorted(range(len(ts)), key=lambda i: (seen[methods[cid]][ts[i]], i)):
                if len(ts[i]) + 1 <= room:
                    kept.add(i)
                    room -= len(ts[i]) + 1
            text = " ".join([code, *(ts[i] for i in sorted(kept))]) + "…"
        out[cid] = text
    counts = Counter(out.values())
    alike = [cid for cid, text in out.items() if counts[text] > 1]
    if alike:
        hexes = {cid: cid.removeprefix("c-") for cid in alike}
        n = next((n for n in range(4, 9) if len({h[:n] for h in hexes.values()}) == len(hexes)), None)
        for cid in alike:
            tag = hexes[cid][:n] if n else hexes[cid]
            words = out[cid].removesuffix("…").split(" ")
            while len(words) > 1 and width is not None and len(" ".join(words)) + len(tag) + 2 > width:
                words.pop()  # whole codes only: "tp60" would read as another take-profit
            out[cid] = f"{' '.join(words)}… {tag}"
    return out
