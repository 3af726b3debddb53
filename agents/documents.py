"""Schemas of the session's JSON documents (DESIGN.md §4), checked when they are written.

session_config.json, segment_plan.json, segment_results.json and metrics_global.json are
validated here before they reach the disk (conductor.json has engine.session.ConductorState),
so a reader — the console, replay, `report`, another tool — can trust their shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.messages import CriticMessage, StrategistMessage
from agents.settings import Settings
from engine.events import SCHEMA_VERSION
from engine.params import Params
from engine.standings import Standing
from engine.targets import TargetName, Targets

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Doc(BaseModel):
    model_config = _STRICT


class SyntheticSource(_Doc):
    kind: Literal["synthetic"]
    seed: int
    n_bars: int = Field(gt=0)
    interval_ms: int = Field(gt=0)


class FileSource(_Doc):
    kind: Literal["file"]
    path: str
    sha256: str | None = None  # the file's contents, so only sessions on the same data share a baseline


class WindowsDoc(_Doc):
    """How the session's tests sit on the walk-forward windows the data holds (engine.windows.TestPlan)."""

    available: int = Field(ge=1)
    segments: int = Field(ge=1)
    tests: int = Field(ge=1)
    asked_segments: int = Field(ge=1)
    asked_tests: int = Field(ge=1)
    reuse: bool


class BaselineDoc(_Doc):
    """Where the starting config came from (agents.baseline); session None: the defaults."""

    session: str | None
    config_id: str | None
    deflated_sharpe: float | None


class SessionConfigDoc(_Doc):
    """session_config.json: the values the session actually runs with (never an API key)."""

    v: Literal[SCHEMA_VERSION]  # type: ignore[valid-type]  # mypy takes no named constant in Literal[]
    session_id: str
    created_at: str
    settings: Settings
    data: SyntheticSource | FileSource = Field(discriminator="kind")
    windows: WindowsDoc | None = None  # None: a session from before windows were fitted (they were reused in turn)
    base_params: Params
    base_origin: str
    baseline: BaselineDoc | None = None
    agents: dict[Literal["strategist", "critic"], Literal["offline", "anthropic", "openai"]]


class ChosenConfig(_Doc):
    index: int = Field(ge=0)
    name: str
    config_id: str
    label: str
    params: Params


class PlannedTest(_Doc):
    test_id: str
    window: int = Field(ge=0)
    reused: bool = False  # the window ran in an earlier test of the session (--allow-reuse)


class SegmentPlanDoc(_Doc):
    """segment_plan.json: the proposals, the Critic's choice and the tests planned."""

    segment: int = Field(ge=1)
    role: Literal["explore", "new_methods", "validate", "ensemble"]
    base_params_json: str
    proposals: StrategistMessage
    critic: CriticMessage
    chosen: list[ChosenConfig] = Field(min_length=1)
    research_params_json: str
    ensemble_params_json: list[str]
    targets: Targets
    tests_planned: list[PlannedTest]


class PhaseFigures(_Doc):
    """A config's trades of one phase over many tests (agents.report.Tally.metrics)."""

    tests: int = Field(ge=0)
    n_trades: int = Field(ge=0)
    hit: float = Field(ge=0, le=1)
    payoff: float = Field(ge=0)
    total_pnl: float
    maxdd: float = Field(le=0)
    blunders: int = Field(ge=0)
    blunders_per_100: float = Field(ge=0)
    high_vol_share: float = Field(ge=0, le=1)


class AppliedPatch(_Doc):
    plan_id: str
    from_test: str
    who: str
    change: dict[str, str]


class BaselineFigures(_Doc):
    tests: int = Field(ge=0)
    val_trades: int = Field(ge=0)
    val_pnl: float
    val_score: float = Field(ge=0, le=100)


class FinalAllocation(_Doc):
    mode: Literal["ACTIVE", "REDUCED", "SHADOW"]
    allocation: float = Field(ge=0, le=1)


class EnsemblePortfolio(_Doc):
    """The segment-5 ensemble run as one portfolio under the allocation controller."""

    members: list[str] = Field(min_length=1)
    bars: int = Field(gt=0)
    capital_usd: float = Field(gt=0)
    pnl: float
    sharpe: float
    maxdd: float = Field(le=0)
    equal_weights_pnl: float
    no_override_pnl: float
    override_bars: int = Field(ge=0)
    rebalances: int = Field(ge=0)
    final: dict[str, FinalAllocation]


class Overfitting(_Doc):
    """How much of the session's best is selection (agents.trials, engine.overfit)."""

    trials: int = Field(ge=0)
    tests: int = Field(ge=0)
    pbo: float | None = Field(ge=0, le=1)
    pbo_why: str | None
    pbo_splits: int = Field(ge=0)
    pbo_combinations: int = Field(ge=0)
    pbo_median_logit: float | None
    profitable_validation: int = Field(ge=0)
    profitable_by_chance: float = Field(ge=0)
    significant_validation: int = Field(ge=0)
    significant_by_chance: float = Field(ge=0)
    significance_alpha: float = Field(gt=0, lt=1)
    profitable_holdout: int = Field(ge=0)
    significant_and_holdout_profitable: int = Field(ge=0)


class SegmentResultsDoc(_Doc):
    """segment_results.json: the research config per phase, the baselines, the standings."""

    segment: int = Field(ge=1)
    role: str
    tests: int = Field(ge=0)
    tests_failed: int = Field(ge=0)
    chosen_config: list[ChosenConfig]
    patches: list[AppliedPatch]
    chosen: dict[Literal["train", "validation", "holdout"], PhaseFigures]
    targets: Targets
    targets_met: dict[TargetName, bool]
    baselines: dict[str, BaselineFigures]
    standings: list[Standing]
    ensemble_portfolio: EnsemblePortfolio | None = None
    reused_tests: int = Field(0, ge=0)  # tests on a window an earlier test ran on (--allow-reuse)
    overfitting: Overfitting | None = None  # over the session's tests so far (agents.trials)


class SegmentLine(_Doc):
    segment: int = Field(ge=1)
    role: str
    validation: PhaseFigures
    targets_met: dict[str, bool]


class AgentsUsage(_Doc):
    providers: dict[str, str]
    llm_usage: dict[str, float | int]


class MetricsGlobalDoc(_Doc):
    """metrics_global.json: the session's aggregates."""

    session_id: str
    segments_done: int = Field(ge=0)
    tests: int = Field(ge=0)
    tests_failed: int = Field(ge=0)
    configs_tried: int = Field(ge=0)
    research_validation_trades: int = Field(ge=0)
    research_validation_pnl: float
    plans: int = Field(ge=0)
    plans_by_status: dict[str, int]
    patches_applied: int = Field(ge=0)
    best: Standing | None
    standings: list[Standing]
    ensemble: EnsemblePortfolio | None
    agents: AgentsUsage
    segments: list[SegmentLine]
    overfitting: Overfitting | None = None
    windows: str = ""  # how the tests sat on the data's windows, one line
    baseline: str = ""  # where the starting config came from, one line
    reused_tests: int = Field(0, ge=0)


DOCUMENTS: dict[str, type[_Doc]] = {
    "session_config.json": SessionConfigDoc,
    "segment_plan.json": SegmentPlanDoc,
    "segment_results.json": SegmentResultsDoc,
    "metrics_global.json": MetricsGlobalDoc,
}


def checked(name: str, document: dict[str, Any]) -> dict[str, Any]:
    """`document` itself, once it passes its schema (pydantic.ValidationError if not)."""
    DOCUMENTS[name].model_validate(document)
    return document
