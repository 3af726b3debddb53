"""Config labels that tell every config apart, wide or cut to a narrow column; the allocation desk's Sharpe as of
the latest test."""

from __future__ import annotations

import itertools

from agents.allocator import AllocationDesk
from engine.allocation import AllocationSettings
from engine.configs import LABEL_CODES, config_id, config_label, short_labels
from engine.params import Params
from engine.targets import Targets
from maestro_tui import state  # state.TestDone: a name pytest would try to collect
from maestro_tui.state import Item, SessionView
from tests.test_leaderboard import _changed_value, row

BASE = {"session_id": "session_2026-11-21_1405", "emitted_at": "2026-11-21T14:05:00.123Z"}
CONFIG = {"session_id": BASE["session_id"], "settings": {"segments": 1, "tests": 40, "targets": Targets().model_dump(),
                                                         "allocation": AllocationSettings().model_dump()}}


def variants() -> list[Params]:
    """The defaults of each built-in, each shared parameter changed alone, and every pair of those changed together."""
    base = Params()
    singles = [base.with_changes(**{name: _changed_value(name, getattr(base, name))}) for name in LABEL_CODES]
    pairs = [a.with_changes(**{k: v for k, v in b.model_dump().items() if k in LABEL_CODES and v != getattr(base, k)})
             for a, b in itertools.combinations(singles, 2)]
    methods = [Params(method=m) for m in ("ema_crossover", "macd_trend", "trend_breakout")]
    return [*methods, Params(ema_fast=9), Params(method="trend_breakout", breakout_lookback=96), *singles, *pairs]


def test_config_label_names_every_shared_parameter_away_from_its_default():
    assert config_label(Params()) == "ema_crossover 12/48 stop1.5 tp400"  # stop and take-profit always
    changed = Params(timeout_bars=180, gate_cvd=False, atr_z_min=-0.75, vhf_min=0.3, hard_tp_usd=900)
    assert config_label(changed) == "ema_crossover 12/48 stop1.5 tp900 to180 -cvd z-0.75 vhf0.3"
    assert config_label(Params(method="macd_trend", notional_usd=50_000)) == "macd_trend 12/26/9 stop1.5 tp400 $50000"


def test_configs_that_differ_in_any_parameter_never_share_a_label():
    configs = variants()
    assert len({config_id(p) for p in configs}) == len(configs) > 150
    assert len({config_label(p) for p in configs}) == len(configs)
    by_id = {config_id(p): p.model_dump() for p in configs}
    for width in (None, 40, 18, 14, 12):
        labels = short_labels(by_id, width)
        assert len(set(labels.values())) == len(configs), width
        assert width is None or max(len(t) for t in labels.values()) <= width


def test_a_short_label_says_what_differs_from_the_strategys_defaults():
    configs = {"c-1": Params(), "c-2": Params(hard_tp_usd=900, timeout_bars=180, gate_imb=False),
               "c-3": Params(method="macd_trend", atr_z_min=-1.25), "c-4": Params(method="trend_breakout", breakout_lookback=96)}
    assert short_labels({k: p.model_dump() for k, p in configs.items()}) == {
        "c-1": "ema defaults", "c-2": "ema tp900 to180 -imb", "c-3": "macd z-1.25", "c-4": "trend 96"}


def test_a_label_too_long_for_its_column_keeps_the_changes_that_set_it_apart_and_says_it_is_cut():
    shared = dict(atr_stop_mult=2.1, hard_tp_usd=900, timeout_bars=180, vhf_min=0.3)
    a, b = Params(**shared, atr_z_min=-0.75), Params(**shared)
    labels = short_labels({config_id(a): a.model_dump(), config_id(b): b.model_dump()}, 17)
    assert labels[config_id(a)].startswith("ema ") and "z-0.75" in labels[config_id(a)]
    assert labels[config_id(a)].endswith("…") and labels[config_id(b)].endswith("…")
    assert labels[config_id(a)] != labels[config_id(b)]
    for text in labels.values():  # whole codes only: a cut code would read as another value
        assert all(word.rstrip("…") in {"ema", "stop2.1", "tp900", "to180", "vhf0.3", "z-0.75", ""}
                   for word in text.split())


def test_labels_that_would_still_read_the_same_end_in_their_config_ids_digits():
    # what sets them apart (slippage 2.125, 2.375, 2.625 bps) is longer than a 12-character column leaves
    configs = [Params(atr_stop_mult=2.1, hard_tp_usd=900, slippage_bps=bps) for bps in (2.125, 2.375, 2.625)]
    by_id = {config_id(p): p.model_dump() for p in configs}
    assert sorted(short_labels(by_id).values()) == [f"ema stop2.1 tp900 slip{bps}" for bps in ("2.125", "2.375", "2.625")]
    labels = short_labels(by_id, 12)
    assert len(set(labels.values())) == 3 and all(len(t) <= 12 for t in labels.values())
    for cid, text in labels.items():
        assert text == f"ema… {cid.removeprefix('c-')[:4]}"


# ---------------------------------------------------------------- allocation


def family_rows(test: str, pnl: dict[str, float]) -> list:
    """A test's baseline rows, one per method, with these validation PnLs (USD on 100,000 notional)."""
    return [row(test, Params(method=m), "baseline", val_pnl=v, val_trades=5) for m, v in pnl.items()]


def test_the_view_rates_every_family_as_the_allocation_desk_does_after_every_test():
    settings = AllocationSettings()
    families = ["ema_crossover", "macd_trend"]
    desk = AllocationDesk(families, settings, BASE["session_id"])
    view = SessionView()
    view.apply(Item("config", CONFIG))
    seen = []
    for t in range(1, 25):
        rows = family_rows(f"seg1_test{t:03d}", {"ema_crossover": 900.0 * ((t * 7) % 5 - 2) + t, "macd_trend": 150.0 * t})
        desk.after_test(f"seg1_test{t:03d}", rows, "2024-01-01T00:00:00.000Z")
        view.apply(Item("test", state.TestDone(f"seg1_test{t:03d}", rows)))
        for f in families:
            want = desk.rating.sharpe(list(desk.returns[f]))
            assert view.ratings()[f] == (want, min(t, desk.rating.window)), (t, f)
        seen.append(view.ratings()["ema_crossover"][0])
    assert seen[:desk.rating.min_history - 1] == [None] * (desk.rating.min_history - 1)  # too little history
    rated = [s for s in seen if s is not None]
    assert all(a != b for a, b in itertools.pairwise(rated))  # it moves test by test, not only at changes of mode
