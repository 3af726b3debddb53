"""The worker pool's side of a test: tasks that name their window, workers that hold the session's bars once.

(engine.executor's classes are named through the module: pytest would take `Test…` names for test classes.)
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agents.conductor import Conductor
from agents.rules import episode_stats
from agents.session_start import load_source, new_session_config
from agents.settings import Settings
from engine import executor, test_folder  # test_folder.test_files: not a test
from engine.configs import config_id, params_json
from engine.executor import BarsFile, ConfigSpec, SharedBars, in_worker, process_pool
from engine.jsonl import write_json_atomic
from engine.leaderboard import rank_test_rows
from engine.params import Params
from engine.reports.segment_results import SegmentTally
from engine.session import CONFIG, LEADERBOARD, SCORES, TEST_LOG, TRADES, SessionDir
from engine.synthetic import synthetic_bars
from engine.test_folder import EMITTED_AT, stamped
from engine.windows import Window, walk_forward_windows

BARS = synthetic_bars(4320 + 3 * 576, seed=5)  # four walk-forward windows
ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("ts", "open", "high", "low", "close", "volume", "taker_buy_volume")


def a_task(window: int, test: int = 1) -> executor.TestTask:
    w = walk_forward_windows(len(BARS), BARS.interval_ms)[window]
    configs = [Params(method="ema_crossover"), Params(method="macd_trend", atr_stop_mult=2.0)]
    specs = tuple(ConfigSpec(config_id(p), "baseline", params_json(p)) for p in configs)
    return executor.TestTask(f"seg1_test{test:03d}", 1, test, w.index, start=w.start, end=w.end, train_end=w.train_bars,
                    validation_end=w.train_bars + w.validation_bars, configs=specs)


def same_outcome(a: executor.TestOutcome, b: executor.TestOutcome) -> bool:
    return (a.ok and b.ok and a.rows == b.rows and np.array_equal(a.trades, b.trades)
            and np.array_equal(a.episodes, b.episodes) and bool(a.files) and a.files == b.files)


def test_the_conductors_task_names_its_window_and_carries_no_bars(tmp_path: Path):
    root = tmp_path / "session_2026-01-02_0304"
    root.mkdir()
    session = SessionDir(root)
    settings = Settings(segments=1, tests=3, seed=3, workers=1, sessions_dir=tmp_path)
    write_json_atomic(session.file(CONFIG), new_session_config(session, settings, "auto"))
    conductor = Conductor(session, echo=lambda _line: None)
    conductor.schedule.place(load_source(conductor.config["data"]), conductor.config["windows"], session.file(CONFIG))
    conductor.journal.open()
    try:
        seg = conductor.seg = conductor.segments.start(1)
        task = conductor.segments.task(seg, 2)
    finally:
        conductor.journal.close()
    w = conductor.schedule.window(conductor.schedule.index(1, 2))
    assert task.bars is None
    assert (task.start, task.end, task.window) == (w.start, w.end, w.index)
    assert len(pickle.dumps(task)) < 4_000  # a window's bars alone pickle to ~240 kB


def test_a_worker_cuts_the_window_from_the_session_bars_it_holds():
    task = a_task(2)
    placed = in_worker(task, BARS)
    assert placed.bars is not None and len(placed.bars) == task.end - task.start
    assert np.array_equal(placed.bars.close, BARS.close[task.start:task.end])
    assert np.array_equal(placed.bars.ts, BARS.ts[task.start:task.end])


def test_a_worker_without_the_session_bars_says_so():
    with pytest.raises(RuntimeError, match="holds no session bars"):
        in_worker(a_task(0))
    with pytest.raises(ValueError, match="outside the session"):
        in_worker(a_task(0), BARS.slice(0, 100))


def test_the_shared_bars_file_maps_back_to_the_very_same_bars():
    shared = SharedBars(BARS)
    try:
        handle = shared.handle
        assert isinstance(handle, BarsFile), "Linux has memory files: the bars are shared, not pickled per worker"
        assert len(pickle.dumps(handle)) < 2_000
        mapped = handle.open()
        for name in COLUMNS:
            ours, theirs = getattr(BARS, name), getattr(mapped, name)
            assert theirs.dtype == ours.dtype and np.array_equal(theirs, ours), name
            assert theirs.flags.c_contiguous and theirs.flags.writeable, name  # as the kernels were compiled for
        assert (mapped.interval_ms, mapped.source, mapped.gaps) == (BARS.interval_ms, BARS.source, BARS.gaps)
    finally:
        shared.close()


def test_pool_workers_backtest_on_their_own_copy_exactly_as_on_the_conductors_bars():
    shared = SharedBars(BARS)
    outcomes: queue.Queue[executor.TestOutcome] = queue.Queue()
    runner = executor.TestRunner(lambda: process_pool(2, shared.handle), outcomes.put, lambda: process_pool(1, shared.handle))
    try:
        tasks = [a_task(w, test=w + 1) for w in range(4)]
        for task in tasks:
            runner.submit((task,))
        got = {o.test_id: o for o in (outcomes.get(timeout=120) for _ in tasks)}
    finally:
        runner.shutdown()
        shared.close()
    for task in tasks:
        outcome = got[task.test_id]
        assert outcome.ok, outcome.error
        assert same_outcome(outcome, executor.run_test_with_files(task, BARS)), task.test_id


@pytest.mark.slow
def test_dask_workers_backtest_on_one_scattered_copy_exactly_as_the_pool_does():
    distributed = pytest.importorskip("distributed")
    outcomes: queue.Queue[executor.TestOutcome] = queue.Queue()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        scattered = client.scatter(BARS, broadcast=True, hash=False)
        runner = executor.TestRunner(client.get_executor, outcomes.put, lambda: process_pool(1, BARS), bars=scattered)
        tasks = [a_task(w, test=w + 1) for w in range(4)]
        try:
            for task in tasks:
                runner.submit((task,))
            got = {o.test_id: o for o in (outcomes.get(timeout=120) for _ in tasks)}
        finally:
            runner.shutdown()
    for task in tasks:
        assert same_outcome(got[task.test_id], executor.run_test_with_files(task, BARS)), task.test_id


def test_the_session_files_and_the_fork_server_load_without_the_kernels():
    # `maestro-tui run` starts it first thing: only then does it pay for numba, and the server meanwhile
    probe = ("import sys; import engine.fork_server, engine.session, engine.text, engine.jsonl; "
             "print(sorted(m for m in ('numba', 'pandas', 'engine.backtest') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.slow
def test_a_cold_warm_up_compiles_the_simulator_once_as_the_sweep_kernel_calls_it_and_leaves_the_rest_cached(tmp_path):
    """engine.warmup on an empty numba cache: the simulator is compiled with the types the sweep kernel gives it
    (the sweep adds no second copy, seconds of a cold start), run_backtest's kernel not at all, and what the
    other process compiled (the metrics kernel, every built-in's signals) is in the cache."""
    probe = ("import engine.warmup\n"
             "from engine.metrics import in_numba_cache, phase_table\n"
             "from engine.methods import BUILT_INS\n"
             "from engine.simulator import simulate, simulate_into, simulate_sweep\n"
             "print(len(simulate.signatures), len(simulate_into.signatures), len(simulate_sweep.signatures),\n"
             "      in_numba_cache(phase_table), all(in_numba_cache(s.signal) for s in BUILT_INS))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    assert out.stdout.split() == ["0", "1", "1", "True", "True"], out.stdout + out.stderr


def test_every_name_the_engine_package_offers_is_its_modules_own():
    import importlib

    import engine

    assert sorted(engine.__all__) == sorted(engine._HOME_OF)
    for name in engine.__all__:
        assert getattr(engine, name) is getattr(importlib.import_module(engine._HOME_OF[name]), name), name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        engine.nothing  # noqa: B018 - the lookup is the test


def test_the_trade_and_score_lines_are_those_of_the_event_dicts_byte_for_byte():
    """test_folder.trade_lines and score_lines write each line from the columns: the same bytes as encoding
    trade_records' and score_records' dicts, for every method and window, names that JSON escapes, a test
    with no trades, and a non-finite value (which goes the dict way)."""
    from tests.test_simulator import random_params

    encode = test_folder._ENCODE
    rng = np.random.default_rng(17)
    lines = 0
    for window in range(4):
        for test in range(1, 4):
            configs = [random_params(rng) for _ in range(2)]
            task = replace(a_task(window, test), configs=tuple(
                ConfigSpec(config_id(p), "baseline", params_json(p)) for p in configs))
            outcome = executor.run_test(task, BARS)
            w = Window(task.window, task.start, task.start + task.train_end, task.start + task.validation_end, task.end)
            cases = [("seg1_test001", "session_2026-01-02_0304", outcome)]
            if test == 1:  # names JSON escapes; a method name a trader's file gave
                named = replace(outcome, rows=[replace(outcome.rows[0], method='my "ünïcode" \\ strategy')])
                cases.append(('seg"1\\', "s\u00e9ssion\n", named))
            if test == 2 and len(outcome.trades):  # no trades; then a NaN and an infinity
                cases.append(("t", "s", replace(outcome, trades=outcome.trades[:0], episodes=outcome.episodes[:0])))
                odd_trades, odd_episodes = outcome.trades.copy(), outcome.episodes.copy()
                odd_trades["pnl"][0], odd_episodes["payoff"][0] = np.nan, np.inf
                cases.append(("t", "s", replace(outcome, trades=odd_trades, episodes=odd_episodes)))
            for tid, sid, case in cases:
                for emitted_at in (EMITTED_AT, "2026-01-02T03:04:05.678Z"):
                    want = "".join(encode(r) + "\n" for r in test_folder.trade_records(case, BARS, w, tid, sid, emitted_at))
                    assert test_folder.trade_lines(case, BARS, w, tid, sid, emitted_at) == want, (window, test, tid)
                    want = "".join(encode(r) + "\n" for r in test_folder.score_records(case, tid, sid, emitted_at))
                    assert test_folder.score_lines(case, tid, sid, emitted_at) == want, (window, test, tid)
                    lines += want.count("\n")
    assert lines > 500


def test_a_worker_writes_the_test_folder_the_conductor_would_and_leaves_it_the_time_of_writing():
    task = replace(a_task(1), session_id="session_2026-01-02_0304")
    outcome = executor.run_test_with_files(task, BARS)
    assert outcome.extra_trades == {}  # the conductor reads none: not shipped back
    window = Window(task.window, task.start, task.start + task.train_end, task.start + task.validation_end, task.end)
    expected, _, _ = test_folder.test_files(outcome, BARS, window, task.test_id, task.session_id, rank_test_rows(outcome.rows))
    stamp = "2026-01-02T03:04:05.678Z"
    files = stamped(outcome.files, stamp)
    assert sorted(files) == sorted(expected)
    assert files[LEADERBOARD] == expected[LEADERBOARD] and files[TEST_LOG] == expected[TEST_LOG]
    for name in (TRADES, SCORES):
        got = [json.loads(line) for line in files[name].splitlines()]
        want = [json.loads(line) for line in expected[name].splitlines()]
        assert got and {e["emitted_at"] for e in got} == {stamp}, name
        assert [{**e, "emitted_at": ""} for e in got] == [{**e, "emitted_at": ""} for e in want], name
    assert EMITTED_AT not in "".join(files.values())


def test_what_the_conductor_tallies_of_a_test_is_what_reading_its_folder_back_gives():
    """A test accounted for as it arrives (tallied_records) and after a crash (its files read back) alike."""
    task = replace(a_task(1), session_id="session_2026-01-02_0304")
    outcome = executor.run_test_with_files(task, BARS)
    files = stamped(outcome.files, "2026-01-02T03:04:05.678Z")
    read = {name: [json.loads(line) for line in files[name].splitlines()] for name in (TRADES, SCORES)}
    trades, scores = test_folder.tallied_records(outcome)
    assert len(trades) > 5 and {t["phase"] for t in trades} >= {"train", "validation"}
    assert trades == [{k: e[k] for k in test_folder.TALLIED_TRADE} for e in read[TRADES]]
    assert scores == [{k: e[k] for k in test_folder.TALLIED_SCORE} for e in read[SCORES]]
    # and what is made of them: the rules' episode stats, the segment's tallies
    assert episode_stats(3, trades, scores, 3) == episode_stats(3, read[TRADES], read[SCORES], 3)
    fresh, back = SegmentTally(), SegmentTally()
    row = rank_test_rows(outcome.rows)[0]
    fresh.add_test(trades, row, 3)
    back.add_test(read[TRADES], row, 3)
    assert fresh == back and fresh.by_phase["validation"].trades > 0


def test_the_rows_the_conductor_remembers_for_a_leaderboard_are_what_reading_it_gives(tmp_path: Path):
    # the reports read every test's leaderboard back; the conductor hands them the rows it wrote instead
    from engine import leaderboard

    outcome = executor.run_test_with_files(a_task(3), BARS)
    rows = rank_test_rows(outcome.rows)
    path = tmp_path / LEADERBOARD
    path.write_text(outcome.files[LEADERBOARD], encoding="utf-8")
    leaderboard._READ.pop(str(path), None)
    parsed = leaderboard.read_leaderboard_csv(path)
    assert parsed == rows and [r.rank for r in parsed] == list(range(1, len(rows) + 1))
    leaderboard.remember_leaderboard(path, rows)
    assert leaderboard.read_leaderboard_csv(path) == parsed
