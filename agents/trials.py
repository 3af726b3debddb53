"""Every config a session tried, on every window it tested: how much of its best is selection.

A **trial** is a distinct config (by config_id) the session put forward: each of the
Strategist's proposals (chosen or not: the Critic chose among them), each research config
as patched by a plan — the agents' and the humans' edits alike — the ensemble members and
the baselines. The trial matrix has one row per test (walk-forward window, in session
order) and one column per trial; a cell is the trial's validation return on that window,
PnL / notional, from the same backtest the test runs. Cells the session's tests already
hold are read from their leaderboard rows; the others are backtested once, by the worker
pool: those a segment will miss go with its tests (`reckon_ahead`, `next_batch`), the rest
when the figures are asked for; a batch the workers lost is backtested here.

From it (engine.overfit): the probability of backtest overfitting by CSCV, and how many
trials were profitable out of sample and on holdout next to how many chance would give.
Holdout is only counted here, never used to choose.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.configs import config_id, params_json
from engine.data import Bars
from engine.executor import ReturnsTask, run_returns
from engine.leaderboard import LeaderboardRow
from engine.overfit import chance_profitable, pbo_cscv
from engine.params import Params
from engine.windows import Window

log = logging.getLogger("maestro.trials")

# Starts tasks on a worker (engine.executor.TestRunner.returns); None: computed here, at once.
Submit = Callable[[tuple[ReturnsTask, ...]], Future] | None
Cell = tuple[str, int, int]  # (config_id, window start, window end): a cell's value depends on nothing else


@dataclass
class TrialMatrix:
    """The trials and their returns per test; `figures()` fills what is missing and measures."""

    episode_bars: int
    blunder_bars: int
    strategy_files: tuple[str, ...] = ()  # the trader's, which the workers load to backtest them
    trials: dict[str, Params] = field(default_factory=dict)  # config_id -> params, in the order first tried
    tests: list[Window] = field(default_factory=list)  # the window of each test that ran, in session order
    cells: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)  # (config_id, row) -> (val, hold)
    _json: dict[str, str] = field(default_factory=dict)  # config_id -> params_json
    # cells being backtested ahead of `figures`: each one's task, its place in it and its future (once started)
    _ahead: dict[Cell, tuple[ReturnsTask, int]] = field(default_factory=dict)
    _started: dict[int, tuple[Future, int]] = field(default_factory=dict)  # id(task) -> its batch's future, its place
    _queued: deque[ReturnsTask] = field(default_factory=deque)  # reckoned ahead, not started yet

    def tried(self, params: Params) -> None:
        cid = config_id(params)
        if cid not in self.trials:
            self.trials[cid] = params
            self._json[cid] = params_json(params)

    def tested(self, window: Window, rows: list[LeaderboardRow]) -> None:
        """A test that ran on `window`: its rows' configs are trials, and their results are cells."""
        row = len(self.tests)
        self.tests.append(window)
        for r in rows:
            params = self.trials.get(r.config_id)
            if params is None:  # parsed once per config, not once per test: the same id is the same parameters
                params = self.trials[r.config_id] = Params.model_validate_json(r.params_json)
                self._json[r.config_id] = r.params_json
            self.cells[(r.config_id, row)] = (r.val_pnl / params.notional_usd, r.hold_pnl / params.notional_usd)

    # ------------------------------------------------------------ the cells no test holds

    def reckon_ahead(self, windows: Iterable[Window], running: set[str]) -> int:
        """Queue the cells the next `figures` will miss: every trial's on the windows tested so far and on
        `windows` (the tests to come), except the configs those tests run (`running`), whose cells they
        bring. They go to the workers beside the tests (`next_batch`, `started`); the number of tasks queued."""
        todo: dict[tuple[int, int], tuple[Window, list[str]]] = {}
        for row, w in enumerate(self.tests):
            for cid in self.trials:
                if (cid, row) not in self.cells and (cid, w.start, w.end) not in self._ahead:
                    todo.setdefault((w.start, w.end), (w, []))[1].append(cid)
        for w in windows:
            for cid in self.trials:
                if cid not in running and (cid, w.start, w.end) not in self._ahead:
                    todo.setdefault((w.start, w.end), (w, []))[1].append(cid)
        for w, cids in todo.values():
            self._queued.append(self._task(w, list(dict.fromkeys(cids))))
        return len(todo)

    def next_batch(self, n: int) -> tuple[ReturnsTask, ...]:
        """Up to `n` of the queued tasks, to start beside a test (`started`): the workers' spare time, not the conductor's."""
        return tuple(self._queued.popleft() for _ in range(min(n, len(self._queued))))

    def started(self, batch: tuple[ReturnsTask, ...], future: Future) -> None:
        """`batch` is on its way: `future` will hold each task's cells, in order (engine.executor.run_returns_of)."""
        for k, task in enumerate(batch):
            self._started[id(task)] = (future, k)

    def start_some(self, n: int, submit: Submit) -> None:
        """Start up to `n` of the queued tasks, in one batch."""
        batch = self.next_batch(n)
        if batch:
            self.started(batch, self._submit(batch, submit))

    def _task(self, w: Window, cids: list[str]) -> ReturnsTask:
        task = ReturnsTask(w.start, w.end, w.train_bars, w.train_bars + w.validation_bars,
                           tuple(self._json[c] for c in cids), self.episode_bars, self.blunder_bars,
                           self.strategy_files)
        for k, cid in enumerate(cids):
            self._ahead[(cid, w.start, w.end)] = (task, k)
        return task

    def _submit(self, batch: tuple[ReturnsTask, ...], submit: Submit) -> Future:
        if submit is not None:
            try:
                return submit(batch)
            except Exception as err:  # noqa: BLE001 - a pool that cannot take it: the cells are computed here
                log.warning("trial cells computed by the conductor: %s: %s", type(err).__name__, err)
        done: Future = Future()
        done.set_result(None)  # None: run it here when the value is asked for
        return done

    def _fill(self, bars: Bars, submit: Submit) -> None:
        missing = [(cid, row) for cid in self.trials for row in range(len(self.tests)) if (cid, row) not in self.cells]
        late: dict[tuple[int, int], tuple[Window, list[str]]] = {}
        for cid, row in missing:
            w = self.tests[row]
            if (cid, w.start, w.end) not in self._ahead:
                late.setdefault((w.start, w.end), (w, []))[1].append(cid)
        for w, cids in late.values():
            self._queued.append(self._task(w, list(dict.fromkeys(cids))))
        while self._queued:  # what is left, in eight batches: every worker takes part
            self.start_some(max(1, -(-len(self._queued) // 8)), submit)
        values: dict[int, list[tuple[float, float]]] = {}
        for cid, row in missing:
            w = self.tests[row]
            task, k = self._ahead[(cid, w.start, w.end)]
            if id(task) not in values:
                future, place = self._started[id(task)]
                values[id(task)] = self._values(task, future, place, bars)
            self.cells[(cid, row)] = values[id(task)][k]
        self._ahead.clear()  # what is left was for tests that failed, or brought their own cells
        self._started.clear()

    @staticmethod
    def _values(task: ReturnsTask, future: Future, place: int, bars: Bars) -> list[tuple[float, float]]:
        try:
            got = future.result()
        except Exception as err:  # noqa: BLE001 - a worker lost (killed, a dask worker gone): the same backtests here
            log.warning("trial cells computed by the conductor after the workers failed: %s: %s", type(err).__name__, err)
            got = None
        return list(got[place]) if got is not None else run_returns(task, bars)

    def figures(self, bars: Bars, submit: Submit = None) -> dict[str, Any]:
        """The overfitting figures (metrics_global.json's `overfitting`) over the tests so far, on `bars`;
        the missing cells are backtested through `submit` (the workers) or else here."""
        self._fill(bars, submit)
        ids = list(self.trials)
        val = np.array([[self.cells[(c, row)][0] for c in ids] for row in range(len(self.tests))]).reshape(len(self.tests), len(ids))
        hold = np.array([[self.cells[(c, row)][1] for c in ids] for row in range(len(self.tests))]).reshape(len(self.tests), len(ids))
        pbo = pbo_cscv(val)
        chance = chance_profitable(val, hold.sum(axis=0)) if len(ids) else None
        return {
            "trials": len(ids),
            "tests": len(self.tests),
            "pbo": None if pbo.pbo is None else round(pbo.pbo, 4),
            "pbo_why": pbo.why,
            "pbo_splits": pbo.n_splits,
            "pbo_combinations": pbo.combinations,
            "pbo_median_logit": None if pbo.pbo is None else _finite(float(np.median(pbo.logits))),
            "profitable_validation": chance.profitable if chance else 0,
            "profitable_by_chance": chance.profitable_by_chance if chance else 0.0,
            "significant_validation": chance.significant if chance else 0,
            "significant_by_chance": chance.significant_by_chance if chance else 0.0,
            "significance_alpha": chance.alpha if chance else 0.05,
            "profitable_holdout": chance.holdout_profitable if chance else 0,
            "significant_and_holdout_profitable": chance.significant_holdout_profitable if chance else 0,
        }


def _finite(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None
