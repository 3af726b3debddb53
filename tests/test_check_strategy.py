"""`maestro-tui check-strategy`: a trader's strategy file checked before a session uses it.

Each classic look-ahead is refused with the bar that changed; each declaration error, a
malformed signal, the trader's exception and a file that does not import get one line naming
the file, and exit 2; `run --strategy` refuses the same strategy in the same words before
any session folder exists; the built-in breakout passes.

Most cases run the command in this process (`main`), the registry put back after each; the
ones about the process itself (exit code, stderr, no folder) run it as a subprocess.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from engine import synthetic_bars
from engine.strategy import Parameter, Strategy, StrategyError
from engine.strategy_check import check_strategy, strategy_param_sets
from maestro_tui.cli import main
from tests.sessions import cli, write_binance_csv

BARS = synthetic_bars(6000, seed=11)

# a frame strategy with one parameter; `body` is the signal function's body over `close`
FRAME = '''\
import numpy as np
import pandas as pd
from engine.strategy import Parameter, Strategy


def signal(bars, params):
    close = bars.close
{body}


STRATEGY = Strategy(
    name={name!r},
    description="a test strategy",
    parameters=(Parameter("window", 12, lo=3, hi=48, max_step=6, unit="bars"),),
    warmup=lambda p: {warmup},
    signal=signal,
    form="frame",
)
'''


def sides(long: str, short: str) -> str:
    """The signal's last line: +1 where `long`, else -1 where `short`, else 0."""
    return f"return np.where({long}, 1, np.where({short}, -1, 0))"


