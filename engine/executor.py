"""Running tests in worker processes: the task, the worker function, and a runner that survives deaths.

Every worker holds the session's bars once: a process pool's workers get them when they
start (`process_pool`), a dask cluster's as one scattered copy per worker (`run_test`'s
`bars`). A task names its window by place — bar indexes into those bars — so it stays a
few hundred bytes however long the window, and a worker needs no shared disk (a dask
worker on another machine works the same). Tests travel a bundle at a time (`run_tests`),
with a share of the trial matrix's cells (`ReturnsTask`). Workers return compact results —
numpy record arrays, metric rows and the text of the test's folder, which the conductor
stamps and saves — and never write the session directory (DESIGN.md §2).

A worker that dies takes the whole pool (engine.pool.WorkerPool) with it, and every test in
flight fails with `BrokenProcessPool`, the guilty one and the innocent alike. The runner
starts a fresh pool for new work and retries each of those tests once, alone in a pool of
its own, so the culprit is the only one that dies again — and only it is recorded failed.
"""

from __future__ import annotations

import mmap
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine import fork_server
from engine.configs import config_id, params_json
from engine.data import Bars
from engine.leaderboard import LeaderboardRow, rank_test_rows, row_from_metrics
from engine.params import Params
from engine.pool import WorkerPool
from engine.session import pid_alive
from engine.simulator import EPISODE_DTYPE, TRADE_DTYPE
from engine.strategies import load_files
from engine.sweep import Sweep, run_sweep, sweep_of
from engine.test_folder import folder_text
from engine.windows import Window

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
    """One test: one walk-forward window, several configs on it.

    The window is bars `start`..`end` - 1 of the session's bars; `train_end` and
    `validation_end` count from its start. `bars` is the window's slice, set by the worker
    from its own copy of the session's bars: a task is never sent with them.
    """

    test_id: str
    segment: int
    test: int
    window: int
    start: int
    end: int
    train_end: int
    validation_end: int
    configs: tuple[ConfigSpec, ...]
    episode_bars: int = 120
    blunder_bars: int = 3
    attempt: int = 1
    strategy_files: tuple[str, ...] = ()  # the trader's strategy files the configs may name (engine.strategies)
    session_id: str = ""  # for the events of the test folder's text
    bars: Bars | None = None  # the window's bars, in the worker only (`run_test`)


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
    # the test folder's files as the worker wrote them (engine.test_folder.folder_text): the conductor stamps and writes them
    files: dict[str, str] = field(default_factory=dict)


_PARAMS: dict[str, Params] = {}
_IDENTITY: dict[str, tuple[str, str]] = {}  # a config's (config_id, canonical params_json), by the JSON it came as
_SWEEPS: dict[tuple[str, ...], Sweep] = {}  # by its configs' JSON: a segment's tests run the same configs
_SWEEPS_KEPT = 256  # sets of configs kept; then the cache starts over
_SESSION_BARS: Bars | None = None  # a pool worker's copy of the session's bars, from `_start_worker`

_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "taker_buy_volume")


@dataclass(frozen=True)
class BarsFile:
    """Where a worker maps the session's bars from: a memory file of the conductor's, column after column."""

    path: str  # /proc/<conductor pid>/fd/<fd>: the conductor's memory file, opened again
    rows: int
    columns: tuple[tuple[str, str], ...]  # (Bars field, numpy dtype) in file order, `rows` values each
    interval_ms: int
    source: str
    gaps: tuple[Any, ...]

    def open(self) -> Bars:
        """The bars as arrays over a private mapping of the file: the pages are shared until written."""
        with open(self.path, "rb") as fh:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)  # writable arrays, as the kernels were compiled for
        arrays: dict[str, np.ndarray | None] = {"taker_buy_volume": None}
        offset = 0
        for name, dtype in self.columns:
            arrays[name] = np.frombuffer(mapped, dtype=dtype, count=self.rows, offset=offset)
            offset += self.rows * np.dtype(dtype).itemsize
        return Bars(**arrays, interval_ms=self.interval_ms, source=self.source, gaps=self.gaps)  # type: ignore[arg-type]  # the columns are Bars' own


