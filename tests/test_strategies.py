"""Strategies are declared, not wired: one schema per strategy, a trader's own from a file, in every process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.jsonl import read_json
from engine.params import ParamError, Params, bounds_for, params_from_dict
from engine.strategies import get, load_file, registered
from engine.strategy import StrategyError
from tests.sessions import cli, headless_session

MEAN_CROSS = '''
"""Long on a cross above the n-bar mean of the close, short on a cross below."""
from engine.strategy import Parameter, Strategy


def signal(bars, p):
    mean = bars["close"].rolling(int(p["n"])).mean()
    side = (bars["close"] > mean).astype(int) - (bars["close"] < mean).astype(int)
    {fault}
    return side.where(side != side.shift(1), 0).fillna(0).to_numpy()


STRATEGY = Strategy(
    "{name}", "long on a cross above the n-bar mean, short on a cross below",
    (Parameter("n", 20, lo=5, hi=200, max_step=10, unit="bars", doc="mean length"),),
    warmup=lambda p: int(p["n"]), signal=signal, form="frame",
)
'''


def strategy_file(folder: Path, name: str, fault: str = "") -> Path:
    path = folder / f"{name}.py"
    path.write_text(MEAN_CROSS.replace("{name}", name).replace("{fault}", fault))
    return path


# ---------------------------------------------------------------- one schema per strategy


def test_a_config_holds_its_own_strategys_parameters_only():
    p = Params(method="macd_trend", macd_fast=8)
    assert p.method_params == {"macd_fast": 8, "macd_slow": 26, "macd_signal": 9}  # declared defaults fill the rest
    assert p.value("macd_fast") == 8 and p.value("atr_stop_mult") == 1.5
    assert list(p.bounds())[:4] == ["method", "macd_fast", "macd_slow", "macd_signal"]
    assert "ema_fast" not in p.bounds()
    with pytest.raises(ParamError, match="ema_fast: not a parameter of macd_trend"):
        p.value("ema_fast")


def test_another_strategys_parameter_is_refused_by_name():
    with pytest.raises(ValidationError, match="ema_fast is not a parameter of macd_trend"):
        Params(method="macd_trend", method_params={"ema_fast": 8})
    with pytest.raises(ParamError, match="ema_fast: unknown parameter"):
        params_from_dict({"method": "macd_trend", "ema_fast": 8})


def test_bounds_and_the_strategys_own_rule_hold():
    with pytest.raises(ParamError, match="macd_fast: 1 is outside"):
        params_from_dict({"method": "macd_trend", "macd_fast": 1})
    with pytest.raises(ValidationError, match=r"ema_fast \(50\) must be below ema_slow \(48\)"):
        Params(ema_fast=50)


def test_a_change_of_method_starts_the_new_strategy_at_its_defaults():
    p = Params(ema_fast=8, atr_stop_mult=2.0).with_changes(method="trend_breakout")
    assert p.method_params == {"breakout_lookback": 48} and p.atr_stop_mult == 2.0


def test_a_config_written_flat_by_an_older_session_reads_back():
    flat = {"method": "macd_trend", "ema_fast": 12, "ema_slow": 48, "macd_fast": 10, "macd_slow": 26, "macd_signal": 9,
            "breakout_lookback": 48, "atr_stop_mult": 1.5}
    p = Params.model_validate(flat)
    assert p.method_params == {"macd_fast": 10, "macd_slow": 26, "macd_signal": 9}  # the other methods' are left out


def test_an_unregistered_method_is_refused_naming_the_registered_ones():
    with pytest.raises(ValidationError, match="no strategy named 'rsi'; registered: ema_crossover, macd_trend"):
        Params(method="rsi")


# ---------------------------------------------------------------- a trader's own, from a file


def test_a_strategy_file_registers_its_strategy_with_its_origin(tmp_path: Path):
    path = strategy_file(tmp_path, "mean_cross_a")
    (s,) = load_file(path)
    assert registered()["mean_cross_a"] is s and s.origin == str(path)
    assert load_file(path) == (s,)  # once per process
    assert list(bounds_for("mean_cross_a"))[:2] == ["method", "n"]
    p = Params(method="mean_cross_a", n=30)
    assert p.method_params == {"n": 30}


def test_a_name_taken_by_another_strategy_is_refused(tmp_path: Path):
    path = strategy_file(tmp_path, "ema_crossover")
    with pytest.raises(StrategyError, match="the name 'ema_crossover' is taken by ema_crossover"):
        load_file(path)
    assert get("ema_crossover").origin == "built-in"


@pytest.mark.slow
def test_a_session_researches_a_strategy_file_in_every_segment_and_resumes_only_with_the_same_file(tmp_path: Path):
    path = strategy_file(tmp_path, "mean_cross_b")
    s = headless_session(tmp_path / "sessions", "--strategy", str(path), "--segments", "3", "--tests", "3", "--seed", "3")
    config = read_json(s / "session_config.json")
    assert [r["name"] for r in config["strategies"]] == ["mean_cross_b"] and config["strategies"][0]["file"]
    assert config["base_params"]["method"] == "mean_cross_b" and config["base_params"]["method_params"] == {"n": 20}
    for k in (1, 2, 3):
        plan = read_json(s / f"segment_{k}" / "segment_plan.json")
        assert json.loads(plan["research_params_json"])["method"] == "mean_cross_b"
        assert {p["metodo"] for p in plan["proposals"]["proposta"]} == {"mean_cross_b"}
        for t in (1, 2, 3):
            board = (s / f"segment_{k}" / f"seg{k}_test00{t}" / "leaderboard_base.csv").read_text()
            assert ",chosen,mean_cross_b," in board
    # the file changed since: a resume would mix two versions, so it is refused in one line
    conductor = json.loads((s / "conductor.json").read_text())
    conductor["state"] = "stopped"
    (s / "conductor.json").write_text(json.dumps(conductor))
    path.write_text(path.read_text().replace("mean length", "mean length (edited)"))
    out = cli("run", "--headless", "--resume", str(s))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"strategy file {path} changed since the session started" in out.stderr


@pytest.mark.slow
def test_an_exception_in_a_strategy_fails_its_test_with_file_and_line_and_the_session_goes_on(tmp_path: Path):
    # a bug only a walk-forward window of 15 days meets (not the check before the session), on some windows
    fault = "if len(bars) == 4320 and bars.index[0].day % 4 == 3:\n        raise ZeroDivisionError('my bug')"
    path = strategy_file(tmp_path, "mean_cross_c", fault=fault)
    raise_line = MEAN_CROSS.replace("{fault}", fault).splitlines().index("        raise ZeroDivisionError('my bug')") + 1
    s = headless_session(tmp_path / "sessions", "--strategy", str(path), "--segments", "1", "--tests", "6", "--seed", "3")
    results = read_json(s / "segment_1" / "segment_results.json")
    assert results["tests_failed"] == 3  # the windows from days 3, 7 and 11 (they start every other day)
    logs = "".join(p.read_text() for p in (s / "segment_1").glob("*/test.log") if "FAILED" in p.read_text())
    assert f"its signal raised ZeroDivisionError: my bug (at {path}:{raise_line})" in logs


def test_run_with_a_strategy_file_that_fails_to_load_exits_2_before_any_folder(tmp_path: Path):
    bad = tmp_path / "broken.py"
    bad.write_text("from engine.strategy import Strategy\n\nSTRATEGY = Strategy(\n")
    out = cli("run", "--headless", "--strategy", str(bad), "--sessions-dir", str(tmp_path / "sessions"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"strategy file {bad}" in out.stderr and f"{bad}:3" in out.stderr
    assert not (tmp_path / "sessions").exists() or not any((tmp_path / "sessions").iterdir())


def test_an_installed_package_declares_strategies_through_the_entry_point_group(tmp_path: Path, monkeypatch):
    from engine import strategies

    package = tmp_path / "site"
    (package / "my_strats").mkdir(parents=True)
    (package / "my_strats" / "__init__.py").write_text(MEAN_CROSS.replace("{name}", "mean_cross_pkg").replace("{fault}", ""))
    info = package / "my_strats-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-strats\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[maestro_tui.strategies]\nmean_cross = my_strats\n")
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.setattr(strategies, "_ENTRY_POINTS_LOADED", False)
    (s,) = strategies.load_entry_points()
    assert s.name == "mean_cross_pkg" and s.origin == "entry point mean_cross (my_strats)"
    assert registered()["mean_cross_pkg"] is s and strategies.load_entry_points() == []  # once per process