def frame_strategy(folder: Path, name: str, body: str, warmup: str = "p['window']") -> Path:
    path = folder / f"{name}.py"
    path.write_text(FRAME.format(name=name, body=textwrap.indent(textwrap.dedent(body).strip("\n"), "    "), warmup=warmup))
    return path


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the first line of `path` holding `text`."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def check_strategy_cli(own_registry, capsys):
    """`maestro-tui check-strategy ARGS` in this process."""

    def run(*args: str) -> Run:
        code = main(["check-strategy", *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def refused_in_one_line(run: Run) -> str:
    """The one line on stderr of a run that exited 2, without the program's name."""
    assert run.code == 2, run.out + run.err
    lines = run.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in run.err, run.err
    assert lines[0].startswith("maestro-tui: ")
    return lines[0].removeprefix("maestro-tui: ")


# ------------------------------------------------------------------------------ look-ahead

# the classic forms, each as a trader writes it in pandas
LOOKAHEAD = {
    "next_close": sides("close.shift(-1) > close", "close.shift(-1) < close"),
    "centred_window": 'mean = close.rolling(params["window"], center=True).mean()\n' + sides("close > mean", "close < mean"),
    "series_max": "share = close / close.max()\n" + sides("share > 0.98", "share < 0.95"),
    "hour_close": 'hour = close.resample("1h").last().reindex(close.index, method="ffill")\n' + sides("hour > close", "hour < close"),
}
# honest: the close against the mean of the `window` closes up to it
ROLLING_MEAN = 'mean = close.rolling(params["window"]).mean()\n' + sides("close > mean * 1.001", "close < mean * 0.999")


@pytest.mark.parametrize("form", list(LOOKAHEAD))
def test_each_classic_lookahead_is_refused_with_the_bar_that_changed(tmp_path, check_strategy_cli, form):
    path = frame_strategy(tmp_path, form, LOOKAHEAD[form])
    run = check_strategy_cli(str(path))
    refusal = refused_in_one_line(run)
    assert refusal.startswith(f"strategy {form} ({path}): look-ahead: signal at bar ")
    assert f"FAIL  {refusal.split(': ', 1)[1]}" in run.out.splitlines()
    bar, cut = (int(x) for x in re.search(r"signal at bar (\d+) .* after bar (\d+) were", refusal).groups())
    assert bar <= cut
    if form == "next_close":
        assert bar == cut  # only the cut bar reads the bar after it
    elif form == "centred_window":
        assert cut - 6 <= bar  # half of the default window of 12 bars reaches past the cut
    elif form == "hour_close":
        assert cut - 11 <= bar  # a bar of the cut's hour


def test_a_lookahead_failure_still_runs_the_recursion_check(tmp_path, check_strategy_cli):
    run = check_strategy_cli(str(frame_strategy(tmp_path, "next_close", LOOKAHEAD["next_close"])))
    outcomes = [line.split()[0] for line in run.out.splitlines()[1:]]
    checks = [line.split()[1] for line in run.out.splitlines()[1:]]
    assert checks == ["declaration:", "signal:", "look-ahead:", "recursion:"]
    assert outcomes == ["ok", "ok", "FAIL", "ok"]


def test_a_lookahead_is_refused_in_one_line_on_stderr_by_the_command(tmp_path):
    path = frame_strategy(tmp_path, "next_close", LOOKAHEAD["next_close"])
    out = cli("check-strategy", str(path))
    assert out.returncode == 2
    assert out.stderr.startswith(f"maestro-tui: strategy next_close ({path}): look-ahead: signal at bar ")
    assert len(out.stderr.splitlines()) == 1 and "Traceback" not in out.stderr


def test_a_warmup_shorter_than_the_window_is_refused_by_the_recursion_check(tmp_path, check_strategy_cli):
    path = frame_strategy(tmp_path, "short_warmup", ROLLING_MEAN, warmup="p['window'] - 2")
    refusal = refused_in_one_line(check_strategy_cli(str(path)))
    assert re.match(rf"strategy short_warmup \({re.escape(str(path))}\): recursion: signal at bar \d+ .* "
                    r"when the series started \d+ bars? later \(declared warm-up \d+ bars\); params window=\d+$", refusal)


def test_an_honest_pandas_strategy_passes_with_one_ok_line_per_check(tmp_path, check_strategy_cli):
    path = frame_strategy(tmp_path, "honest", ROLLING_MEAN, warmup="p['window'] - 1")
    run = check_strategy_cli(str(path))
    assert run.code == 0 and not run.err, run.err
    header, *lines = run.out.splitlines()
    assert header.startswith(f"honest ({path}) on 20000 of the ")
    assert lines[0] == "ok    declaration: 1 parameter (window), defaults in bounds, steps positive, no shared name taken"
    assert lines[2] == "ok    look-ahead: 5 parameter sets × 24 cuts, no signal changed"
    assert lines[3].startswith("ok    recursion: 5 parameter sets × 8 starts past the declared warm-up of ")


def test_data_from_a_file_is_checked_on_its_own_bars(tmp_path, check_strategy_cli):
    data = write_binance_csv(tmp_path / "bars.csv", synthetic_bars(3000, seed=5))
    run = check_strategy_cli("trend_breakout", "--data", str(data))
    assert run.code == 0, run.err
    assert run.out.startswith(f"trend_breakout (built-in) on 3000 of the 3000 bars of {data}")


# ------------------------------------------------------------------- the built-in strategies


def test_trend_breakout_passes_every_check():
    out = cli("check-strategy", "trend_breakout")
    assert out.returncode == 0 and not out.stderr, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[1:]] == [
        "ok    declaration", "ok    signal", "ok    look-ahead", "ok    recursion"]


@pytest.mark.parametrize("name", ["ema_crossover", "macd_trend"])
def test_the_ema_builtins_pass_every_check_with_their_settling_warmup(check_strategy_cli, name):
    run = check_strategy_cli(name)
    assert run.code == 0, run.out + run.err
    assert [line.split(":")[0] for line in run.out.splitlines()[1:]] == [
        "ok    declaration", "ok    signal", "ok    look-ahead", "ok    recursion"]


def test_an_unknown_name_lists_the_registered_ones(check_strategy_cli):
    refusal = refused_in_one_line(check_strategy_cli("trend_breakot"))
    assert refusal.startswith("no strategy named 'trend_breakot'; registered: ema_crossover, macd_trend, trend_breakout")


# ---------------------------------------------------------------------- declaration errors

DECLARED = '''\
import numpy as np
from engine.strategy import Parameter, Strategy


def signal(bars, params):
    return np.zeros(len(bars), np.int8)


STRATEGY = Strategy(
    name={name!r},
    description="a test strategy",
    parameters=({parameters}),
    warmup=lambda p: 10,
    signal=signal,
    form="frame",
)
'''


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        ('Parameter("window", 500, lo=3, hi=200, max_step=10),', "window: default 500 is outside its bounds [3, 200]"),
        ('Parameter("window", 20, lo=3, hi=200, max_step=0),', "window: max_step must be a positive number, not 0"),
        ('Parameter("level", 0.5, lo=0, hi=1, max_step=-0.1),', "level: max_step must be a positive number, not -0.1"),
        ('Parameter("window", 20, lo=3, hi=200, max_step=10), Parameter("window", 30, lo=3, hi=200, max_step=10)',
         "parameter 'window' is declared twice"),
        ('Parameter("atr_stop_mult", 2.0, lo=0.5, hi=5, max_step=0.5),',
         "parameter 'atr_stop_mult' shadows the shared parameter of that name (exits, gates, costs, size)"),
        ('Parameter("look back", 20, lo=3, hi=200, max_step=10),', "parameter name 'look back' is not a Python identifier"),
    ],
    ids=["default-outside-bounds", "zero-step", "negative-step", "duplicate", "shadows-shared", "not-an-identifier"],
)
def test_a_declaration_error_is_one_line_naming_the_file(tmp_path, check_strategy_cli, parameters, problem):
    path = tmp_path / "declared.py"
    path.write_text(DECLARED.format(name="declared", parameters=parameters))
    assert refused_in_one_line(check_strategy_cli(str(path))) == f"strategy declared ({path}): {problem}"


