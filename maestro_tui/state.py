"""What the console shows, built from the session's files.

`SessionView.apply(item)` takes one parsed item from the feed (a line of a JSONL file as its
event model, a JSON document, a finished test folder) and updates the view; the widgets only
read it. The live console and replay feed the same view, so what one shows the other shows.
A line that breaks its model never gets here: the feed skipped and counted it where it read it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agents.allocator import Rating, family_returns
from agents.documents import BaselineDoc, WindowsDoc
from engine.allocation import AllocationSettings
from engine.events import (
    AllocationEvent,
    AuditEvent,
    DecisionEvent,
    MessageEvent,
    PlanEvent,
    ScoreEvent,
    fold_plan_line,
)
from engine.jsonl import SessionFileError, read_jsonl
from engine.leaderboard import LeaderboardRow
from engine.methods import BUILT_INS
from engine.session import ConductorState, conductor_alive
from engine.standings import Standing, StandingsBook
from engine.targets import TARGET_METRICS, target_values

MAX_EPISODES = 400
EPISODE_TESTS = 12  # a batch reads the episodes of at most this many tests (~36 each; the pane shows 40)
RECENT_TESTS = 10  # the targets are measured over the research config's last this many tests
BUILT_IN_NAMES = tuple(s.name for s in BUILT_INS)


@dataclass(frozen=True)
class Item:
    """One thing the feed read: `kind` names the file or document it came from."""

    kind: str  # "conversation", "plans", "decisions", "audit", "allocation", "config", "conductor", "test", "bad"
    # the line's event model (MessageEvent, PlanEvent, DecisionEvent, AuditEvent, AllocationEvent), the
    # document as a dict, a TestDone, or ("bad") the lines skipped with where and why
    payload: Any


@dataclass
class TestDone:
    """A finished test folder: its leaderboard rows, and its episodes (ScoreEvents), read on demand.

    The episodes pane shows only recent episodes, so a replay of thousands of tests need not
    hold every episode of every test in memory: `scores` reads scores.jsonl when first asked.
    """

    test_id: str
    rows: list[LeaderboardRow]
    failed: bool = False
    scores_path: Path | None = None
    _scores: list[ScoreEvent] | None = None

    @property
    def scores(self) -> list[ScoreEvent]:
        """The test's episodes; lines that break ScoreEvent are skipped. SessionFileError if the file is unreadable."""
        if self._scores is None:
            self._scores = read_jsonl(self.scores_path, ScoreEvent).records if self.scores_path else []
        return self._scores

    def forget_scores(self) -> None:
        """Drop the episodes again (they can be re-read): the replay keeps memory flat."""
        if self.scores_path is not None:
            self._scores = None


