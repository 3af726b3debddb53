"""The approval protocol (DESIGN.md §7): pending plans, decisions, nonces, supersession.

A PlanEvent is pending until a decision arrives. `approve` applies its patch as proposed,
`edit` applies the human's values (validated against the parameter schema: an invalid
edit is refused and the plan stays pending), `veto` discards it. Each nonce is spent at
most once; a replayed decision is a logged no-op. A newer plan on a parameter supersedes
an older pending one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from filelock import FileLock

from engine.events import DecisionEvent, PatchItem, PlanEvent, utc_now_iso
from engine.jsonl import append_jsonl, read_json, read_jsonl
from engine.params import ParamError, Params, coerce_value
from engine.session import AUDIT, DECISIONS, PLANS, SEGMENT_PLAN


@dataclass
class PlanRecord:
    """A plan's latest line in plans.jsonl, where it was emitted, and (veto-only) when it applies itself."""

    event: PlanEvent
    segment: int
    emit_index: int  # global index of the test whose processing emitted it
    deadline: float | None = None  # monotonic seconds, veto-only mode

    @property
    def parameters(self) -> set[str]:
        return {p.parameter for p in self.event.patch}


@dataclass(frozen=True)
class Verdict:
    """What to do with a decision: apply a patch, veto, refuse (with why), or ignore a replay."""

    kind: Literal["apply", "veto", "refuse", "replay"]
    plan: PlanRecord | None
    patch: list[PatchItem] = field(default_factory=list)
    reason: str = ""


def new_nonce() -> str:
    """A fresh single-use identity for a plan (or any applied change)."""
    return secrets.token_hex(8)


@dataclass
class PlanBook:
    """Every plan of the session by id, and the nonces already spent."""

    plans: dict[str, PlanRecord] = field(default_factory=dict)
    spent: set[str] = field(default_factory=set)

    def pending(self) -> list[PlanRecord]:
        return [r for r in self.plans.values() if r.event.status == "pending"]

    def superseded_by(self, new: PlanRecord) -> list[PlanRecord]:
        """Older pending plans on any of `new`'s parameters."""
        return [
            r
            for r in self.pending()
            if r.event.plan_id != new.event.plan_id and r.parameters & new.parameters
        ]

    def judge(self, decision: DecisionEvent, current: Params) -> Verdict:
        """Check a decision against its plan and the schema; nothing is changed here."""
        if decision.nonce in self.spent:
            return Verdict("replay", self.plans.get(decision.plan_id), reason=f"nonce {decision.nonce} already spent")
        record = self.plans.get(decision.plan_id)
        if record is None:
            return Verdict("refuse", None, reason=f"no plan {decision.plan_id} in this session")
        if record.event.nonce != decision.nonce:
            return Verdict("refuse", record, reason=f"nonce does not match plan {decision.plan_id}")
        if record.event.status != "pending":
            return Verdict("refuse", record, reason=f"plan {decision.plan_id} is {record.event.status}, not pending")
        if decision.decision == "veto":
            return Verdict("veto", record)
        if decision.decision == "approve":
            return Verdict("apply", record, list(record.event.patch))
        try:
            patch = edited_patch(decision.patch, current)
        except ParamError as err:
            return Verdict("refuse", record, reason=f"edit refused: {err}")
        return Verdict("apply", record, patch)


def edited_patch(items: list[PatchItem], current: Params) -> list[PatchItem]:
    """The human's values, typed and validated against the schema (ParamError names the field)."""
    values = {item.parameter: coerce_value(item.parameter, item.new_value) for item in items}
    checked = current.with_changes(**values)  # bounds and cross-field rules
    return [
        PatchItem(parameter=name, old_value=getattr(current, name), new_value=getattr(checked, name))
        for name in values
    ]


# ---------------------------------------------------------------- deciding from outside the conductor


class DecisionError(ValueError):
    """A decision that cannot be recorded: one line saying why."""


def latest_plan(session_root: Path, plan_id: str) -> PlanEvent:
    """The latest line of plan `plan_id` in plans.jsonl; DecisionError if there is none."""
    latest = None
    for rec in read_jsonl(session_root / PLANS, PlanEvent).records:
        if rec.plan_id == plan_id:
            latest = rec
    if latest is None:
        raise DecisionError(f"no plan {plan_id} in {session_root}")
    return latest


def research_params(session_root: Path, segment: int) -> Params:
    """The research config in force now, as the files tell it (segment plan, then applied patches)."""
    current = None
    for rec in read_jsonl(session_root / AUDIT).records:
        if rec["action"] == "patch_applied":
            current = rec["details"]["params_after"]
    if current is not None:
        return Params.model_validate(current)
    plan = read_json(session_root / f"segment_{segment}" / SEGMENT_PLAN)
    return Params.model_validate_json(plan["research_params_json"])


def record_decision(
    session_root: Path, plan_id: str, kind: str, edits: dict[str, str] | None = None, *, by: str, note: str = ""
) -> DecisionEvent:
    """Check a decision against the plan and the schema, then append it to decisions.jsonl under a file lock.

    Raises DecisionError (nothing written) for an unknown or settled plan or an invalid edit.
    """
    plan = latest_plan(session_root, plan_id)
    if plan.status != "pending":
        raise DecisionError(f"plan {plan_id} is {plan.status}, not pending")
    if kind == "approve":
        patch = list(plan.patch)
    elif kind == "veto":
        patch = []
    elif kind == "edit":
        if not edits:
            raise DecisionError("edit needs at least one parameter=value")
        segment = int((plan.test_id or "seg1_").split("_")[0][3:])
        try:
            patch = edited_patch(
                [PatchItem(parameter=k, old_value=v, new_value=v) for k, v in edits.items()],
                research_params(session_root, segment),
            )
        except ParamError as err:
            raise DecisionError(f"plan {plan_id}: {err}") from None
    else:
        raise DecisionError(f"decision must be approve, edit or veto, not {kind!r}")
    decision = DecisionEvent(
        session_id=session_root.name, emitted_at=utc_now_iso(), plan_id=plan_id, nonce=plan.nonce,
        decision=kind, patch=patch, by=by, note=note,  # type: ignore[arg-type]
    )
    path = session_root / DECISIONS
    with FileLock(str(path) + ".lock"):
        append_jsonl(path, [decision])
    return decision


def decision_outcome(session_root: Path, decision: DecisionEvent) -> tuple[str, str] | None:
    """What the conductor made of a decision, once it has: ("applied"|"vetoed"|"refused", details)."""
    for rec in read_jsonl(session_root / AUDIT).records:
        if rec.get("nonce") != decision.nonce:
            continue
        if rec["action"] == "patch_applied":
            return "applied", f"from {rec['details']['from_test']}"
        if rec["action"] == "plan_vetoed":
            return "vetoed", rec["why"]
        if rec["action"] in ("decision_refused", "nonce_replayed") and rec["emitted_at"] >= decision.emitted_at:
            return "refused", rec["why"]
    return None
