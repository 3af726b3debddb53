"""The command line: help, exit codes and one-line reasons for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from maestro_tui.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "maestro_tui.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_commands_that_exist():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("backtest", "check-data"):
        assert command in out.stdout


def test_bad_data_file_exits_2_with_one_line_naming_file_row_and_field(tmp_path):
    bad = tmp_path / "bars.csv"
    bad.write_text(
        "timestamp,open,high,low,close,volume\n"
        "1700000000000,100,101,99,100,5\n"
        "1700000300000,100,99,99.5,100,5\n"
        "1700000600000,100,101,99,100,5\n"
    )
    out = run_cli("check-data", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert str(bad) in lines[0] and "row 3" in lines[0] and "high" in lines[0]
    assert "Traceback" not in out.stderr


def test_missing_file_is_bad_input_not_a_traceback(tmp_path):
    out = run_cli("backtest", "--data", str(tmp_path / "nope.csv"))
    assert out.returncode == 2 and "nope.csv" in out.stderr and "Traceback" not in out.stderr


def test_unknown_command_is_bad_usage():
    assert run_cli("frobnicate").returncode == 2


def test_backtest_on_synthetic_data_prints_one_row_per_method_under_validation_and_holdout_headings(capsys):
    assert main(["backtest", "--windows", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    groups, header = lines[1].split(), lines[2].split()
    assert "validation" in groups and "holdout" in groups
    assert lines[1].index("validation") < lines[1].index("holdout")
    assert header == ["method", "trades", "hit", "payoff", "pnl", "USD", "worst", "dd", "Sharpe", "score",
                      "trades", "pnl", "USD"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:6]}
    assert set(rows) == {"ema_crossover", "macd_trend", "trend_breakout"}
    assert all(len(cells) == 9 for cells in rows.values())
    legend = " ".join(lines[6:])
    for column in ("hit", "payoff", "worst dd", "Sharpe", "score", "holdout"):
        assert f"{column}:" in legend


def test_backtest_table_groups_thousands_and_sums_holdout_apart_from_validation():
    from engine.metrics import Metrics
    from maestro_tui.cli import backtest_table

    def m(pnl: float, trades: int = 1_200, sharpe: float = 0.0) -> Metrics:
        return Metrics(n_trades=trades, hit=0.5, payoff=1.0, total_pnl=pnl, maxdd=-12_345.0, blunders=0,
                       blunders_per_100=0.0, high_vol_share=0.0, sharpe=sharpe, score=50.0)

    lines = backtest_table({"macd_trend": {"validation": [m(-100_000.0, sharpe=1.0), m(-4_453.0, sharpe=2.0)],
                                           "holdout": [m(2_500.0, trades=600), m(500.0, trades=600)]}})
    assert lines[2].split()[1:] == ["2,400", "0.500", "1.00", "-104,453", "-12,345", "1.50", "50.0", "1,200", "3,000"]


def test_version_prints_the_package_version_and_exits_0():
    from importlib.metadata import version

    out = run_cli("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"maestro-tui {version('maestro-tui')}"


def test_version_falls_back_to_pyproject_when_the_package_is_not_installed(monkeypatch):
    import importlib.metadata
    import tomllib

    from maestro_tui.cli import package_version
    from tests.sessions import ROOT

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert package_version() == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_help_hides_the_internal_conduct_command_which_still_parses():
    from maestro_tui.cli import build_parser

    out = run_cli("--help")
    assert "conduct" not in out.stdout and "SUPPRESS" not in out.stdout
    assert build_parser().parse_args(["conduct", "some/session"]).command == "conduct"


def test_a_conductor_starts_no_worker_pool_of_its_own_for_a_session_on_a_dask_cluster(tmp_path, monkeypatch):
    import json

    from maestro_tui import cli

    monkeypatch.delenv("MAESTRO_DASK", raising=False)
    session = tmp_path / "session_2026-01-02_0304"
    session.mkdir()
    (session / "session_config.json").write_text(json.dumps({"settings": {"dask": "tcp://10.0.0.5:8786"}}))
    named = lambda *argv: cli._dask_named(cli.build_parser().parse_args(list(argv)))  # noqa: E731
    assert named("conduct", str(session)) == "tcp://10.0.0.5:8786"
    assert named("run", "--resume", str(session)) == "tcp://10.0.0.5:8786"
    assert named("run", "--headless", "--dask", "tcp://h:1") == "tcp://h:1"
    assert named("run", "--headless") is None
    monkeypatch.setenv("MAESTRO_DASK", "tcp://env:2")
    assert named("run", "--headless") == "tcp://env:2"
    started = []
    monkeypatch.setattr("engine.fork_server.start", lambda: started.append(True))
    cli._start_workers_early("tcp://h:1")
    assert not started
    cli._start_workers_early(None)
    assert started == [True]


def test_a_headless_run_ends_at_once_with_its_files_closed_and_nothing_left_in_the_temporary_folder(tmp_path: Path):
    """A conducting process skips Python's teardown (cli._exit_at_once, engine.fork_server_exit); what its exit
    functions do still happens: the log's last line is written, multiprocessing removes its temporary folder."""
    temp = Path(tempfile.mkdtemp(prefix="mt-"))  # short: multiprocessing puts a socket in it (AF_UNIX paths ≤ 107 bytes)
    out = subprocess.run(
        [sys.executable, "-m", "maestro_tui.cli", "run", "--headless", "--segments", "1", "--tests", "6",
         "--sessions-dir", str(tmp_path / "sessions")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(temp)},
    )  # returns once every process holding its output has ended: the conductor, the fork server, the workers
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("done in ")
    (session,) = (tmp_path / "sessions").iterdir()
    assert (session / "session_summary.md").is_file()
    assert '"state":"finished"' in (session / "conductor.json").read_text().replace(" ", "")
    assert (session / "conductor.log").read_text().endswith("\n")
    assert list(temp.iterdir()) == []
    temp.rmdir()


def test_a_temporary_folder_too_long_for_the_workers_socket_is_one_line_naming_it(tmp_path: Path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    out = subprocess.run([sys.executable, "-m", "maestro_tui.cli", "run", "--headless", "--segments", "1", "--tests", "2",
                          "--sessions-dir", str(tmp_path / "sessions")],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "TMPDIR": str(deep)})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(deep) in lines[0] and "TMPDIR" in lines[0] and "Traceback" not in out.stderr
    assert not (tmp_path / "sessions").exists() or not any((tmp_path / "sessions").iterdir())
