"""The analyzer: deterministic rules over recent out-of-sample episodes (DESIGN.md §6).

Every `check_every_episodes` validation episodes of the research config, the rules look at
a window of the latest of them — only episodes of tests that ran with the current
parameters, so a patch is judged on its own results — and may fire. The window is the last
`window_episodes` episodes, reaching further back (never past the last reset) until it
holds `min_trades` trades: a rule judges a sample of trades, not of empty episodes.

- maxdd < −2000 USD (the worst test)  → timeout_bars − 60
- blunders > 2 per 100 trades         → tighten gates (switch the vhf gate on, else vhf_min + 0.05)
- hit < 0.48 on 3 consecutive checks  → atr_stop_mult + 0.3
- payoff < 1.1                        → hard_tp_usd + 200
- high-vol share < 30 %               → atr_z_min − 0.25

Evidence, not noise: the proportions (hit, blunders, high-vol share) must be beyond their
threshold at the one-sided confidence `confidence_z` (a Wilson score bound), and so must
the payoff (a bound on log payoff from the winners' and losers' spread); the drawdown
rule reads the window's drawdown as it is. A check runs only on a full window, so every rule judges at least that much evidence, and
a patch is judged on a full window of its own results. The firings come in the order above, risk first; the conductor
turns at most one of them into a plan per check, so each change's effect can be measured
on its own (agents.plans). Thresholds and steps are settings (agents.settings.Rules).
The analyzer is a pure function of what it is fed, so replaying a session's files
rebuilds its state exactly.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agents.settings import Rules
from engine.metrics import TradeTally, chained_drawdown, payoff_ratio
from engine.params import SHARED_BOUNDS, Params


@dataclass(frozen=True)
class EpisodeStat:
    """One out-of-sample episode of the research config, reduced to what the rules need."""

    test_index: int  # global, 0-based, in session order
    episode_id: int
    n_trades: int
    wins: int
    sum_win: float
    losses: int
    sum_loss: float
    blunders: int
    high_vol: int
    pnl: float
    maxdd: float
    score: float = 0.0
    sumsq_win: float = 0.0  # sums of squared PnL of the winners and the losers: the payoff's uncertainty
    sumsq_loss: float = 0.0


# the metric each rule watches, and +1 when higher is better: how a plan's outcome is judged
RULE_METRIC: dict[str, tuple[str, int]] = {
    "maxdd_deep": ("maxdd", 1),
    "blunders_high": ("blunders_per_100", -1),
    "hit_low": ("hit", 1),
    "payoff_low": ("payoff", 1),
    "high_vol_share_low": ("high_vol_share", 1),
}


def episode_stats(
    test_index: int,
    trades: Iterable[Mapping[str, Any]],
    scores: Iterable[Mapping[str, Any]],
    blunder_bars: int,
    phase: str = "validation",
) -> list[EpisodeStat]:
    """EpisodeStats of one test from its TradeEvent and ScoreEvent records (dicts), for `phase`."""
    by_episode: dict[int, list[Mapping[str, Any]]] = {}
    for t in trades:
        if t["phase"] == phase:
            by_episode.setdefault(t["episode_id"], []).append(t)
    out = []
    for s in scores:
        if s["phase"] != phase:
            continue
        tally = TradeTally()
        for t in by_episode.get(s["episode_id"], []):
            tally.add(t, blunder_bars)
        out.append(
            EpisodeStat(
                test_index=test_index,
                episode_id=s["episode_id"],
                n_trades=tally.trades,
                wins=tally.wins,
                sum_win=tally.sum_win,
                losses=tally.losses,
                sum_loss=tally.sum_loss,
                blunders=tally.blunders,
                high_vol=tally.high_vol,
                pnl=s["total_pnl"],
                maxdd=s["maxdd"],
                score=s["score"],
                sumsq_win=tally.sumsq_win,
                sumsq_loss=tally.sumsq_loss,
            )
        )
    return out


@dataclass(frozen=True)
class WindowMetrics:
    """The rules' view of the last episodes: trade-weighted aggregates."""

    episodes: int
    trades: int
    hit: float
    payoff: float
    maxdd: float
    blunders_per_100: float
    high_vol_share: float
    pnl: float
    score: float = 0.0  # mean episode score (0–100)
    first_test: int = -1  # global indexes of the oldest and newest test in the window
    last_test: int = -1
    wins: int = 0
    losses: int = 0
    blunders: int = 0
    high_vol: int = 0
    payoff_log_se: float | None = None  # standard error of log(payoff); None: too few winners or losers

    def hit_upper(self, z: float) -> float:
        return wilson_bound(self.wins, self.trades, z, upper=True)

    def blunders_per_100_lower(self, z: float) -> float:
        return 100.0 * wilson_bound(self.blunders, self.trades, z, upper=False)

    def high_vol_share_upper(self, z: float) -> float:
        return wilson_bound(self.high_vol, self.trades, z, upper=True)

    def payoff_upper(self, z: float) -> float | None:
        if self.payoff_log_se is None or self.payoff <= 0:
            return None
        return self.payoff * math.exp(z * self.payoff_log_se)

    def cautious(self, metric: str, z: float) -> float | None:
        """`metric` at its least favourable plausible value (one-sided z): how far a plan's effect is trusted.

        None when the window cannot tell (a payoff without two winners and two losers).
        """
        if metric == "hit":
            return wilson_bound(self.wins, self.trades, z, upper=False)
        if metric == "blunders_per_100":
            return 100.0 * wilson_bound(self.blunders, self.trades, z, upper=True)
        if metric == "high_vol_share":
            return wilson_bound(self.high_vol, self.trades, z, upper=False)
        if metric == "payoff":
            return None if self.payoff_log_se is None else self.payoff * math.exp(-z * self.payoff_log_se)
        return float(getattr(self, metric))

    def evidence(self) -> dict[str, float | int]:
        return {
            "score": round(self.score, 2),
            "episodes": self.episodes,
            "trades": self.trades,
            "hit": round(self.hit, 4),
            "payoff": round(self.payoff, 4),
            "maxdd": round(self.maxdd, 2),
            "blunders_per_100": round(self.blunders_per_100, 2),
            "high_vol_share": round(self.high_vol_share, 4),
            "pnl": round(self.pnl, 2),
        }


