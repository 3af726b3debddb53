"""The example strategies in examples/strategies/: each loads, trades, is honest, and a session researches it.

Honest: no look-ahead, and past its declared warm-up a signal does not depend on where the
data starts (engine/strategy_check.py). The RSI kernel is checked against a slow textbook RSI.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from pydantic import ValidationError

from engine.backtest import run_backtest
from engine.jsonl import read_json
from engine.params import Params
from engine.strategies import load_file
from engine.strategy import Strategy
from engine.strategy_check import check_lookahead, check_recursion, draw_param_sets
from engine.synthetic import synthetic_bars
from tests.sessions import ROOT, headless_session

EXAMPLES = {
    "rsi_reversion": "examples/strategies/rsi_reversion.py",
    "bollinger_breakout": "examples/strategies/bollinger_breakout.py",
}
FORMS = {"rsi_reversion": "kernel", "bollinger_breakout": "frame"}
BARS = synthetic_bars(6000, seed=11)  # about three weeks of 5-minute bars


def example(name: str) -> Strategy:
    [strategy] = load_file(ROOT / EXAMPLES[name])
    return strategy


def declared_space(strategy: Strategy):
    return {p.name: (p.default, p.lo, p.hi, p.draw_step) for p in strategy.parameters}


def param_sets(strategy: Strategy):
    """The defaults and 4 seeded draws from the declared space that pass the strategy's own check."""
    return draw_param_sets(declared_space(strategy), keep=lambda v: strategy.check is None or strategy.check(v) is None)


def signal_of(strategy: Strategy):
    return lambda bars, values: strategy.signals(bars, values)


def textbook_rsi_signal(close: np.ndarray, period: int, low: float, high: float) -> np.ndarray:
    """Wilder's RSI as the books write it, 100 − 100 / (1 + RS), one bar at a time; the crosses of low and high."""
    sig = np.zeros(len(close), np.int8)
    changes = np.diff(close)
    gains, losses = np.maximum(changes, 0.0), np.maximum(-changes, 0.0)
    avg_gain, avg_loss = gains[:period].mean(), losses[:period].mean()
    previous = None
    for i in range(period, len(close)):  # the RSI at bar i reads the changes up to close[i]
        if i > period:
            avg_gain = (avg_gain * (period - 1) + gains[i - 1]) / period
            avg_loss = (avg_loss * (period - 1) + losses[i - 1]) / period
        if avg_loss == 0.0:
            rsi = 50.0 if avg_gain == 0.0 else 100.0
        else:
            rsi = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
        if previous is not None:
            if previous <= low < rsi:
                sig[i] = 1
            elif previous >= high > rsi:
                sig[i] = -1
        previous = rsi
    return sig


# ------------------------------------------------------------------------------ declarations


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_file_registers_one_strategy_of_its_form(name):
    strategy = example(name)
    assert (strategy.name, strategy.form) == (name, FORMS[name])
    assert strategy.origin.endswith(EXAMPLES[name])
    assert Params(method=name).method_params == strategy.defaults()


def test_rsi_reversion_refuses_a_low_level_not_below_the_high_one():
    example("rsi_reversion")
    with pytest.raises(ValidationError, match=r"low \(60\) must be below high \(55\)"):
        Params(method="rsi_reversion", low=60.0, high=55.0)


def test_the_rsi_kernel_gives_the_signals_of_the_textbook_rsi():
    strategy = example("rsi_reversion")
    for values in param_sets(strategy):
        fast = strategy.signals(BARS, values)
        slow = textbook_rsi_signal(BARS.close, int(values["rsi_period"]), values["low"], values["high"])
        assert np.array_equal(fast, slow), values


# ---------------------------------------------------------------------------------- backtests


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_trades_in_a_backtest_and_enters_on_its_own_signals(name):
    strategy = example(name)
    bars = synthetic_bars(8640, seed=11)  # a month: the RSI's reversals mostly meet the default gates' vetoes
    result = run_backtest(bars, Params(method=name))
    assert len(result.trades) > 0
    signal = strategy.signals(bars, strategy.defaults())
    # a trade fills at the open after its signal bar, on the side the signal gave
    assert np.array_equal(signal[result.trades["entry_idx"] - 1], result.trades["side"])


# ------------------------------------------------------------------------------------ honesty


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_does_not_look_ahead(name):
    strategy = example(name)
    findings = check_lookahead(signal_of(strategy), BARS, param_sets(strategy))
    assert findings == [], findings[0].line()


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_does_not_depend_on_the_start_past_its_declared_warmup(name):
    strategy = example(name)
    findings = check_recursion(signal_of(strategy), BARS, param_sets(strategy), strategy.warmup)
    assert findings == [], findings[0].line()


def test_a_warmup_of_one_rsi_period_is_too_short_for_wilders_smoothing():
    strategy = example("rsi_reversion")
    findings = check_recursion(signal_of(strategy), BARS, param_sets(strategy), lambda v: int(v["rsi_period"]))
    assert findings and all(f.check == "recursion" for f in findings)


def test_a_bollinger_warmup_one_bar_short_of_its_window_is_caught():
    strategy = example("bollinger_breakout")
    [finding] = check_recursion(signal_of(strategy), BARS, [{"window": 42, "k": 0.5}], lambda v: v["window"] - 1)
    assert (finding.start, finding.warmup) == (1, 41)


# ------------------------------------------------------------------------------------ sessions


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_a_session_researches_the_example_in_every_segment(name, tmp_path):
    strategy = example(name)
    session = headless_session(tmp_path, "--strategy", EXAMPLES[name], "--segments", "5", "--tests", "4", "--seed", "11")

    config = read_json(session / "session_config.json")
    assert [s["name"] for s in config["strategies"]] == [name]
    assert config["base_params"]["method"] == name
    assert set(config["base_params"]["method_params"]) == set(strategy.names)

    for k in range(1, 6):
        plan = read_json(session / f"segment_{k}/segment_plan.json")
        assert json.loads(plan["research_params_json"])["method"] == name, (k, plan["role"])
        assert {c["params"]["method"] for c in plan["chosen"]} == {name}, (k, plan["role"])
        boards = sorted((session / f"segment_{k}").glob("*/leaderboard*.csv"))
        assert len(boards) == 4, k
        for board in boards:
            with board.open(newline="") as f:
                researched = [row for row in csv.DictReader(f) if row["role"] != "baseline"]
            assert researched, board  # the chosen (segment 5: the ensemble's) rows
            assert {row["method"] for row in researched} == {name}, board


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_passes_check_strategy(name, capsys):
    from maestro_tui.cli import main

    assert main(["check-strategy", str(ROOT / EXAMPLES[name])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[1:]] == [
        "ok    declaration", "ok    signal", "ok    look-ahead", "ok    recursion"]