def test_a_strategy_name_that_is_no_identifier_is_refused(tmp_path, check_strategy_cli):
    path = tmp_path / "declared.py"
    path.write_text(DECLARED.format(name="my strategy", parameters=""))
    assert refused_in_one_line(check_strategy_cli(str(path))) == (
        f"strategy my strategy ({path}): name 'my strategy' is not an identifier (letters, digits, _)")


def test_a_file_without_a_strategy_is_refused(tmp_path, check_strategy_cli):
    path = tmp_path / "empty.py"
    path.write_text("import numpy as np\n\nSTRATEGIES = []\n")
    assert refused_in_one_line(check_strategy_cli(str(path))) == (
        f"strategy file {path}: declares no strategy (a module-level STRATEGY = Strategy(...) or STRATEGIES = [...])")


def test_a_strategy_of_the_wrong_type_is_refused(tmp_path, check_strategy_cli):
    path = tmp_path / "wrong.py"
    path.write_text('STRATEGY = {"name": "wrong", "signal": None}\n')
    assert refused_in_one_line(check_strategy_cli(str(path))) == (
        f"strategy file {path}: STRATEGY is a dict, not an engine.strategy.Strategy")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("return np.zeros(len(bars) - 1, np.int8)", "signal has 19999 values for 20000 bars; it should have one per bar"),
        ("out = np.zeros(len(bars)); out[:7] = np.nan\n    return out",
         "signal is NaN at bar 0 (7 NaN in all); give 0 where there is no signal"),
        ("return np.full(len(bars), 2)", "signal is 2 at bar 0; it should be +1 (long), -1 (short) or 0 (none)"),
    ],
    ids=["wrong-length", "nan", "not-a-side"],
)
def test_a_malformed_signal_is_one_line_and_the_later_checks_are_skipped(tmp_path, check_strategy_cli, body, problem):
    path = tmp_path / "malformed.py"
    path.write_text(DECLARED.format(name="malformed", parameters="").replace(
        "return np.zeros(len(bars), np.int8)", body))
    run = check_strategy_cli(str(path))
    assert refused_in_one_line(run) == f"strategy malformed ({path}): signal: {problem}; params (none), the defaults"
    assert run.out.splitlines()[-2:] == [
        "skip  look-ahead: not checked, as the signal check failed",
        "skip  recursion: not checked, as the signal check failed",
    ]


