"""The targets table: one row per threshold setting, each read on its own side of the threshold."""

from __future__ import annotations

from engine.targets import TARGETS, Targets, targets_met, thresholds


def test_every_threshold_setting_has_exactly_one_target():
    assert sorted(t.setting for t in TARGETS) == sorted(Targets.model_fields)


def test_a_metric_on_its_threshold_meets_the_target_and_a_step_past_it_misses():
    at = {"hit": 0.52, "payoff": 1.25, "maxdd": -2000.0, "blunders_per_100": 2.0, "high_vol_share": 0.30}
    assert all(targets_met(Targets(), at).values())
    worse = {"hit": 0.51, "payoff": 1.24, "maxdd": -2001.0, "blunders_per_100": 2.1, "high_vol_share": 0.29}
    assert not any(targets_met(Targets(), worse).values())


def test_thresholds_read_a_recorded_config_and_fill_what_it_lacks_with_defaults():
    assert thresholds({"hit_min": 0.6}) == {**thresholds(Targets()), "hit": 0.6}
