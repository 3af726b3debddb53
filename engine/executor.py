"""Running tests in worker processes: the task, the worker function, and a runner that survives deaths.

A task carries its window's bars, so a worker needs no shared disk and no state (a dask
worker on another machine works the same). Workers return compact results — numpy record
arrays and metric dicts — and never write the session directory (DESIGN.md §2).

A worker that dies takes the whole `ProcessPoolExecutor` with it, and every test in
flight fails with `BrokenProcessPool`, the guilty one and the innocent alike. The runner
starts a fresh pool for new work and retries each of those tests once, alone in a pool of
its own, so the culprit is the only one that dies again — and only it is recorded failed.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace

import numpy as np

from engine.data import Bars
from engine.leaderboard import LeaderboardRow, row_from_metrics
from engine.params import Params
from engine.session import pid_alive
from engine.simulator import EPISODE_DTYPE, TRADE_DTYPE
from engine.strategies import load_files
from engine.sweep import run_sweep, sweep_of

# Fault injection for tests of the retry path: "seg1_test003" makes the worker running that
# test die with SIGKILL on every attempt; "seg1_test003@1" only on the first attempt.
FAULT_ENV = "MAESTRO_FAULT_KILL_WORKER"


@dataclass(frozen=True)
class ConfigSpec:
    """One configuration to backtest in a test: its id, role and full parameters (JSON)."""

    config_id: str
    role: str  # "chosen", "baseline" or "ensemble"
    params_json: str


@dataclass(frozen=True)
class TestTask:
    """One test: one walk-forward window, several configs on it. Bars are the window's slice."""

    test_id: str
    segment: int
    test: int
    window: int
    bars: Bars
    train_end: int
    validation_end: int
    configs: tuple[ConfigSpec, ...]
    episode_bars: int = 120
    blunder_bars: int = 3
    attempt: int = 1
    strategy_files: tuple[str, ...] = ()  # the trader's strategy files the configs may name (engine.strategies)


@dataclass
class TestOutcome:
    """What a worker sends back: every config's metrics, and the first config's trades and episodes."""

    test_id: str
    segment: int
    test: int
    window: int
    ok: bool
    attempts: int = 1
    error: str = ""
    rows: list[LeaderboardRow] = field(default_factory=list)  # one per config, in task order, unranked
    trades: np.ndarray = field(default_factory=lambda: np.empty(0, TRADE_DTYPE))
    episodes: np.ndarray = field(default_factory=lambda: np.empty(0, EPISODE_DTYPE))
    # each config's trades, for configs beyond the first (the ensemble needs them all)
    extra_trades: dict[str, np.ndarray] = field(default_factory=dict)


_PARAMS: dict[str, Params] = {}


def _maybe_die(task: TestTask) -> None:
    fault = os.environ.get(FAULT_ENV, "")
    if not fault:
        return
    target, _, upto = fault.partition("@")
    if target == task.test_id and (not upto or task.attempt <= int(upto)):
        os.kill(os.getpid(), signal.SIGKILL)


def run_test(task: TestTask) -> TestOutcome:
    """Backtest every config of `task` on its window, in one sweep (runs in a worker process)."""
    _maybe_die(task)
    load_files(task.strategy_files)  # once per worker process: registered by path
    outcome = TestOutcome(task.test_id, task.segment, task.test, task.window, ok=True, attempts=task.attempt)
    configs = []
    for spec in task.configs:
        params = _PARAMS.get(spec.params_json)
        if params is None:  # parsed once per worker: Params also caches the kernel's vectors
            params = _PARAMS[spec.params_json] = Params.model_validate_json(spec.params_json)
        configs.append(params)
    swept = run_sweep(task.bars, sweep_of(configs), train_end=task.train_end, validation_end=task.validation_end,
                      episode_bars=task.episode_bars, blunder_bars=task.blunder_bars)
    for i, (spec, params) in enumerate(zip(task.configs, configs)):
        outcome.rows.append(row_from_metrics(task.test_id, params, spec.role, swept.by_phase(i)))
        if i == 0:
            outcome.trades = swept.trades_of(i)
            outcome.episodes = swept.episodes[i]
        else:
            outcome.extra_trades[spec.config_id] = swept.trades_of(i)
    return outcome


