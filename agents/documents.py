"""Schemas of the agents' session documents, session_config.json and segment_plan.json (DESIGN.md §4).

They are checked (engine.reports.documents.checked) before they reach the disk, like the
report documents of engine/reports/documents.py; conductor.json has engine.session.ConductorState.
`DOCUMENTS` names the schema of every session JSON document.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agents.messages import CriticMessage, StrategistMessage
from agents.settings import Settings
from engine.events import SCHEMA_VERSION
from engine.params import Params
from engine.reports.documents import ChosenConfig, Document, MetricsGlobalDoc, SegmentResultsDoc
from engine.targets import Targets


class SyntheticSource(Document):
    kind: Literal["synthetic"]
    seed: int
    n_bars: int = Field(gt=0)
    interval_ms: int = Field(gt=0)


class FileSource(Document):
    kind: Literal["file"]
    path: str
    sha256: str | None = None  # the file's contents, so only sessions on the same data share a baseline


class WindowsDoc(Document):
    """How the session's tests sit on the walk-forward windows the data holds (engine.windows.TestPlan)."""

    available: int = Field(ge=1)
    segments: int = Field(ge=1)
    tests: int = Field(ge=1)
    asked_segments: int = Field(ge=1)
    asked_tests: int = Field(ge=1)
    reuse: bool


class BaselineDoc(Document):
    """Where the starting config came from (agents.baseline); session None: the defaults."""

    session: str | None
    config_id: str | None
    deflated_sharpe: float | None


class StrategyRecord(Document):
    """A strategy the session researches, and where it came from (engine.strategies.recorded)."""

    name: str = Field(min_length=1)
    origin: str
    file: str | None = None  # the trader's file, loaded again on resume and in every worker
    sha256: str | None = None


class SessionConfigDoc(Document):
    """session_config.json: the values the session actually runs with (never an API key)."""

    v: Literal[SCHEMA_VERSION]  # type: ignore[valid-type]  # mypy takes no named constant in Literal[]
    session_id: str
    created_at: str
    settings: Settings
    data: SyntheticSource | FileSource = Field(discriminator="kind")
    windows: WindowsDoc | None = None  # None: a session from before windows were fitted (they were reused in turn)
    strategies: list[StrategyRecord] = Field(default_factory=list)  # empty: a session from before, on the built-ins
    base_params: Params
    base_origin: str
    baseline: BaselineDoc | None = None
    agents: dict[Literal["strategist", "critic"], Literal["offline", "anthropic", "openai"]]




class PlannedTest(Document):
    test_id: str
    window: int = Field(ge=0)
    reused: bool = False  # the window ran in an earlier test of the session (--allow-reuse)


class SegmentPlanDoc(Document):
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






















DOCUMENTS: dict[str, type[Document]] = {
    "session_config.json": SessionConfigDoc,
    "segment_plan.json": SegmentPlanDoc,
    "segment_results.json": SegmentResultsDoc,
    "metrics_global.json": MetricsGlobalDoc,
}