class SharedBars:
    """The session's bars for the pool's workers, once: in one memory file each worker maps (Linux).

    `handle` is what a worker is given — a `BarsFile` of a few hundred bytes — or, where the
    system has no memory files, the bars themselves (each worker then unpickles a copy).
    The file lives as long as the conductor holds it open (`close`), and no longer: a
    conductor killed leaves nothing behind.
    """

    def __init__(self, bars: Bars) -> None:
        self._fd: int | None = None
        self.handle: Bars | BarsFile = bars
        if not hasattr(os, "memfd_create") or not os.path.isdir(f"/proc/{os.getpid()}/fd"):
            return
        columns = [(name, getattr(bars, name)) for name in _COLUMNS if getattr(bars, name) is not None]
        fd = os.memfd_create("maestro-bars")
        try:
            with open(fd, "wb", closefd=False) as fh:
                for _, values in columns:
                    fh.write(np.ascontiguousarray(values).data)
        except OSError:
            os.close(fd)
            return  # no room for it: pickled copies it is
        self._fd = fd
        self.handle = BarsFile(f"/proc/{os.getpid()}/fd/{fd}", len(bars), tuple((n, v.dtype.str) for n, v in columns),
                               bars.interval_ms, bars.source, bars.gaps)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _maybe_die(task: TestTask) -> None:
    fault = os.environ.get(FAULT_ENV, "")
    if not fault:
        return
    target, _, upto = fault.partition("@")
    if target == task.test_id and (not upto or task.attempt <= int(upto)):
        os.kill(os.getpid(), signal.SIGKILL)


def _session_bars(bars: Bars | None) -> Bars:
    """`bars` (the session's, given with the task) or else this worker's copy."""
    whole = bars if bars is not None else _SESSION_BARS
    if whole is None:
        raise RuntimeError("this worker holds no session bars (a pool made without them?)")
    return whole


def _params(text: str) -> Params:
    """A config's Params, parsed once per worker: Params also caches the kernel's vectors."""
    params = _PARAMS.get(text)
    if params is None:
        params = _PARAMS[text] = Params.model_validate_json(text)
    return params


def _identity(text: str) -> tuple[str, str]:
    """The config_id and canonical JSON of the config sent as `text`, worked out once per worker: a leaderboard
    row carries both, and working them out for every row made a row 74 µs where it is 33."""
    identity = _IDENTITY.get(text)
    if identity is None:
        params = _params(text)
        identity = _IDENTITY[text] = (config_id(params), params_json(params))
    return identity


def _sweep(texts: tuple[str, ...]) -> Sweep:
    """The sweep of the configs sent as `texts`, built once per worker (run_sweep only reads it)."""
    sweep = _SWEEPS.get(texts)
    if sweep is None:
        if len(_SWEEPS) >= _SWEEPS_KEPT:
            _SWEEPS.clear()
        sweep = _SWEEPS[texts] = sweep_of([_params(text) for text in texts])
    return sweep


def in_worker(task: TestTask, bars: Bars | None = None) -> TestTask:
    """`task` with its window's bars, cut from `bars` (the session's) or else from this worker's copy."""
    whole = _session_bars(bars)
    if not 0 <= task.start < task.end <= len(whole):
        raise ValueError(f"{task.test_id}: window bars {task.start}..{task.end} outside the session's {len(whole)}")
    return replace(task, bars=whole.slice(task.start, task.end))


