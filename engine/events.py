"""The events of a research session (DESIGN.md §5), one pydantic model per kind.

Every line of a session's ``*.jsonl`` files is one of these events. The models are the
edge of the program: they forbid unknown fields, reject NaN and infinity, check bounds and
timestamps, and refuse records written by another schema version, so the code that reads
them can trust what it gets.

Speed: ``event_to_json`` goes through pydantic's ``model_dump_json`` and is fine for the
occasional plan or decision. The conductor writes ~50k trades per session; on that hot path
it may build plain dicts and hand them to ``engine.jsonl.JsonlWriter`` (``json.dumps``
underneath), as long as the tests validate those dicts with ``TradeEvent.model_validate``
so the shape cannot drift from the model. Such a dict starts from ``event_fields``, which
stamps the schema version: no writer spells ``v`` itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    model_serializer,
    model_validator,
)

SCHEMA_VERSION = 1
"""Version written in every event's ``v``; a reader refuses any other."""

# One config for every record: unknown fields are typos or a newer writer, NaN/inf would
# poison every aggregate downstream, and assignment is validated so a mutated event can
# never be serialised into something its own model would refuse to read back.
_RECORD_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)

# Canonical shape only ("2026-11-21T14:05:00.123Z" or "...+00:00"): market time and wall
# clock are compared as strings across files, so every writer must spell UTC the same way.
_UTC_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)")


def utc_now_iso() -> str:
    """Return the current wall-clock time as ISO 8601 UTC, millisecond precision, 'Z'."""
    now = datetime.now(UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_utc_timestamp(value: str) -> str:
    if not _UTC_ISO.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an ISO 8601 UTC timestamp "
            "(expected e.g. '2026-11-21T14:05:00Z' or '2026-11-21T14:05:00.000+00:00')"
        )
    try:
        # The pattern accepts 2026-02-30; the calendar check does not.
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date and time: {exc}") from None
    return value


UtcTimestamp = Annotated[str, AfterValidator(_check_utc_timestamp)]
"""An ISO 8601 UTC timestamp string, kept as written."""


def _reject_non_finite(value: Any) -> Any:
    # The strict unions below would otherwise report NaN as "not a valid boolean".
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not allowed: values must be finite numbers")
    return value


# Strict members, tried left to right: True stays a bool, 1 stays an int, 1.0 stays a
# float. A lax union would turn True into 1 or 1 into 1.0, and a patch applied to a
# parameter must carry exactly the type the parameter schema declares.
PatchValue = Annotated[
    StrictBool | StrictInt | StrictFloat | StrictStr,
    Field(union_mode="left_to_right"),
    BeforeValidator(_reject_non_finite),
]
EvidenceValue = Annotated[
    StrictBool | StrictInt | StrictFloat | StrictStr | None,
    Field(union_mode="left_to_right"),
    BeforeValidator(_reject_non_finite),
]

Side = Literal["LONG", "SHORT"]
ExitReason = Literal["tp_hit", "sl_hit", "timeout", "signal_flip", "end_of_data"]
VolBin = Literal["low", "mid", "high"]
Phase = Literal["train", "validation", "holdout"]
# "approved" is read in sessions written before approvals became one line; see agents/plans.py
PlanStatus = Literal["pending", "approved", "edited", "vetoed", "applied", "superseded", "expired"]
DecisionKind = Literal["approve", "edit", "veto"]
AllocationMode = Literal["ACTIVE", "REDUCED", "SHADOW"]
AgentName = Literal["strategist", "critic", "maestro"]

NonEmptyStr = Annotated[str, Field(min_length=1)]
# ids are read back into positions and file names: only their own shape is accepted
TestId = Annotated[str, Field(pattern=r"^seg[1-9][0-9]*_test[0-9]{3,}$")]
PlanId = Annotated[str, Field(pattern=r"^P[1-9][0-9]*-[0-9]{3,}$")]