def failed_outcome(task: TestTask, error: str) -> TestOutcome:
    """The record of a test that could not run."""
    return TestOutcome(task.test_id, task.segment, task.test, task.window, ok=False, attempts=task.attempt, error=error)


def _watch_conductor(conductor_pid: int) -> None:
    """Worker initializer: a worker must not outlive a conductor killed with SIGKILL.

    Workers are children of the fork server, and they hold both ends of the pool's queues,
    so nothing tells them their conductor is gone; a daemon thread checks twice a second.
    (A killed conductor stays a zombie until its parent reaps it, and a parent that reads
    the conductor's output first waits for these very workers to close it: hence pid_alive.)
    """

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if not pid_alive(conductor_pid):
                os._exit(0)

    threading.Thread(target=watch, name="conductor-watch", daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` processes forked from a fork server that has the engine imported."""
    ctx = multiprocessing.get_context("forkserver")
    # the fork server compiles the kernels once (engine.warmup), and every worker forked
    # from it starts with them compiled, instead of each compiling its own copy
    ctx.set_forkserver_preload(["engine.executor", "engine.warmup"])
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_watch_conductor, initargs=(os.getpid(),)
    )


class TestRunner:
    """Submits tests to an Executor and hands every outcome, success or failure, to `on_outcome`.

    `on_outcome` is called from executor threads; it must be thread-safe (a queue.put).
    """

    def __init__(self, make_executor: Callable[[], Executor], on_outcome: Callable[[TestOutcome], None],
                 make_isolated: Callable[[], Executor] | None = None) -> None:
        self._make_executor = make_executor
        self._make_isolated = make_isolated or (lambda: process_pool(1))
        self._on_outcome = on_outcome
        self._lock = threading.Lock()
        self._generation = 0
        self._executor = make_executor()
        self._retries: queue.Queue[TestTask | None] = queue.Queue()
        self._retry_thread = threading.Thread(target=self._retry_loop, name="test-retries", daemon=True)
        self._retry_thread.start()
        self._closed = False

    def submit(self, task: TestTask) -> None:
        """Start `task`; its outcome arrives through `on_outcome`."""
        with self._lock:
            generation, executor = self._generation, self._executor
        try:
            future = executor.submit(run_test, task)
        except BrokenProcessPool:
            self._rebuild(generation)
            self._retries.put(task)
            return
        future.add_done_callback(lambda f: self._done(f, task, generation))

    def _done(self, future: Future, task: TestTask, generation: int) -> None:
        if future.cancelled():
            return
        try:
            outcome = future.result()
        except BrokenProcessPool:
            self._rebuild(generation)
            self._retries.put(task)
            return
        except Exception as err:  # noqa: BLE001 - any failure of one test is recorded, the session goes on
            name = type(err).__name__
            if name == "KilledWorker":  # dask already retried it on other workers
                outcome = failed_outcome(task, f"worker died: {err}")
            else:
                outcome = failed_outcome(task, f"{name}: {err}\n{''.join(traceback.format_exception(err))}")
        self._on_outcome(outcome)

    def _rebuild(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation or self._closed:
                return  # another callback of the same broken pool got here first
            old = self._executor
            self._generation += 1
            self._executor = self._make_executor()
        try:
            old.shutdown(wait=False, cancel_futures=True)
        except TypeError:
            old.shutdown(wait=False)

    def _retry_loop(self) -> None:
        while True:
            task = self._retries.get()
            if task is None:
                return
            retry = replace(task, attempt=task.attempt + 1)
            isolated = self._make_isolated()
            try:
                outcome = isolated.submit(run_test, retry).result()
            except BrokenProcessPool:
                outcome = failed_outcome(retry, f"worker process died twice running {task.test_id}")
            except Exception as err:  # noqa: BLE001
                outcome = failed_outcome(retry, f"{type(err).__name__}: {err}")
            finally:
                isolated.shutdown(wait=True, cancel_futures=True)
            if not self._closed:
                self._on_outcome(outcome)

    def shutdown(self, cancel: bool = False) -> None:
        """Stop the pool; `cancel` drops tests not started yet."""
        with self._lock:
            self._closed = True
            executor = self._executor
        self._retries.put(None)
        try:
            executor.shutdown(wait=True, cancel_futures=cancel)
        except TypeError:  # dask's ClientExecutor knows only `wait`
            executor.shutdown(wait=True)
