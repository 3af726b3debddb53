"""The trial matrix: cells backtested by the workers beside the tests are the ones the conductor would compute."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from agents.trials import TrialMatrix
from engine.configs import config_id, params_json
from engine.executor import ConfigSpec, ReturnsTask, run_returns_of, run_tests
from engine.executor import TestTask as Task  # not Test…: pytest would take it for a test class
from engine.params import Params
from engine.synthetic import synthetic_bars
from engine.windows import walk_forward_windows

BARS = synthetic_bars(4320 + 5 * 576, seed=9)  # six walk-forward windows
WINDOWS = walk_forward_windows(len(BARS), BARS.interval_ms)
TESTED = [Params(method="ema_crossover"), Params(method="macd_trend", atr_stop_mult=2.0)]  # what each test runs
PROPOSALS = [Params(method="ema_crossover", atr_stop_mult=2.0), Params(method="macd_trend"),
             Params(method="trend_breakout", hard_tp_usd=800.0)]


def a_session(matrix: TrialMatrix, before_tests: Callable[[TrialMatrix], None] = lambda _m: None) -> None:
    """Three proposals tried (none run by a test), then three tests of two other configs on the first windows."""
    for p in PROPOSALS:
        matrix.tried(p)
    before_tests(matrix)
    specs = tuple(ConfigSpec(config_id(p), "baseline", params_json(p)) for p in TESTED)
    for w in WINDOWS[:3]:
        task = Task(f"seg1_test{w.index + 1:03d}", 1, w.index + 1, w.index, start=w.start, end=w.end,
                    train_end=w.train_bars, validation_end=w.train_bars + w.validation_bars, configs=specs)
        (outcome,), _ = run_tests((task,), (), BARS)
        matrix.tested(w, outcome.rows)


def test_cells_the_workers_backtest_beside_the_tests_are_the_ones_the_conductor_would():
    alone = TrialMatrix(120, 3)
    a_session(alone)
    expected = alone.figures(BARS)  # no workers: every missing cell backtested here

    pool = ThreadPoolExecutor(2)
    sent: list[ReturnsTask] = []

    def submit(batch: tuple[ReturnsTask, ...]) -> Future:
        sent.extend(batch)
        return pool.submit(run_returns_of, batch, BARS)

    def reckon(m: TrialMatrix) -> None:
        # the proposals on each window the tests will run on: one task a window; two go beside the first test
        assert m.reckon_ahead(WINDOWS[:3], {config_id(p) for p in TESTED}) == 3
        batch = m.next_batch(2)
        m.started(batch, submit(batch))

    ahead = TrialMatrix(120, 3)
    a_session(ahead, reckon)
    got = ahead.figures(BARS, submit)  # the third task goes now
    pool.shutdown()
    assert got == expected and got["trials"] == 5 and got["tests"] == 3
    assert ahead.cells == alone.cells
    assert sorted((t.start, len(t.configs)) for t in sent) == [(w.start, 3) for w in WINDOWS[:3]], \
        "each window's missing cells went to the workers exactly once"


def test_a_batch_the_workers_lost_is_backtested_by_the_conductor():
    alone = TrialMatrix(120, 3)
    a_session(alone)
    expected = alone.figures(BARS)

    def lost(batch: tuple[ReturnsTask, ...]) -> Future:
        future: Future = Future()
        future.set_exception(RuntimeError("worker died"))
        return future

    matrix = TrialMatrix(120, 3)
    a_session(matrix)
    assert matrix.figures(BARS, lost) == expected
    assert matrix.cells == alone.cells