def _field(doc: Mapping[str, Any] | None, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    """`doc[key]` when it is a `kind`, else `default` (no document yet, an older writer, a value of another type)."""
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if isinstance(value, bool):  # an int to isinstance(), but no count, pid or amount
        return default
    return value if isinstance(value, kind) else default


def _doc(model: type[BaseModel], value: Any) -> Any:
    """`value` as `model` (the writer's own schema), or None when it is absent or not that shape."""
    try:
        return model.model_validate(value) if value is not None else None
    except ValidationError:
        return None


@dataclass(frozen=True)
class SessionConfig:
    """What the console reads of session_config.json (agents.documents.SessionConfigDoc).

    Read field by field: a field missing or of another type takes its default, so a document
    from another version of the writer still shows what it can. `SessionConfig.of(None)` is
    "no session config read yet".
    """

    present: bool = False  # a document was read
    session_id: str = ""
    created_at: str | None = None
    segments: int = 0  # settings.segments, and settings.tests per segment
    tests: int = 0
    approval: str = "?"
    targets: Mapping[str, Any] = field(default_factory=dict)  # settings.targets as recorded (engine.targets reads it)
    agents: Mapping[str, str] = field(default_factory=dict)  # role -> provider
    baseline: BaselineDoc | None = None  # where the starting config came from
    windows: WindowsDoc | None = None  # how the tests sit on the data's windows
    methods: tuple[str, ...] = BUILT_IN_NAMES  # the session's strategies (a session from before: the built-ins)
    allocation: AllocationSettings = field(default_factory=AllocationSettings)  # settings.allocation (else defaults)

    @classmethod
    def of(cls, doc: Mapping[str, Any] | None) -> SessionConfig:
        settings = _field(doc, "settings", Mapping, {})
        return cls(
            present=bool(doc),
            session_id=_field(doc, "session_id", str, ""),
            created_at=_field(doc, "created_at", str, None),
            segments=_field(settings, "segments", int, 0),
            tests=_field(settings, "tests", int, 0),
            approval=_field(settings, "approval", str, "?"),
            targets=_field(settings, "targets", Mapping, {}),
            agents=_field(doc, "agents", Mapping, {}),
            baseline=_doc(BaselineDoc, _field(doc, "baseline", Mapping, None)),
            windows=_doc(WindowsDoc, _field(doc, "windows", Mapping, None)),
            methods=tuple(str(r["name"]) for r in _field(doc, "strategies", list, [])
                          if isinstance(r, Mapping) and isinstance(r.get("name"), str)) or BUILT_IN_NAMES,
            allocation=_doc(AllocationSettings, _field(settings, "allocation", Mapping, None)) or AllocationSettings(),
        )


@dataclass(frozen=True)
class ConductorStatus:
    """What the console reads of conductor.json (engine.session.ConductorState), or of the replay's stand-in.

    Read field by field like SessionConfig: the console shows a state half-written or from
    another version as far as it can, and whether the conductor still runs only from a
    document that is a whole ConductorState (`alive`).
    """

    present: bool = False
    session_id: str = ""
    state: str = "starting"
    pid: int | None = None
    segment: int = 0
    segments: int = 0
    tests_done: int | None = None  # None: not said (the console counts the tests it has read)
    tests_total: int = 0
    approval: str = "?"
    providers: Mapping[str, str] = field(default_factory=dict)  # role -> provider, "offline (why)" after a failure
    llm_calls: int = 0
    llm_cost_usd: float = 0.0
    waiting_for: str | None = None
    error: str | None = None  # why a failed session failed
    document: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, doc: Mapping[str, Any] | None) -> ConductorStatus:
        llm = _field(doc, "llm", Mapping, {})
        return cls(
            present=bool(doc),
            session_id=_field(doc, "session_id", str, ""),
            state=_field(doc, "state", str, "starting"),
            pid=_field(doc, "pid", int, None),
            segment=_field(doc, "segment", int, 0),
            segments=_field(doc, "segments", int, 0),
            tests_done=_field(doc, "tests_done", int, None),
            tests_total=_field(doc, "tests_total", int, 0),
            approval=_field(doc, "approval", str, "?"),
            providers=_field(doc, "providers", Mapping, {}),
            llm_calls=_field(llm, "calls", int, 0),
            llm_cost_usd=_field(llm, "cost_usd", (int, float), 0.0),
            waiting_for=_field(doc, "waiting_for", str, None),
            error=_field(doc, "error", str, None),
            document=doc or {},
        )

    def alive(self) -> bool:
        """False only when the document is a whole ConductorState whose conductor no longer runs."""
        written = _doc(ConductorState, self.document) if self.present else None
        if written is None:
            return True  # no state, a replay's stand-in, or one half-written: unknown shows as alive
        try:
            return conductor_alive(written)
        except Exception:  # noqa: BLE001 - a heartbeat or pid the system cannot read: unknown, as above
            return True


