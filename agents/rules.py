"""The analyzer: deterministic rules over recent out-of-sample episodes (DESIGN.md §6).

Every `check_every_episodes` validation episodes of the research config, the rules look at
the last `window_episodes` of them — only episodes of tests that ran with the current
parameters, so a patch is judged on its own results — and may fire:

- hit < 0.48 on 3 consecutive checks  → atr_stop_mult + 0.3
- payoff < 1.1                        → hard_tp_usd + 200
- maxdd < −2000 USD                   → timeout_bars − 60
- blunders > 2 per 100 trades         → tighten gates (switch the vhf gate on, else vhf_min + 0.05)
- high-vol share < 30 %               → atr_z_min − 0.25

Thresholds and steps are settings (agents.settings.Rules). The analyzer is a pure function
of what it is fed, so replaying a session's files rebuilds its state exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agents.settings import Rules
from engine.metrics import payoff_ratio
from engine.params import PARAM_BOUNDS, Params


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
        ts = by_episode.get(s["episode_id"], [])
        wins = [t["pnl"] for t in ts if t["pnl"] > 0]
        losses = [t["pnl"] for t in ts if t["pnl"] < 0]
        out.append(
            EpisodeStat(
                test_index=test_index,
                episode_id=s["episode_id"],
                n_trades=len(ts),
                wins=len(wins),
                sum_win=sum(wins),
                losses=len(losses),
                sum_loss=sum(losses),
                blunders=sum(1 for t in ts if t["exit_reason"] == "sl_hit" and t["bars_held"] < blunder_bars),
                high_vol=sum(1 for t in ts if t["vol_bin"] == "high"),
                pnl=s["total_pnl"],
                maxdd=s["maxdd"],
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

    def evidence(self) -> dict[str, float | int]:
        return {
            "episodes": self.episodes,
            "trades": self.trades,
            "hit": round(self.hit, 4),
            "payoff": round(self.payoff, 4),
            "maxdd": round(self.maxdd, 2),
            "blunders_per_100": round(self.blunders_per_100, 2),
            "high_vol_share": round(self.high_vol_share, 4),
            "pnl": round(self.pnl, 2),
        }


def window_metrics(eps: Iterable[EpisodeStat]) -> WindowMetrics:
    """Aggregate episodes in order; maxdd is the deepest fall of the chained episode equity."""
    eps = list(eps)
    trades = sum(e.n_trades for e in eps)
    wins = sum(e.wins for e in eps)
    losses = sum(e.losses for e in eps)
    sum_win = sum(e.sum_win for e in eps)
    sum_loss = sum(e.sum_loss for e in eps)
    payoff = float(payoff_ratio(wins, sum_win, losses, sum_loss))
    # chain the episodes: an episode's own drawdown starts from the equity before it
    equity = peak = worst = 0.0
    for e in eps:
        worst = min(worst, equity - peak + e.maxdd)
        equity += e.pnl
        peak = max(peak, equity)
        worst = min(worst, equity - peak)
    return WindowMetrics(
        episodes=len(eps),
        trades=trades,
        hit=wins / trades if trades else 0.0,
        payoff=payoff,
        maxdd=worst,
        blunders_per_100=100.0 * sum(e.blunders for e in eps) / trades if trades else 0.0,
        high_vol_share=sum(e.high_vol for e in eps) / trades if trades else 0.0,
        pnl=sum(e.pnl for e in eps),
    )


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
    bound = PARAM_BOUNDS[name]
    new = min(max(value + step, bound.lo), bound.hi)  # type: ignore[type-var]
    return int(round(new)) if bound.kind == "int" else round(new, 6)


class Analyzer:
    """Feeds on validation episodes in session order; every N episodes, runs the rules."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.reset()

    def reset(self) -> None:
        """Forget the episodes seen so far: a patch took effect and is judged on its own results."""
        self.window: deque[EpisodeStat] = deque(maxlen=self.rules.window_episodes)
        self.since_reset = 0
        self.low_hit_checks = 0

    def feed(self, episodes: list[EpisodeStat], params: Params) -> list[RuleFiring]:
        """Add one test's episodes; returns the firings of a check if one fell due."""
        if not episodes:
            return []
        before = self.since_reset // self.rules.check_every_episodes
        self.window.extend(episodes)
        self.since_reset += len(episodes)
        if self.since_reset // self.rules.check_every_episodes == before:
            return []
        return self.check(params, episodes[-1])

    def check(self, params: Params, last: EpisodeStat) -> list[RuleFiring]:
        """Run every rule over the current window."""
        r = self.rules
        m = window_metrics(self.window)
        if m.trades < r.min_trades:
            return []
        evidence = m.evidence()
        out: list[RuleFiring] = []

        def fire(rule: str, name: str, new: float | int | bool, reason: str) -> None:
            old = getattr(params, name)
            if new != old:
                out.append(RuleFiring(rule, name, old, new, reason, evidence, last.test_index, last.episode_id))

        if m.hit < r.hit_below:
            self.low_hit_checks += 1
        else:
            self.low_hit_checks = 0
        if self.low_hit_checks >= r.hit_consecutive_checks:
            self.low_hit_checks = 0
            fire(
                "hit_low", "atr_stop_mult", _stepped("atr_stop_mult", params.atr_stop_mult, r.hit_step_atr_stop_mult),
                f"hit {m.hit:.3f} < {r.hit_below} on {r.hit_consecutive_checks} consecutive checks: give trades more room",
            )
        if m.payoff < r.payoff_below:
            fire(
                "payoff_low", "hard_tp_usd", _stepped("hard_tp_usd", params.hard_tp_usd, r.payoff_step_hard_tp_usd),
                f"payoff {m.payoff:.2f} < {r.payoff_below}: let winners run further",
            )
        if m.maxdd < r.maxdd_below_usd:
            fire(
                "maxdd_deep", "timeout_bars", _stepped("timeout_bars", params.timeout_bars, -r.maxdd_step_timeout_bars),
                f"drawdown {m.maxdd:,.0f} USD < {r.maxdd_below_usd:,.0f}: hold losers for less time",
            )
        if m.blunders_per_100 > r.blunders_per_100_above:
            if not params.gate_vhf:
                fire("blunders_high", "gate_vhf", True, f"{m.blunders_per_100:.1f} blunders/100 > {r.blunders_per_100_above}: switch the trend gate on")
            else:
                fire(
                    "blunders_high", "vhf_min", _stepped("vhf_min", params.vhf_min, r.blunders_step_vhf_min),
                    f"{m.blunders_per_100:.1f} blunders/100 > {r.blunders_per_100_above}: demand a stronger trend",
                )
        if m.high_vol_share < r.high_vol_share_below:
            fire(
                "high_vol_share_low", "atr_z_min", _stepped("atr_z_min", params.atr_z_min, -r.high_vol_step_atr_z_min),
                f"high-vol share {m.high_vol_share:.0%} < {r.high_vol_share_below:.0%}: widen the ATR gate",
            )
        return out
