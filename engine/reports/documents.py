"""Schemas of the report documents, segment_results.json and metrics_global.json (DESIGN.md §4).

They are checked when written (`checked`), so a reader (the console, replay, `report`,
another tool) can trust their shape. The agents' own documents (session_config.json,
segment_plan.json) are built on `Document` in agents/documents.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.params import Params
from engine.standings import Standing
from engine.targets import TargetName, Targets


class Document(BaseModel):
    """A session JSON document: no field beyond its schema, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ConfigFacts(BaseModel):
    """What the reports read of session_config.json (its schema: agents/documents.py SessionConfigDoc)."""

    model_config = ConfigDict(extra="ignore")

    class Settings(BaseModel):
        model_config = ConfigDict(extra="ignore")
        segments: int
        tests: int
        targets: Targets

    settings: Settings
    agents: dict[str, str] = Field(default_factory=dict)
    windows: dict[str, Any] | None = None  # engine.windows.TestPlan as JSON; None: a session from before fitting
    base_origin: str = ""


def checked(schema: type[Document], document: dict[str, Any]) -> dict[str, Any]:
    """`document` itself, once it passes `schema` (pydantic.ValidationError if not)."""
    schema.model_validate(document)
    return document



class ChosenConfig(Document):
    index: int = Field(ge=0)
    name: str
    config_id: str
    label: str
    params: Params

class PhaseFigures(Document):
    """A config's trades of one phase over many tests (engine.reports.segment_results.Tally.metrics)."""

    tests: int = Field(ge=0)
    n_trades: int = Field(ge=0)
    hit: float = Field(ge=0, le=1)
    payoff: float = Field(ge=0)
    total_pnl: float
    maxdd: float = Field(le=0)
    blunders: int = Field(ge=0)
    blunders_per_100: float = Field(ge=0)
    high_vol_share: float = Field(ge=0, le=1)

class AppliedPatch(Document):
    plan_id: str
    from_test: str
    who: str
    change: dict[str, str]

class BaselineFigures(Document):
    tests: int = Field(ge=0)
    val_trades: int = Field(ge=0)
    val_pnl: float
    val_score: float = Field(ge=0, le=100)

class FinalAllocation(Document):
    mode: Literal["ACTIVE", "REDUCED", "SHADOW"]
    allocation: float = Field(ge=0, le=1)

class EnsemblePortfolio(Document):
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

class Overfitting(Document):
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

class SegmentResultsDoc(Document):
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

class SegmentLine(Document):
    segment: int = Field(ge=1)
    role: str
    validation: PhaseFigures
    targets_met: dict[str, bool]

class AgentsUsage(Document):
    providers: dict[str, str]
    llm_usage: dict[str, float | int]

class MetricsGlobalDoc(Document):
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