def run_test(task: TestTask, bars: Bars | None = None) -> TestOutcome:
    """Backtest every config of `task` on its window, in one sweep (runs in a worker process).

    `bars` are the session's (a dask worker's scattered copy); None: this pool worker's own.
    """
    _maybe_die(task)
    task = in_worker(task, bars)
    assert task.bars is not None
    load_files(task.strategy_files)  # once per worker process: registered by path
    outcome = TestOutcome(task.test_id, task.segment, task.test, task.window, ok=True, attempts=task.attempt)
    sweep = _sweep(tuple(spec.params_json for spec in task.configs))
    swept = run_sweep(task.bars, sweep, train_end=task.train_end, validation_end=task.validation_end,
                      episode_bars=task.episode_bars, blunder_bars=task.blunder_bars)
    for i, spec in enumerate(task.configs):
        outcome.rows.append(row_from_metrics(task.test_id, sweep.config(i), spec.role, swept.by_phase(i),
                                             identity=_identity(spec.params_json)))
        if i == 0:
            outcome.trades = swept.trades_of(i)
            outcome.episodes = swept.episodes[i]
        else:
            outcome.extra_trades[spec.config_id] = swept.trades_of(i)
    return outcome


def run_test_with_files(task: TestTask, bars: Bars | None = None) -> TestOutcome:
    """`run_test`, and the text of the test's folder: the worker writes it, so the conductor only stamps and saves it."""
    outcome = run_test(task, bars)
    whole = _session_bars(bars)
    window = Window(task.window, task.start, task.start + task.train_end, task.start + task.validation_end, task.end)
    outcome.files = folder_text(outcome, whole, window, task.test_id, task.session_id, rank_test_rows(outcome.rows))
    outcome.extra_trades = {}  # nothing reads them in the conductor: not shipped back
    return outcome


@dataclass(frozen=True)
class ReturnsTask:
    """Configs on one window of which only the validation and holdout returns are wanted (a trial matrix's cells).

    The window is bars `start`..`end` - 1 of the session's bars, phases as in `TestTask`.
    """

    start: int
    end: int
    train_end: int
    validation_end: int
    configs: tuple[str, ...]  # each config's params_json
    episode_bars: int = 120
    blunder_bars: int = 3
    strategy_files: tuple[str, ...] = ()


def run_returns(task: ReturnsTask, bars: Bars | None = None) -> list[tuple[float, float]]:
    """Each config's (validation, holdout) return on the window: the PnL of the trades exiting in the
    phase (as Metrics.total_pnl sums it) per USD of notional. `bars` as for `run_test`."""
    window = _session_bars(bars).slice(task.start, task.end)
    load_files(task.strategy_files)
    sweep = _sweep(task.configs)
    swept = run_sweep(window, sweep, train_end=task.train_end, validation_end=task.validation_end,
                      episode_bars=task.episode_bars, blunder_bars=task.blunder_bars, metrics=False)
    out = []
    for k in range(len(sweep)):
        trades = swept.trades_of(k)  # run_backtest's, bit for bit
        exits, pnl = trades["exit_idx"], trades["pnl"]
        val = float(pnl[(exits >= task.train_end) & (exits < task.validation_end)].sum())
        hold = float(pnl[exits >= task.validation_end].sum())
        notional = sweep.config(k).notional_usd
        out.append((val / notional, hold / notional))
    return out


def run_returns_of(tasks: tuple[ReturnsTask, ...], bars: Bars | None = None) -> list[list[tuple[float, float]]]:
    """`run_returns` of each task: several windows' cells in one trip to a worker."""
    return [run_returns(task, bars) for task in tasks]


def run_tests(tasks: tuple[TestTask, ...], returns: tuple[ReturnsTask, ...] = (), bars: Bars | None = None,
              ) -> tuple[list[TestOutcome], list[list[tuple[float, float]]]]:
    """Several tests and trial cells in one trip to a worker: each test's outcome (a test that raised
    is a failed one, saying why) and `run_returns_of(returns)`."""
    outcomes = []
    for task in tasks:
        try:
            outcomes.append(run_test_with_files(task, bars))
        except Exception as err:  # noqa: BLE001 - one test's failure is recorded, the others go on
            outcomes.append(failed_outcome(task, raised(err)))
    return outcomes, run_returns_of(returns, bars)


def raised(err: BaseException) -> str:
    """What a test's failure records: the exception, then its traceback."""
    return f"{type(err).__name__}: {err}\n{''.join(traceback.format_exception(err))}"


def failed_outcome(task: TestTask, error: str) -> TestOutcome:
    """The record of a test that could not run."""
    return TestOutcome(task.test_id, task.segment, task.test, task.window, ok=False, attempts=task.attempt, error=error)


