"""Every config a session tried, on every window it tested: how much of its best is selection.

A **trial** is a distinct config (by config_id) the session put forward: each of the
Strategist's proposals (chosen or not: the Critic chose among them), each research config
as patched by a plan — the agents' and the humans' edits alike — the ensemble members and
the baselines. The trial matrix has one row per test (walk-forward window, in session
order) and one column per trial; a cell is the trial's validation return on that window,
PnL / notional, from the same backtest the test runs. Cells the session's tests already
hold are read from their leaderboard rows; the others are backtested here, once.

From it (engine.overfit): the probability of backtest overfitting by CSCV, and how many
trials were profitable out of sample and on holdout next to how many chance would give.
Holdout is only counted here, never used to choose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.backtest import run_backtest
from engine.configs import config_id
from engine.data import Bars
from engine.leaderboard import LeaderboardRow
from engine.overfit import chance_profitable, pbo_cscv
from engine.params import Params
from engine.windows import Window


@dataclass
class TrialMatrix:
    """The trials and their returns per test; `figures()` fills what is missing and measures."""

    episode_bars: int
    blunder_bars: int
    trials: dict[str, Params] = field(default_factory=dict)  # config_id -> params, in the order first tried
    tests: list[Window] = field(default_factory=list)  # the window of each test that ran, in session order
    cells: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)  # (config_id, row) -> (val, hold)

    def tried(self, params: Params) -> None:
        self.trials.setdefault(config_id(params), params)

    def tested(self, window: Window, rows: list[LeaderboardRow]) -> None:
        """A test that ran on `window`: its rows' configs are trials, and their results are cells."""
        row = len(self.tests)
        self.tests.append(window)
        for r in rows:
            params = Params.model_validate_json(r.params_json)
            self.trials.setdefault(r.config_id, params)
            self.cells[(r.config_id, row)] = (r.val_pnl / params.notional_usd, r.hold_pnl / params.notional_usd)

    def _fill(self, bars: Bars) -> None:
        for cid, params in self.trials.items():
            for row, w in enumerate(self.tests):
                if (cid, row) not in self.cells:
                    r = run_backtest(bars.slice(w.start, w.end), params, train_end=w.train_bars,
                                     validation_end=w.train_bars + w.validation_bars,
                                     episode_bars=self.episode_bars, blunder_bars=self.blunder_bars)
                    # PnL of the trades exiting in each phase, as Metrics.total_pnl sums it
                    exits = r.trades["exit_idx"]
                    pnl = r.trades["pnl"]
                    val = float(pnl[(exits >= r.train_end) & (exits < r.validation_end)].sum())
                    hold = float(pnl[exits >= r.validation_end].sum())
                    self.cells[(cid, row)] = (val / params.notional_usd, hold / params.notional_usd)

    def figures(self, bars: Bars) -> dict[str, Any]:
        """The overfitting figures (metrics_global.json's `overfitting`) over the tests so far, on `bars`."""
        self._fill(bars)
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