@dataclass
class SessionView:
    """Everything the panes display; updated only through `apply`."""

    config: dict | None = None
    conductor: dict | None = None
    episodes: deque[ScoreEvent] = field(default_factory=lambda: deque(maxlen=MAX_EPISODES))  # newest last
    plans: dict[str, PlanEvent] = field(default_factory=dict)  # plan_id -> latest line
    proposals: dict[str, PlanEvent] = field(default_factory=dict)  # plan_id -> first line: the patch as proposed
    plan_order: list[str] = field(default_factory=list)
    decisions: list[DecisionEvent] = field(default_factory=list)
    applied: dict[str, AuditEvent] = field(default_factory=dict)  # plan_id -> patch_applied audit record
    refusals: list[AuditEvent] = field(default_factory=list)
    conversation: list[MessageEvent] = field(default_factory=list)
    allocation: dict[str, AllocationEvent] = field(default_factory=dict)  # strategy -> latest AllocationEvent
    overrides: list[AllocationEvent] = field(default_factory=list)
    mode_changes: dict[str, AllocationEvent] = field(default_factory=dict)  # strategy -> its latest change of mode
    # per method family, its out-of-sample return in every test so far (agents.allocator.family_returns),
    # from which `ratings` gives the trailing Sharpe the allocation desk rates it by, as of the latest test
    family_returns: dict[str, list[float]] = field(default_factory=dict)
    book: StandingsBook = field(default_factory=StandingsBook)  # the standings, test by test
    research: list[LeaderboardRow] = field(default_factory=list)  # the research config's row per test
    trials: int | None = None  # configs tried so far, and their PBO (agents.trials), as of the last segment end
    pbo: float | None = None
    tests_seen: int = 0
    tests_failed: int = 0
    bad_lines: int = 0
    bad_details: deque = field(default_factory=lambda: deque(maxlen=50))  # "plans.jsonl line 7: why", newest last
    version: int = 0  # bumps on every change: widgets redraw when it moves
    skip_episodes: bool = False  # a replay refold skips the episodes of tests long past

    def fold(self, items: list[Item]) -> None:
        """Fold a batch of items in order, reading episodes (scores.jsonl) only for its last EPISODE_TESTS tests:
        the episodes pane shows the newest, and a batch of hundreds of tests (a replay's seek, a console opened on
        a running session) would otherwise read and hold every one of them."""
        tests = [i for i, item in enumerate(items) if item.kind == "test"]
        recent_from = tests[-EPISODE_TESTS] if len(tests) >= EPISODE_TESTS else 0
        for i, item in enumerate(items):
            self.skip_episodes = i < recent_from
            self.apply(item)
            if item.kind == "test":
                item.payload.forget_scores()  # the view holds what it shows; the rest can be read again
        self.skip_episodes = False

    def apply(self, item: Item) -> None:
        """Fold one item into the view; a test whose scores.jsonl cannot be read counts as bad."""
        try:
            self._apply(item)
        except SessionFileError as err:
            # The one read that happens here: a replay reads a test's episodes when it shows them
            # (TestDone.scores). Every record was checked against its model by the feed already.
            self.bad_lines += 1
            self.bad_details.append(f"a {item.kind} record skipped: {err}")
        self.version += 1

    def _apply(self, item: Item) -> None:
        kind, p = item.kind, item.payload
        if kind == "config":
            self.config = p
        elif kind == "conductor":
            self.conductor = p
        elif kind == "plans":
            if fold_plan_line(self.plans, p.plan_id, p):
                self.plan_order.append(p.plan_id)
                self.proposals[p.plan_id] = p
        elif kind == "decisions":
            self.decisions.append(p)
        elif kind == "audit":
            if p.action == "patch_applied" and p.plan_id:
                self.applied[p.plan_id] = p
            elif p.action in ("decision_refused", "nonce_replayed"):
                self.refusals.append(p)
        elif kind == "conversation":
            self.conversation.append(p)
            said = p.message.get("metricas_pos_patch") if p.agent == "maestro" else None
            if isinstance(said, dict) and "configs_tried" in said:  # the Maestro's word at each segment's end
                self.trials, self.pbo = said["configs_tried"], said.get("pbo")
        elif kind == "allocation":
            if p.override:
                self.overrides.append(p)
            else:
                before = self.allocation.get(p.strategy)
                if p.mode != (before.mode if before else "ACTIVE"):  # every strategy starts ACTIVE (engine.allocation)
                    self.mode_changes[p.strategy] = p
                self.allocation[p.strategy] = p
        elif kind == "test":
            if self.tests_seen == self.book.stored:  # else the book has it already (a replay went back)
                self.book.show(self.tests_seen)
                self.book.add(p.rows)
            self.tests_seen += 1
            self.tests_failed += p.failed
            if not self.skip_episodes:
                for s in p.scores:
                    self.episodes.append(s)
            research = next((r for r in p.rows if r.role == "chosen"), None) or next(
                (r for r in p.rows if r.role == "ensemble"), None
            )
            if research is not None:
                self.research.append(research)
            for family, r in family_returns(p.rows).items():
                self.family_returns.setdefault(family, []).append(r)
        elif kind == "bad":
            self.bad_lines += len(p)
            self.bad_details.extend(p)

    # ------------------------------------------------------------ derived

    @property
    def session_config(self) -> SessionConfig:
        """session_config.json as the console reads it (empty before it is read)."""
        return SessionConfig.of(self.config)

    @property
    def conductor_status(self) -> ConductorStatus:
        """conductor.json (or a replay's stand-in) as the console reads it (empty before it is read)."""
        return ConductorStatus.of(self.conductor)

    def standings(self) -> list[Standing]:
        return self.book.table()

    def pending(self) -> list[PlanEvent]:
        return [self.plans[i] for i in self.plan_order if self.plans[i].status == "pending"]

    def plans_newest_first(self) -> list[PlanEvent]:
        """Pending plans first (oldest first), then the rest, newest first."""
        pending = self.pending()
        rest = [self.plans[i] for i in reversed(self.plan_order) if self.plans[i].status != "pending"]
        return pending + rest

    def reasoning_of(self, plan_id: str) -> list[str]:
        """The conversation lines about a plan (`agent: text`), oldest first."""
        return [f"{m.agent}: {m.text}" for m in self.conversation if m.message.get("ref") == plan_id]

    def earlier_plans_on(self, plan_id: str) -> list[PlanEvent]:
        """The latest lines of plans written before `plan_id` that change any of its parameters, oldest first."""
        names = {item.parameter for item in self.plans[plan_id].patch}
        earlier = self.plan_order[: self.plan_order.index(plan_id)]
        return [self.plans[i] for i in earlier if names & {item.parameter for item in self.plans[i].patch}]

    def targets(self, last_tests: int = RECENT_TESTS, trend_tests: int = 60) -> dict[str, tuple[float, list[float]]]:
        """Per target metric: (current value over the last tests, trend over recent tests) of the research config."""
        rows = self.research[-trend_tests:]
        current = target_values(rows[-last_tests:])
        singles = [target_values([r]) for r in rows]
        trend = {k: [single[k] for single in singles] for k in TARGET_METRICS}
        return {k: (current[k], trend[k]) for k in current}

    def target_trades(self, last_tests: int = RECENT_TESTS) -> int:
        """The research config's validation trades over the tests `targets` measures: none, nothing to judge."""
        return sum(r.val_trades for r in self.research[-last_tests:])

    def ratings(self) -> dict[str, tuple[float | None, int]]:
        """Per method family: (trailing Sharpe, tests it is of) as the allocation desk rates it after the latest
        test (agents.allocator.Rating; None: too little history)."""
        rating = Rating.of(self.session_config.allocation)
        return {f: (rating.sharpe(r), min(len(r), rating.window)) for f, r in self.family_returns.items()}

    def equity_of(self, config_id: str) -> list[float]:
        """Cumulative validation PnL of a config over the tests it ran in (USD), for the plot."""
        return [total for _, total in self.book.equity(config_id)]
