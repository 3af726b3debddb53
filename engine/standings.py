"""Session standings: each config across the walk-forward tests it ran in, ranked.

Ranked like one test's rows (`engine.leaderboard`): by validation results only. Per config,
over the tests it ran in:

- val_trades, val_pnl, holdout_pnl: sums (trades, USD).
- val_hit: trade-weighted (all validation wins / all validation trades).
- val_payoff: mean of the per-test payoffs over the tests with validation trades (a test
  without trades has no payoff to average; 0 when no test had trades).
- val_maxdd: the worst (most negative) per-test validation drawdown, USD ≤ 0.
- val_score: mean of the per-test validation scores; a test without trades counts as 0.
- sharpe_per_test: mean / sample sd (n − 1) of the per-test validation returns
  r_i = val_pnl_i / notional_usd. Not annualised: one unit is one test. 0 with fewer than
  2 tests or when the sd is 0.
- deflated_sharpe: see `engine.deflated_sharpe`; None with fewer than 3 tests.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, replace

from engine.configs import label_of
from engine.deflated_sharpe import deflated_sharpe, return_stats
from engine.leaderboard import ROLES, LeaderboardRow, validation_key


@dataclass(frozen=True)
class Standing:
    """One config across the session's tests, on validation results (holdout_pnl for reference).

    Units and aggregation rules: the module docstring. rank is 1-based.
    """

    rank: int
    config_id: str
    method: str
    params_json: str
    label: str
    roles: tuple[str, ...]
    tests: int
    val_trades: int
    val_hit: float
    val_payoff: float
    val_pnl: float
    val_maxdd: float
    val_score: float
    sharpe_per_test: float
    holdout_pnl: float
    deflated_sharpe: float | None


class _Tally:
    """One config's validation results, one entry per test, in the order the tests came.

    Entries are never dropped: `summary(n)` sums the first n, so a book shown as of an
    earlier test (a replay seeking back) and then as of a later one recomputes nothing.
    """

    __slots__ = ("config_id", "method", "params_json", "label", "notional", "where", "test_ids", "ordinals",
                 "role_of", "role_since", "trades", "wins", "payoffs", "pnl", "maxdd", "score", "hold_pnl",
                 "returns", "cached")

    def __init__(self, row: LeaderboardRow) -> None:
        params = json.loads(row.params_json)
        self.config_id, self.method, self.params_json = row.config_id, row.method, row.params_json
        self.label = label_of(params)
        self.notional = float(params["notional_usd"])
        self.where: dict[str, int] = {}  # test_id -> entry
        self.test_ids: list[str] = []
        self.ordinals: list[int] = []  # the book's test count when the entry came
        self.role_of: list[int] = []  # ROLES index of the row kept for the test
        self.role_since: list[int | None] = [None] * len(ROLES)  # ordinal of the first row in each role
        self.trades: list[int] = []
        self.wins: list[float] = []  # hit × trades
        self.payoffs: list[float] = []  # 0 for a test without trades (then not averaged)
        self.pnl: list[float] = []
        self.maxdd: list[float] = []
        self.score: list[float] = []
        self.hold_pnl: list[float] = []
        self.returns: list[float] = []
        self.cached: dict[int, tuple] = {}  # entries summed -> summary

    def add(self, r: LeaderboardRow, ordinal: int) -> bool:
        """Take a row; True when it changed an entry of an earlier test (a test id seen before)."""
        role = ROLES.index(r.role)
        if self.role_since[role] is None:
            self.role_since[role] = ordinal
        at = self.where.get(r.test_id)
        if at is None:
            self.where[r.test_id] = len(self.test_ids)
            self.test_ids.append(r.test_id)
            self.ordinals.append(ordinal)
            self.role_of.append(role)
            for column, value in zip(self._columns(), self._values(r)):
                column.append(value)
        elif role < self.role_of[at]:  # the same config twice in one test: the first role of ROLES counts
            self.role_of[at] = role
            for column, value in zip(self._columns(), self._values(r)):
                column[at] = value
            self.cached = {n: c for n, c in self.cached.items() if n <= at}
            return self.ordinals[at] < ordinal
        return False

    def _columns(self) -> tuple[list, ...]:
        return (self.trades, self.wins, self.payoffs, self.pnl, self.maxdd, self.score, self.hold_pnl, self.returns)

    def _values(self, r: LeaderboardRow) -> tuple:
        return (r.val_trades, r.val_hit * r.val_trades, r.val_payoff if r.val_trades > 0 else 0.0, r.val_pnl,
                r.val_maxdd, r.val_score, r.hold_pnl, r.val_pnl / self.notional)

    def entries_before(self, ordinal: int) -> int:
        """How many entries came from the first `ordinal` tests."""
        return bisect.bisect_left(self.ordinals, ordinal)

    def summary(self, n: int, ordinal: int) -> tuple:
        """(Standing fields but rank and DSR, (sr, skew, kurt)) of the first n entries (those before `ordinal`)."""
        got = self.cached.get(n)
        if got is None:
            trades_n = self.trades[:n]
            trades = sum(trades_n)
            traded = sum(1 for k in trades_n if k > 0)
            sr, skew, kurt = return_stats(self.returns[:n])
            got = (
                dict(config_id=self.config_id, method=self.method, params_json=self.params_json, label=self.label,
                     roles=tuple(role for role, since in zip(ROLES, self.role_since) if since is not None and since < ordinal),
                     tests=n, val_trades=trades,
                     val_hit=math.fsum(self.wins[:n]) / trades if trades else 0.0,
                     val_payoff=math.fsum(self.payoffs[:n]) / traded if traded else 0.0,
                     val_pnl=math.fsum(self.pnl[:n]), val_maxdd=min(self.maxdd[:n]),
                     val_score=math.fsum(self.score[:n]) / n, sharpe_per_test=sr,
                     holdout_pnl=math.fsum(self.hold_pnl[:n])),
                (sr, skew, kurt),
            )
            if len(self.cached) >= 8:  # a replay goes back and forth between a few moments
                del self.cached[next(iter(self.cached))]
            self.cached[n] = got
        return got


class StandingsBook:
    """Session standings kept as the tests come: `add` a test's rows, `table()` ranks.

    The same figures as ranking all rows at once (sums are exact, so order does not change
    them), without going over every row again: the console and the conductor add one test
    at a time. A replay `show`s the book as of an earlier test and later as of a later one
    again; what was added stays, so going back and forth costs nothing but the ranking.
    """

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}
        self._stored = 0  # tests added
        self._shown = 0  # tests the table is of (≤ stored)
        self._tables: dict[int, list[Standing]] = {}

    @property
    def tests(self) -> int:
        """How many tests the table is of."""
        return self._shown

    @property
    def stored(self) -> int:
        """How many tests were added."""
        return self._stored

    def add(self, rows: Iterable[LeaderboardRow]) -> None:
        """The rows of the next test (rows of many tests at once are fine: they then count as one)."""
        if self._shown != self._stored:
            raise ValueError(f"the book shows {self._shown} of {self._stored} tests: show them all before adding")
        for r in rows:
            tally = self._tallies.get(r.config_id)
            if tally is None:
                tally = self._tallies[r.config_id] = _Tally(r)
            if tally.add(r, self._stored):
                self._tables.clear()  # an earlier test changed: its tables with it
        self._stored += 1
        self._shown = self._stored

    def show(self, tests: int) -> None:
        """Rank as of the first `tests` tests added (0 ≤ tests ≤ stored)."""
        if not 0 <= tests <= self._stored:
            raise ValueError(f"tests must be between 0 and {self._stored}, got {tests}")
        self._shown = tests

    def table(self) -> list[Standing]:
        """Standings, best first by mean validation score, then validation PnL, then config_id (rank 1..n)."""
        shown = self._shown
        table = self._tables.get(shown)
        if table is None:
            summaries = []
            for tally in self._tallies.values():
                n = tally.entries_before(shown)
                if n:
                    summaries.append(tally.summary(n, shown))
            n_trials = len(summaries)
            srs = [stats[0] for fields_, stats in summaries if fields_["tests"] >= 2]
            var_trials = statistics.variance(srs) if len(srs) >= 2 else 0.0
            ranked = [
                Standing(rank=0, **fields_, deflated_sharpe=(
                    deflated_sharpe(sr, fields_["tests"], skew, kurt, n_trials, var_trials) if fields_["tests"] >= 3 else None))
                for fields_, (sr, skew, kurt) in summaries
            ]
            ranked.sort(key=lambda s: validation_key(s.val_score, s.val_pnl, s.config_id))
            table = [replace(s, rank=i) for i, s in enumerate(ranked, start=1)]
            if len(self._tables) >= 8:
                del self._tables[next(iter(self._tables))]
            self._tables[shown] = table
        return table

    def equity(self, config_id: str) -> list[tuple[str, float]]:
        """(test_id, cumulative validation PnL in USD) of a config over the tests it ran in, in the order they came."""
        tally = self._tallies.get(config_id)
        if tally is None:
            return []
        n = tally.entries_before(self._shown)
        return list(zip(tally.test_ids[:n], itertools.accumulate(tally.pnl[:n])))


def standings(rows: Iterable[LeaderboardRow]) -> list[Standing]:
    """Per-config standings across tests, best first by mean validation score, then validation PnL, then config_id.

    A config listed twice in one test (e.g. as chosen and as baseline) counts once there;
    its roles are all kept.
    """
    book = StandingsBook()
    book.add(rows)
    return book.table()