def wilson_bound(k: int, n: int, z: float, *, upper: bool) -> float:
    """The Wilson score bound of a proportion k/n at one-sided z (the estimate itself when z is 0)."""
    if n == 0:
        return 1.0 if upper else 0.0
    p = k / n
    if z == 0:
        return p
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + spread if upper else centre - spread) / (1 + z * z / n)


def _log_mean_se(n: int, total: float, sumsq: float) -> float | None:
    """Standard error of log|mean| of n values from their sum and sum of squares (delta method)."""
    if n < 2 or total == 0:
        return None
    mean = total / n
    var = max(0.0, (sumsq - n * mean * mean) / (n - 1))
    return math.sqrt(var / n) / abs(mean)


def window_metrics(eps: Iterable[EpisodeStat]) -> WindowMetrics:
    """Aggregate episodes in order; maxdd is the worst test's drawdown (USD ≤ 0), the targets' scope."""
    eps = list(eps)
    # sum() over attrgetter: the same additions in the same order as a loop, without one (every 10 episodes)
    trades = sum(map(_N_TRADES, eps))
    wins = sum(map(_WINS, eps))
    losses = sum(map(_LOSSES, eps))
    sum_win = sum(map(_SUM_WIN, eps))
    sum_loss = sum(map(_SUM_LOSS, eps))
    payoff = payoff_ratio.py_func(wins, sum_win, losses, sum_loss)
    # the worst test, as the maxdd target reads it: within a test, the episodes are chained (an
    # episode's own drawdown starts from the equity before it); each test starts afresh
    worst = min((chained_drawdown((e.pnl, e.maxdd) for e in test)
                 for _, test in itertools.groupby(eps, key=_TEST_INDEX)), default=0.0)
    blunders, high_vol = sum(map(_BLUNDERS, eps)), sum(map(_HIGH_VOL, eps))
    return WindowMetrics(
        episodes=len(eps),
        trades=trades,
        hit=wins / trades if trades else 0.0,
        payoff=payoff,
        maxdd=worst,
        blunders_per_100=100.0 * blunders / trades if trades else 0.0,
        high_vol_share=high_vol / trades if trades else 0.0,
        pnl=sum(map(_PNL, eps)),
        score=sum(map(_SCORE, eps)) / len(eps) if eps else 0.0,
        first_test=eps[0].test_index if eps else -1,
        last_test=eps[-1].test_index if eps else -1,
        wins=wins,
        losses=losses,
        blunders=blunders,
        high_vol=high_vol,
        payoff_log_se=_payoff_log_se(eps, wins, sum_win, losses, sum_loss),
    )


_N_TRADES, _WINS, _LOSSES, _SUM_WIN, _SUM_LOSS, _PNL, _SCORE, _BLUNDERS, _HIGH_VOL, _TEST_INDEX, _SUMSQ_WIN, _SUMSQ_LOSS = (
    operator.attrgetter(name) for name in ("n_trades", "wins", "losses", "sum_win", "sum_loss", "pnl", "score",
                                           "blunders", "high_vol", "test_index", "sumsq_win", "sumsq_loss"))


def _payoff_log_se(eps: list[EpisodeStat], wins: int, sum_win: float, losses: int, sum_loss: float) -> float | None:
    se_w = _log_mean_se(wins, sum_win, sum(map(_SUMSQ_WIN, eps)))
    se_l = _log_mean_se(losses, sum_loss, sum(map(_SUMSQ_LOSS, eps)))
    if se_w is None or se_l is None:
        return None
    return math.sqrt(se_w * se_w + se_l * se_l)