# --------------------------------------------------------------------- the trader's errors


def test_an_exception_in_the_signal_names_the_file_and_the_line_that_raised(tmp_path, check_strategy_cli):
    path = frame_strategy(tmp_path, "raises", """
        if params["window"] > 3:
            raise KeyError("volume_ma")
        return np.zeros(len(close), np.int8)
    """)
    refusal = refused_in_one_line(check_strategy_cli(str(path)))
    line = line_of(path, "raise KeyError")
    assert refusal == (f"strategy raises ({path}): signal: its signal raised KeyError: 'volume_ma' "
                       f"(at {path.resolve()}:{line}); params window=12, the defaults")


def test_an_exception_only_on_cut_bars_names_the_line_and_the_params(tmp_path, check_strategy_cli):
    path = frame_strategy(tmp_path, "fixed_length", """
        if len(close) < 20000:
            raise ValueError("needs the whole year")
        return np.zeros(len(close), np.int8)
    """)
    refusal = refused_in_one_line(check_strategy_cli(str(path)))
    line = line_of(path, "raise ValueError")
    assert refusal == (f"strategy fixed_length ({path}): look-ahead: on the bars cut or altered for the check, its signal "
                       f"raised ValueError: needs the whole year (at {path.resolve()}:{line}); params window=12")


def test_a_syntax_error_names_the_file_and_line(tmp_path, check_strategy_cli):
    path = tmp_path / "typo.py"
    path.write_text("import numpy as np\n\n\ndef signal(bars, params)\n    return 0\n")
    refusal = refused_in_one_line(check_strategy_cli(str(path)))
    assert refusal.startswith(f"strategy file {path}: SyntaxError: ")
    assert refusal.endswith(f"(at {path.resolve()}:4)")


def test_an_exception_at_import_names_the_file_and_line(tmp_path, check_strategy_cli):
    path = tmp_path / "imports.py"
    path.write_text("import numpy as np\n\nTHRESHOLD = 1 / 0\n")
    assert refused_in_one_line(check_strategy_cli(str(path))) == (
        f"strategy file {path}: ZeroDivisionError: division by zero (at {path.resolve()}:3)")


def test_a_missing_file_is_one_line(tmp_path, check_strategy_cli):
    path = tmp_path / "nowhere.py"
    assert refused_in_one_line(check_strategy_cli(str(path))) == f"strategy file {path}: No such file or directory"


# ----------------------------------------------------------------- before a session starts


def test_run_refuses_a_strategy_that_looks_ahead_in_the_same_words_before_any_folder(tmp_path):
    path = frame_strategy(tmp_path, "next_close", LOOKAHEAD["next_close"])
    checked = cli("check-strategy", str(path))  # the bars and draws a session on the same settings checks
    ran = cli("run", "--headless", "--strategy", str(path), "--sessions-dir", str(tmp_path / "sessions"))
    assert ran.returncode == 2 and len(ran.stderr.splitlines()) == 1, ran.stderr
    assert ran.stderr == checked.stderr
    assert not (tmp_path / "sessions").exists() or not any((tmp_path / "sessions").iterdir())


# ------------------------------------------------------------------------- parameter sets


def flat(bars, params):
    return np.zeros(len(bars), np.int8)


