"""segment_results.json: what a segment's research config did per phase, the baselines, the standings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.leaderboard import LeaderboardRow
from engine.metrics import TradeTally
from engine.standings import Standing, standings
from engine.targets import Targets, targets_met

PHASE_NAMES = ("train", "validation", "holdout")


@dataclass
class Tally(TradeTally):
    """Running trade statistics of one config over many tests, for one phase."""

    worst_test_maxdd: float = 0.0
    tests: int = 0

    def add_trades(self, trades: Iterable[Mapping[str, Any]], blunder_bars: int) -> None:
        for t in trades:
            self.add(t, blunder_bars)

    def metrics(self) -> dict[str, float | int]:
        """hit, payoff, pnl and the rest, as engine.metrics defines them, over every trade tallied."""
        return {
            "tests": self.tests,
            "n_trades": self.trades,
            "hit": self.hit,
            "payoff": self.payoff,
            "total_pnl": self.pnl,
            "maxdd": self.worst_test_maxdd,
            "blunders": self.blunders,
            "blunders_per_100": self.blunders_per_100,
            "high_vol_share": self.high_vol_share,
        }


@dataclass
class SegmentTally:
    """What a segment's research config did, per phase, and how many tests ran or failed."""

    by_phase: dict[str, Tally] = field(default_factory=lambda: {p: Tally() for p in PHASE_NAMES})
    tests: int = 0
    failed: int = 0

    def add_test(self, trades: list[Mapping[str, Any]], row: LeaderboardRow | None, blunder_bars: int) -> None:
        self.tests += 1
        if row is None:
            self.failed += 1
            return
        for phase, prefix in zip(PHASE_NAMES, ("train", "val", "hold")):
            tally = self.by_phase[phase]
            tally.tests += 1
            tally.add_trades((t for t in trades if t["phase"] == phase), blunder_bars)
            tally.worst_test_maxdd = min(tally.worst_test_maxdd, getattr(row, f"{prefix}_maxdd"))


def standing_dict(s: Standing) -> dict[str, Any]:
    return asdict(s)


def segment_results(
    segment: int,
    role: str,
    tally: SegmentTally,
    rows: list[LeaderboardRow],
    plan: Mapping[str, Any],
    patches: list[dict[str, Any]],
    targets: Targets,
) -> dict[str, Any]:
    """segment_results.json: the research config per phase, each baseline, the segment's standings."""
    chosen = {phase: t.metrics() for phase, t in tally.by_phase.items()}
    by_method: dict[str, list[LeaderboardRow]] = {}
    for r in rows:
        if r.role == "baseline":
            by_method.setdefault(r.method, []).append(r)
    baselines = {
        m: {
            "tests": len(rs),
            "val_trades": sum(r.val_trades for r in rs),
            "val_pnl": sum(r.val_pnl for r in rs),
            "val_score": sum(r.val_score for r in rs) / len(rs),
        }
        for m, rs in sorted(by_method.items())
    }
    return {
        "segment": segment,
        "role": role,
        "tests": tally.tests,
        "tests_failed": tally.failed,
        "chosen_config": plan.get("chosen", []),
        "patches": patches,
        "chosen": chosen,
        "targets": targets.model_dump(),
        "targets_met": targets_met(targets, chosen["validation"]),
        "baselines": baselines,
        "standings": [standing_dict(s) for s in standings(rows)[:10]],
    }