class Event(BaseModel):
    """Fields every event carries: schema version, kind, session and wall-clock time."""

    model_config = _RECORD_CONFIG

    v: int = SCHEMA_VERSION
    kind: str
    session_id: NonEmptyStr
    emitted_at: UtcTimestamp

    @model_validator(mode="before")
    @classmethod
    def _refuse_other_schema_versions(cls, data: Any) -> Any:
        # Checked before the fields so a record from another version gets this one clear
        # message instead of a list of "extra field" and "missing field" errors.
        if isinstance(data, dict) and "v" in data:
            _check_schema_version(data["v"])
        return data

    def with_changes(self, **changes: Any) -> Self:
        """Return a copy with ``changes`` applied and the whole event validated again.

        Prefer this to ``model_copy(update=...)``, which skips validation.
        """
        return type(self).model_validate({**self.model_dump(), **changes})


def event_fields(kind: str, session_id: str, emitted_at: str | None = None) -> dict[str, Any]:
    """The fields every event carries, for a plain-dict event: ``v`` (this schema), ``kind``,
    ``session_id`` and ``emitted_at`` (now, unless given), in the order the models write them."""
    return {"v": SCHEMA_VERSION, "kind": kind, "session_id": session_id, "emitted_at": emitted_at or utc_now_iso()}


def _is_supported_version(v: Any) -> bool:
    # type() rather than isinstance(): True == 1 but is no version number.
    return type(v) is int and v == SCHEMA_VERSION


def _check_schema_version(v: Any) -> None:
    if not _is_supported_version(v):
        raise ValueError(
            f"unsupported schema version v={v!r}: this maestro-tui reads v={SCHEMA_VERSION} "
            "only; open the session with the version that wrote it"
        )


class Gates(BaseModel):
    """Entry gates as evaluated when the trade was entered (DESIGN.md §9)."""

    model_config = _RECORD_CONFIG

    cvd: bool
    imb: bool
    atrz: bool
    vhf: bool


class TradeEvent(Event):
    """One closed trade of one test; ``ts`` is the market time of its exit bar."""

    kind: Literal["trade"] = "trade"
    ts: UtcTimestamp
    episode_id: int = Field(ge=0)
    test_id: TestId
    tf: str = Field(pattern=r"^\d+[smhdwM]$")
    side: Side
    reason: NonEmptyStr
    entry_ts: UtcTimestamp
    entry: float = Field(gt=0)
    exit: float = Field(gt=0)
    qty: float = Field(gt=0)
    fees: float = Field(ge=0)
    pnl: float
    gates: Gates
    bars_held: int = Field(ge=0)
    exit_reason: ExitReason
    vol_bin: VolBin
    phase: Phase


class ScoreEvent(Event):
    """Metrics of one 120-bar micro-episode of one test.

    ``payoff`` must be finite: a producer with no losing trade caps it rather than
    writing infinity.
    """

    kind: Literal["score"] = "score"
    episode_id: int = Field(ge=0)
    test_id: TestId
    bars: int = Field(ge=1)
    n_trades: int = Field(ge=0)
    hit: float = Field(ge=0, le=1)
    payoff: float = Field(ge=0)
    total_pnl: float
    maxdd: float = Field(le=0)
    blunders: int = Field(ge=0)
    score: float = Field(ge=0, le=100)
    vol_regime: VolBin
    phase: Phase