def test_the_parameter_sets_keep_to_the_strategys_own_rule_and_flip_each_switch():
    strategy = Strategy(
        "ruled", "a test strategy",
        (Parameter("fast", 5, lo=2, hi=60, max_step=5), Parameter("slow", 40, lo=3, hi=80, max_step=5),
         Parameter("gate", True), Parameter("filter", False)),
        warmup=lambda p: p["slow"], signal=flat, form="frame",
        check=lambda p: None if 4 * p["fast"] < p["slow"] else "fast must be under a quarter of slow",
    )
    sets = strategy_param_sets(strategy, 8, seed=1)
    assert sets[0] == strategy.defaults()
    assert all(4 * s["fast"] < s["slow"] for s in sets)
    assert {s["gate"] for s in sets} == {s["filter"] for s in sets} == {False, True}


def test_defaults_the_strategys_rule_refuses_fail_the_declaration():
    strategy = Strategy(
        "ruled", "a test strategy", (Parameter("fast", 50, lo=2, hi=60, max_step=5), Parameter("slow", 40, lo=3, hi=80, max_step=5)),
        warmup=lambda p: p["slow"], signal=flat, form="frame",
        check=lambda p: None if p["fast"] < p["slow"] else "fast must be below slow",
    )
    verdict = check_strategy(strategy, BARS)
    assert not verdict.ok
    assert verdict.refusal == ("strategy ruled: declaration: the defaults fast=50 slow=40 break the strategy's own "
                               "check rule: fast must be below slow")
    assert [line.split()[0] for line in verdict.lines] == ["FAIL", "skip", "skip", "skip"]


def test_a_warmup_that_raises_fails_the_recursion_check_with_its_line():
    strategy = Strategy("warm", "a test strategy", (), warmup=lambda p: p["window"], signal=flat, form="frame")
    verdict = check_strategy(strategy, BARS)
    assert verdict.lines[:3] == [
        "ok    declaration: no parameters of its own",
        "ok    signal: +1/-1/0 at each of 6000 bars on the defaults (0 long, 0 short)",
        "ok    look-ahead: 1 parameter set × 24 cuts, no signal changed",
    ]
    here = Path(__file__).resolve()
    line = line_of(here, 'Strategy("warm"')
    assert verdict.refusal == f"strategy warm: recursion: its warm-up raised KeyError: 'window' (at {here}:{line}) on params (none)"


def test_a_session_start_leaves_the_builtins_unchecked_and_refuses_a_bad_file(tmp_path, monkeypatch, own_registry):
    from agents import session_start as start
    from agents.settings import load_settings

    checked: list[str] = []
    real = start.check_strategy

    def check_strategy(strategy, bars, **options):
        checked.append(strategy.name)
        return real(strategy, bars, **options)

    monkeypatch.setattr(start, "check_strategy", check_strategy)
    start.session_start(load_settings(sessions_dir=str(tmp_path / "sessions"), segments=1, tests=2))
    assert checked == []
    path = frame_strategy(tmp_path, "next_close", LOOKAHEAD["next_close"])
    settings = load_settings(sessions_dir=str(tmp_path / "sessions"), segments=1, tests=2,
                             strategies=["trend_breakout", str(path)])
    with pytest.raises(StrategyError, match=rf"^strategy next_close \({re.escape(str(path))}\): look-ahead: signal at bar"):
        start.session_start(settings)
    assert checked == ["next_close"]


def test_a_numba_kernel_that_does_not_compile_names_its_file_and_line_in_one_line(tmp_path, check_strategy_cli):
    path = tmp_path / "bad_numba.py"
    path.write_text(
        "import numpy as np\nfrom numba import njit\nfrom engine.strategy import Parameter, Strategy\n\n\n"
        "@njit\ndef sig(o, h, l, c, v, t, p):\n    out = np.zeros(c.shape[0], np.int8)\n"
        "    out[0] = 'x' + c[0]\n    return out\n\n\n"
        "STRATEGY = Strategy('bad_numba', 'a typing error', (Parameter('n', 5, lo=1, hi=10, max_step=1),),\n"
        "                    warmup=lambda p: 5, signal=sig)\n")
    refusal = refused_in_one_line(check_strategy_cli(str(path)))
    assert "its signal raised TypingError" in refusal and f'{path.name}", line 9' in refusal, refusal
