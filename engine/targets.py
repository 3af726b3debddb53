"""The research targets (DESIGN.md §6): what each one measures, where its threshold is set,
which side of the threshold is good, and how it reads.

Every room reads the targets from `TARGETS`: the Critic's verdicts and stated targets, the
Strategist's expected metrics, the summary's charts, the console's targets pane and episode
colours, the plan review's evidence. The thresholds are settings (`Targets`, the `targets`
section of the settings); a session records them in session_config.json, so a helper here
takes either the `Targets` model or that JSON mapping.

Metrics, as `target_values` pools them over recent tests of one config (validation phase),
and as a phase's figures hold them: hit (0–1, trade-weighted), payoff, maxdd (USD ≤ 0, the
worst test), blunders_per_100 (per 100 trades), high_vol_share (0–1, trade-weighted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from engine.leaderboard import LeaderboardRow


class Targets(BaseModel):
    """What the research aims for (DESIGN.md §6); checked on out-of-sample results."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    hit_min: float = Field(0.52, ge=0, le=1, description="hit rate at least")
    payoff_min: float = Field(1.25, ge=0, le=10, description="payoff at least")
    maxdd_min_usd: float = Field(-2000.0, le=0, description="max drawdown no deeper than, USD")
    blunders_per_100_max: float = Field(2.0, ge=0, le=100, description="blunders per 100 trades at most")
    high_vol_share_min: float = Field(0.30, ge=0, le=1, description="share of trades in the high-vol bin at least")


@dataclass(frozen=True)
class Target:
    """One target: `metric` against the `setting` of Targets, good at least at it (`at_least`) or at most."""

    name: str  # its key in a verdict (segment_results.json "targets_met")
    metric: str  # its key among the metrics (target_values, a phase's figures, a plan's evidence)
    setting: str  # the Targets field that holds its threshold
    at_least: bool  # True: met when metric ≥ threshold; False: when metric ≤ threshold
    label: str  # its name on screen and in charts
    fmt: str  # the format of its value and its threshold

    @property
    def sign(self) -> str:
        """≥ or ≤: the side of the threshold that meets the target."""
        return "≥" if self.at_least else "≤"

    @property
    def default(self) -> float:
        """The threshold when no setting says otherwise."""
        return Targets.model_fields[self.setting].default

    def threshold(self, targets: Targets | Mapping[str, Any]) -> Any:
        """The threshold in `targets` (the settings, or their JSON as recorded); None when it is not there."""
        if isinstance(targets, Mapping):
            return targets.get(self.setting)
        return getattr(targets, self.setting, None)

    def met(self, value: float, threshold: float) -> bool:
        """Whether `value` of the metric meets `threshold`."""
        return value >= threshold if self.at_least else value <= threshold


TARGETS: tuple[Target, ...] = (
    Target("hit", "hit", "hit_min", True, "hit", "{:.3f}"),
    Target("payoff", "payoff", "payoff_min", True, "payoff", "{:.2f}"),
    Target("maxdd", "maxdd", "maxdd_min_usd", True, "maxdd USD", "{:,.0f}"),
    Target("blunders", "blunders_per_100", "blunders_per_100_max", False, "blunders/100", "{:.1f}"),
    Target("high_vol_share", "high_vol_share", "high_vol_share_min", True, "high-vol share", "{:.0%}"),
)
TARGET_OF: dict[str, Target] = {t.metric: t for t in TARGETS}  # by metric
TARGET_METRICS = tuple(TARGET_OF)
if TYPE_CHECKING:  # a Literal built from TARGETS is beyond a static checker: to it, a name is a str
    TargetName = str
else:
    TargetName = Literal[tuple(t.name for t in TARGETS)]  # the keys of a verdict


def thresholds(targets: Targets | Mapping[str, Any]) -> dict[str, float]:
    """Each target's threshold, by metric; a setting missing from `targets` takes its default."""
    out = {}
    for t in TARGETS:
        value = t.threshold(targets)
        out[t.metric] = t.default if value is None else value
    return out


def targets_met(targets: Targets | Mapping[str, Any], metrics: Mapping[str, float]) -> dict[str, bool]:
    """Which targets `metrics` meet, by target name; a metric not in `metrics` counts as 0."""
    limits = thresholds(targets)
    return {t.name: t.met(metrics.get(t.metric, 0.0), limits[t.metric]) for t in TARGETS}


def target_values(rows: Sequence[LeaderboardRow]) -> dict[str, float]:
    """The target metrics of validation results pooled over `rows` (a few recent tests of one config).

    hit, high_vol_share: trade-weighted; blunders_per_100: per 100 trades; payoff: mean over
    the tests with trades; maxdd: the worst test (USD ≤ 0). 0 when no trade (maxdd: no test).
    """
    trades = sum(r.val_trades for r in rows)
    traded = [r.val_payoff for r in rows if r.val_trades]
    return {
        "hit": sum(r.val_hit * r.val_trades for r in rows) / trades if trades else 0.0,
        "payoff": sum(traded) / len(traded) if traded else 0.0,
        "maxdd": min((r.val_maxdd for r in rows), default=0.0),
        "blunders_per_100": 100.0 * sum(r.val_blunders for r in rows) / trades if trades else 0.0,
        "high_vol_share": sum(r.val_high_vol_share * r.val_trades for r in rows) / trades if trades else 0.0,
    }