@dataclass(frozen=True)
class RuleFiring:
    """A rule that fired: the one-parameter change it proposes, why, and the numbers behind it."""

    rule: str
    parameter: str
    old_value: float | int | bool
    new_value: float | int | bool
    reason: str
    evidence: dict[str, float | int]
    test_index: int
    episode_id: int


def _stepped(name: str, value: float, step: float) -> float | int:
    """`value` moved by `step`, within the parameter's max step and bounds."""
    bound = SHARED_BOUNDS[name]
    if bound.max_step is not None:  # settings are checked against it too; this keeps the rule honest regardless
        step = max(-bound.max_step, min(bound.max_step, step))
    assert bound.lo is not None and bound.hi is not None  # the rules step numeric parameters, all bounded
    new = min(max(value + step, bound.lo), bound.hi)
    return int(round(new)) if bound.kind == "int" else round(new, 6)


@dataclass(frozen=True)
class Check:
    """One run of the rules over a full window: its metrics, and the rules that fired (risk first)."""

    metrics: WindowMetrics
    firings: list[RuleFiring]


class Analyzer:
    """Feeds on validation episodes in session order; every N episodes, on a full window, runs the rules."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.reset()

    def reset(self) -> None:
        """Forget the episodes seen so far: a plan spent them, and what comes next is judged on its own."""
        self.window: deque[EpisodeStat] = deque()
        self.trades = 0  # in the window
        self.since_reset = 0
        self.low_hit_checks = 0

    def feed(self, episodes: list[EpisodeStat], params: Params) -> Check | None:
        """Add one test's episodes; returns a Check when one fell due on a full window."""
        if not episodes:
            return None
        r = self.rules
        before = self.since_reset // r.check_every_episodes
        self.window.extend(episodes)
        self.trades += sum(e.n_trades for e in episodes)
        self.since_reset += len(episodes)
        # the last window_episodes episodes, reaching further back while that holds fewer than min_trades trades
        while len(self.window) > r.window_episodes and self.trades - self.window[0].n_trades >= r.min_trades:
            self.trades -= self.window.popleft().n_trades
        if self.since_reset // r.check_every_episodes == before:
            return None
        if len(self.window) < r.window_episodes or self.trades < r.min_trades:
            return None
        return self.check(params, episodes[-1])

    def check(self, params: Params, last: EpisodeStat) -> Check:
        """Run every rule over the current window."""
        r = self.rules
        m = window_metrics(self.window)
        out: list[RuleFiring] = []
        evidence = m.evidence()

        def fire(rule: str, name: str, new: float | int | bool, reason: str) -> None:
            old = getattr(params, name)
            if new != old:
                out.append(RuleFiring(rule, name, old, new, reason, evidence, last.test_index, last.episode_id))

        if m.maxdd < r.maxdd_below_usd:
            fire(
                "maxdd_deep", "timeout_bars", _stepped("timeout_bars", params.timeout_bars, -r.maxdd_step_timeout_bars),
                f"drawdown {m.maxdd:,.0f} USD < {r.maxdd_below_usd:,.0f}: hold losers for less time",
            )
        z = r.confidence_z
        if m.blunders_per_100_lower(z) > r.blunders_per_100_above:
            if not params.gate_vhf:
                fire("blunders_high", "gate_vhf", True, f"{m.blunders_per_100:.1f} blunders/100 > {r.blunders_per_100_above}: switch the trend gate on")
            else:
                fire(
                    "blunders_high", "vhf_min", _stepped("vhf_min", params.vhf_min, r.blunders_step_vhf_min),
                    f"{m.blunders_per_100:.1f} blunders/100 > {r.blunders_per_100_above}: demand a stronger trend",
                )
        if m.hit_upper(z) < r.hit_below:
            self.low_hit_checks += 1
        else:
            self.low_hit_checks = 0
        if self.low_hit_checks >= r.hit_consecutive_checks:
            self.low_hit_checks = 0
            fire(
                "hit_low", "atr_stop_mult", _stepped("atr_stop_mult", params.atr_stop_mult, r.hit_step_atr_stop_mult),
                f"hit {m.hit:.3f} < {r.hit_below} on {r.hit_consecutive_checks} consecutive checks: give trades more room",
            )
        payoff_upper = m.payoff_upper(z)
        if payoff_upper is not None and payoff_upper < r.payoff_below:
            fire(
                "payoff_low", "hard_tp_usd", _stepped("hard_tp_usd", params.hard_tp_usd, r.payoff_step_hard_tp_usd),
                f"payoff {m.payoff:.2f} < {r.payoff_below}: let winners run further",
            )
        if m.high_vol_share_upper(z) < r.high_vol_share_below:
            fire(
                "high_vol_share_low", "atr_z_min", _stepped("atr_z_min", params.atr_z_min, -r.high_vol_step_atr_z_min),
                f"high-vol share {m.high_vol_share:.0%} < {r.high_vol_share_below:.0%}: widen the ATR gate",
            )
        return Check(m, out)