def _start_worker(conductor_pid: int, bars: Bars | BarsFile | None) -> None:
    """Worker initializer: keep the session's bars (mapped from the conductor's file), watch the conductor, and
    leave Ctrl-C to it.

    A terminal's Ctrl-C reaches the whole process group, workers too: the conductor's answer
    is to stop after the tests already running (exit 130, resumable), so those tests must go on.
    """
    global _SESSION_BARS
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _SESSION_BARS = bars.open() if isinstance(bars, BarsFile) else bars
    _watch_conductor(conductor_pid)


def _watch_conductor(conductor_pid: int) -> None:
    """A worker must not outlive a conductor killed with SIGKILL.

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


def process_pool(workers: int, bars: Bars | BarsFile | None) -> WorkerPool:
    """A pool of `workers` processes forked from the fork server, each given the session's bars once
    (`SharedBars.handle`)."""
    return WorkerPool(workers, fork_server.context(), _start_worker, (os.getpid(), bars))


class TestRunner:
    """Submits tests to an Executor and hands every outcome, success or failure, to `on_outcome`.

    `on_outcome` is called from executor threads; it must be thread-safe (a queue.put).
    `bars` is what `run_test` is given besides the task: None where the executor's workers
    hold the session's bars (`process_pool`), a dask Future of them on a cluster. A test
    retried alone runs in `make_isolated()`, a one-process pool holding the bars.
    """

    def __init__(self, make_executor: Callable[[], Executor], on_outcome: Callable[[TestOutcome], None],
                 make_isolated: Callable[[], Executor], bars: Any = None) -> None:
        self._make_executor = make_executor
        self._make_isolated = make_isolated
        self._bars = bars
        self._on_outcome = on_outcome
        self._lock = threading.Lock()
        self._generation = 0
        self._executor = make_executor()
        self._retries: queue.Queue[TestTask | None] = queue.Queue()
        self._retry_thread = threading.Thread(target=self._retry_loop, name="test-retries", daemon=True)
        self._retry_thread.start()
        self._closed = False

    def submit(self, tasks: tuple[TestTask, ...], returns: tuple[ReturnsTask, ...] = ()) -> Future:
        """Start `tasks` and the trial cells `returns` in one trip to a worker (`run_tests`).

        Each test's outcome arrives through `on_outcome`, in the order given; the future
        returned holds `run_returns_of(returns)` (or the exception that stopped them).
        """
        cells: Future = Future()
        with self._lock:
            generation, executor = self._generation, self._executor
        try:
            future = executor.submit(run_tests, tasks, returns, self._bars)
        except BrokenProcessPool as err:
            self._rebuild(generation)
            for task in tasks:
                self._retries.put(task)
            cells.set_exception(err)
            return cells
        future.add_done_callback(lambda f: self._done(f, tasks, cells, generation))
        return cells

    def returns(self, tasks: tuple[ReturnsTask, ...]) -> Future:
        """Start `tasks` on a worker; the future's result is `run_returns_of`'s (or the exception that stopped it)."""
        with self._lock:
            executor = self._executor
        return executor.submit(run_returns_of, tasks, self._bars)

    def _done(self, future: Future, tasks: tuple[TestTask, ...], cells: Future, generation: int) -> None:
        if future.cancelled():
            cells.cancel()
            return
        try:
            outcomes, values = future.result()
            cells.set_result(values)
        except BrokenProcessPool as err:
            cells.set_exception(err)
            self._rebuild(generation)
            for task in tasks:
                self._retries.put(task)
            return
        except Exception as err:  # noqa: BLE001 - any failure of one test is recorded, the session goes on
            cells.set_exception(err)
            if type(err).__name__ == "KilledWorker":  # dask already retried it on other workers
                outcomes = [failed_outcome(task, f"worker died: {err}") for task in tasks]
            else:
                outcomes = [failed_outcome(task, raised(err)) for task in tasks]
        for outcome in outcomes:
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
                outcome = isolated.submit(run_test_with_files, retry).result()
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