class PatchItem(BaseModel):
    """One parameter change; values keep their exact type (bool, int, float or str)."""

    model_config = _RECORD_CONFIG

    parameter: NonEmptyStr
    old_value: PatchValue
    new_value: PatchValue
    # the old value the plan showed, when the value in force at apply time differed from it
    shown_old_value: PatchValue | None = None

    @model_serializer(mode="wrap")
    def _drop_unset_extras(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_none(handler(self), ("shown_old_value",))


def _without_none(data: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    # fields added after the first sessions were written: absent rather than null when unset,
    # so a line reads the same as before unless it uses them
    for name in optional:
        if data.get(name, 0) is None:
            del data[name]
    return data


def _check_one_item_per_parameter(patch: list[PatchItem]) -> list[PatchItem]:
    seen: set[str] = set()
    for item in patch:
        if item.parameter in seen:
            # Two values for one parameter: which one the human approved is ambiguous.
            raise ValueError(f"parameter {item.parameter!r} appears twice in the patch")
        seen.add(item.parameter)
    return patch


def _format_patch_value(value: bool | int | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


class PlanEvent(Event):
    """A proposed adjustment and, in later lines of plans.jsonl, its status changes."""

    kind: Literal["plan"] = "plan"
    plan_id: PlanId
    nonce: NonEmptyStr
    episode_id: int | None = Field(ge=0)
    test_id: TestId | None
    agent: NonEmptyStr
    action: NonEmptyStr
    change: dict[str, str]
    patch: Annotated[
        list[PatchItem], Field(min_length=1), AfterValidator(_check_one_item_per_parameter)
    ]
    reason: str
    evidence: dict[str, EvidenceValue]
    status: PlanStatus
    superseded_by: str | None = None
    note: str | None = None
    rule: str | None = None  # the analyzer rule that fired it
    # what the evidence covers: config_id, label, method, phase, first_test, last_test, episodes, trades
    scope: dict[str, EvidenceValue] | None = None
    vetoed_before: str | None = None  # "P1-003 at seg1_test019": the same change was vetoed before
    applied_from: str | None = None  # the first test that runs with the patch (applied and edited plans)
    # once a rule window of tests ran with the patch: the triggering metric and the score, before vs after
    outcome: dict[str, EvidenceValue] | None = None

    @model_serializer(mode="wrap")
    def _drop_unset_extras(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_none(handler(self), ("rule", "scope", "vetoed_before", "applied_from", "outcome"))

    @staticmethod
    def change_from_patch(patch: Iterable[PatchItem | dict[str, Any]]) -> dict[str, str]:
        """Return the display form of a patch: ``{"atr_stop_mult": "1.5 -> 1.8"}``."""
        items = [p if isinstance(p, PatchItem) else PatchItem.model_validate(p) for p in patch]
        return {
            p.parameter: f"{_format_patch_value(p.old_value)} -> {_format_patch_value(p.new_value)}"
            for p in items
        }


def describe_change(change: Mapping[str, str]) -> str:
    """A plan's change in words, as `change_from_patch` displays it: `atr_stop_mult 1.5 -> 1.8, vhf_min 0.25 -> 0.3`."""
    return ", ".join(f"{parameter} {step}" for parameter, step in change.items())


_Line = TypeVar("_Line")


def fold_plan_line(plans: dict[str, _Line], plan_id: str, line: _Line) -> bool:
    """Fold one line of plans.jsonl into `plans` (plan_id -> the plan's latest line, in the order
    plans were first written): a plan is what its latest line says. True for a plan's first line."""
    first = plan_id not in plans
    plans[plan_id] = line
    return first


def latest_plans(path: Any) -> dict[str, PlanEvent]:
    """Each plan's latest line in the plans.jsonl at `path`, in the order plans were first written.

    Torn and invalid lines are skipped (engine.jsonl). No file: no plans.
    """
    from engine.jsonl import read_jsonl  # engine.jsonl imports this module

    plans: dict[str, PlanEvent] = {}
    for line in read_jsonl(path, PlanEvent).records:
        fold_plan_line(plans, line.plan_id, line)
    return plans


class DecisionEvent(Event):
    """A human decision on a plan; ``patch`` is what was finally approved (empty on veto)."""

    kind: Literal["decision"] = "decision"
    plan_id: PlanId
    nonce: NonEmptyStr
    decision: DecisionKind
    patch: Annotated[list[PatchItem], AfterValidator(_check_one_item_per_parameter)]
    by: NonEmptyStr
    note: str = ""

    @model_validator(mode="after")
    def _approval_carries_a_patch(self) -> DecisionEvent:
        # An approval of nothing would consume the nonce and change nothing: refuse it here
        # rather than let the conductor log a silent no-op.
        if self.decision != "veto" and not self.patch:
            raise ValueError(f"a decision to {self.decision} must carry a non-empty patch")
        return self


class AllocationEvent(Event):
    """An allocation decision for one strategy, or a systemic-risk override (``override``).

    ``sharpe`` is None when the strategy has too little history to rate (it stays ACTIVE);
    ``signals_changed`` names the strategies whose BUY an override turned into HOLD.
    """

    kind: Literal["allocation"] = "allocation"
    ts: UtcTimestamp
    strategy: NonEmptyStr
    sharpe: float | None
    mode: AllocationMode
    allocation: float = Field(ge=0)
    previous_allocation: float = Field(ge=0)
    reason: str
    agent_id: str | None = None
    nonce: str | None = None
    override: bool = False
    signals_changed: list[str] = Field(default_factory=list)


class AuditEvent(Event):
    """An applied change, a refused decision or a replayed nonce: who, why, with which nonce."""

    kind: Literal["audit"] = "audit"
    action: NonEmptyStr
    plan_id: PlanId | None = None
    nonce: str | None = None
    who: NonEmptyStr
    why: str
    details: dict[str, JsonValue] = Field(default_factory=dict)


def _one_line(text: Any) -> Any:
    # The conversation pane shows one line per message; a newline from an LLM would
    # break that, so line breaks are folded into single spaces.
    if isinstance(text, str):
        return re.sub(r"[ \t]*[\r\n]+[ \t]*", " ", text).strip()
    return text


class MessageEvent(Event):
    """An agent message of conversation.jsonl: the §6 message shape plus a one-line text."""

    kind: Literal["message"] = "message"
    key: str | None = None  # what the line is, for a resume to write it once (agents.journal); older lines: none
    agent: AgentName
    provider: NonEmptyStr
    segment: int = Field(ge=1)
    turn: int = Field(ge=0)
    message: dict[str, JsonValue]
    text: Annotated[str, BeforeValidator(_one_line)]


AnyEvent = Annotated[
    TradeEvent | ScoreEvent | PlanEvent | DecisionEvent | AllocationEvent | AuditEvent | MessageEvent,
    Field(discriminator="kind"),
]
"""Any event, told apart by its ``kind``."""

_ANY_EVENT: TypeAdapter[Any] = TypeAdapter(AnyEvent)

EVENT_FILES: dict[str, type[Event]] = {
    "trades.jsonl": TradeEvent,
    "scores.jsonl": ScoreEvent,
    "plans.jsonl": PlanEvent,
    "decisions.jsonl": DecisionEvent,
    "allocation.jsonl": AllocationEvent,
    "audit.jsonl": AuditEvent,
    "conversation.jsonl": MessageEvent,
}
"""The session files of DESIGN.md §4 that hold events, and the model of their lines."""


def parse_event(obj: dict[str, Any]) -> Event:
    """Validate a decoded JSON object into the event model its ``kind`` names.

    Raises ``pydantic.ValidationError`` (a ValueError) for an unknown kind, a bad field or
    another schema version.
    """
    if isinstance(obj, dict) and not _is_supported_version(obj.get("v", SCHEMA_VERSION)):
        # Checked before dispatching on kind, which a newer schema may have added: the base
        # model's validator raises the version error as a ValidationError.
        Event.model_validate(obj)
    return _ANY_EVENT.validate_python(obj)


def event_to_json(event: Event) -> str:
    """Serialise an event as one compact JSON line (no trailing newline, no NaN)."""
    return event.model_dump_json()


def read_events(path: Any):
    """A session file's lines as validated records (dicts, as written), by the model its name calls for.

    A line that parses but breaks its model (a wrong type, a missing field, a bad id) is
    skipped and counted among the bad lines with its reason, like a torn one, so the code
    that reads on can trust every record it gets. Returns engine.jsonl.JsonlRead.
    """
    from pathlib import Path

    from engine.jsonl import read_jsonl  # engine.jsonl imports this module

    got = read_jsonl(path, EVENT_FILES[Path(path).name])
    got.records = [r.model_dump() for r in got.records]
    return got
