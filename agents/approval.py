"""Deciding from outside the conductor (DESIGN.md §7): the console and `maestro-tui decide`.

A decision is checked here against the files — the plan is pending, no other decision on
it waits to be carried out, the session has not finished, an edit keeps the plan's own
parameters inside their bounds and steps — and appended to decisions.jsonl, all under one
file lock, so of two deciders racing on a plan exactly one is recorded and the other is
told the plan's true state. What the conductor made of a decision is found in audit.jsonl
by the decision's byte offset in decisions.jsonl. The life cycle itself is agents.plans.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from agents.plans import PlanError, edited_patch
from engine.events import DecisionEvent, PatchItem, PlanEvent, latest_plans, read_events, utc_now_iso
from engine.jsonl import JsonlTail, append_jsonl, read_json
from engine.params import Params
from engine.session import (
    AUDIT,
    CONFIG,
    DECISIONS,
    PLANS,
    SEGMENT_PLAN,
    SessionDir,
    read_conductor_state,
    segment_folders,
)
from engine.strategies import load_recorded


class DecisionError(ValueError):
    """A decision that cannot be recorded: one line saying why."""


@dataclass(frozen=True)
class Recorded:
    """A decision as appended, and its byte offset in decisions.jsonl (how the conductor keys it)."""

    decision: DecisionEvent
    offset: int


def latest_plan(session_root: Path, plan_id: str) -> PlanEvent:
    """The latest line of plan `plan_id`; DecisionError if there is none."""
    plan = latest_plans(session_root / PLANS).get(plan_id)
    if plan is None:
        raise DecisionError(f"no plan {plan_id} in {session_root}")
    return plan


def research_in_force(session_root: Path) -> Params:
    """The research config the next test would run with: the latest segment's, with its applied patches."""
    planned = [(k, folder) for k, folder in segment_folders(SessionDir(session_root)) if (folder / SEGMENT_PLAN).exists()]
    if not planned:
        raise DecisionError(f"{session_root}: no segment has started yet")
    segment, folder = planned[-1]
    load_recorded(read_json(session_root / CONFIG).get("strategies"))  # the trader's files the session names, here too
    params = Params.model_validate_json(read_json(folder / SEGMENT_PLAN)["research_params_json"])
    for rec in read_events(session_root / AUDIT).records:
        if rec.get("action") == "patch_applied" and rec.get("details", {}).get("segment") == segment:
            params = Params.model_validate(rec["details"]["params_after"])
    return params


def _refused_offsets(session_root: Path) -> set[int]:
    return {
        rec["details"]["decision_offset"]
        for rec in read_events(session_root / AUDIT).records
        if rec.get("action") in ("decision_refused", "nonce_replayed") and "decision_offset" in rec.get("details", {})
    }


def _waiting_decision(session_root: Path, plan: PlanEvent) -> DecisionEvent | None:
    """A decision on `plan` already in decisions.jsonl that the conductor has not refused."""
    path = session_root / DECISIONS
    if not path.exists():
        return None
    tail = JsonlTail(path, DecisionEvent, index=True)
    records = tail.read_new(final=True).records
    refused = _refused_offsets(session_root)
    for rec, offset in zip(records, tail.offsets or []):
        if rec.nonce == plan.nonce and offset not in refused:
            return rec
    return None


def _settled(plan: PlanEvent) -> str:
    """A plan's true state, in words."""
    if plan.status in ("applied", "edited"):
        return f"plan {plan.plan_id} is {plan.status}" + (f" (from {plan.applied_from})" if plan.applied_from else "")
    return f"plan {plan.plan_id} is {plan.status}" + (f": {plan.note}" if plan.note else "")


def record_decision(
    session_root: Path, plan_id: str, kind: str, edits: dict[str, str] | None = None, *, by: str, note: str = ""
) -> Recorded:
    """Check a decision against the plan, the schema and the session, then append it to decisions.jsonl.

    All under the decisions file lock. Raises DecisionError (nothing written) for a finished
    session, an unknown or settled plan, a plan that already has a decision waiting, or an
    invalid edit.
    """
    path = session_root / DECISIONS
    with FileLock(str(path) + ".lock"):
        state = read_conductor_state(SessionDir(session_root))
        if state is not None and state.state == "finished":
            raise DecisionError(f"{session_root.name} has finished: it takes no more decisions")
        plan = latest_plan(session_root, plan_id)
        if plan.status != "pending":
            raise DecisionError(_settled(plan) + ", not pending")
        earlier = _waiting_decision(session_root, plan)
        if earlier is not None:
            raise DecisionError(
                f"plan {plan_id} already has a decision: {earlier.decision} by {earlier.by} at {earlier.emitted_at}, "
                "waiting for the conductor"
            )
        if kind == "approve":
            patch = list(plan.patch)
        elif kind == "veto":
            patch = []
        elif kind == "edit":
            try:
                patch = edited_patch(plan, edits or {}, research_in_force(session_root))
            except PlanError as err:
                raise DecisionError(f"plan {plan_id}: {err}") from None
        else:
            raise DecisionError(f"decision must be approve, edit or veto, not {kind!r}")
        decision = DecisionEvent(
            session_id=session_root.name, emitted_at=utc_now_iso(), plan_id=plan_id, nonce=plan.nonce,
            decision=kind, patch=patch, by=by, note=note,
        )
        offset = path.stat().st_size if path.exists() else 0
        if offset and path.read_bytes()[-1:] != b"\n":
            offset += 1  # append_jsonl ends a torn last line first
        append_jsonl(path, [decision])
    return Recorded(decision, offset)


def decision_outcome(session_root: Path, offset: int) -> tuple[str, str] | None:
    """What the conductor made of the decision at `offset`, once it has: (applied|edited|vetoed|refused, details)."""
    for rec in read_events(session_root / AUDIT).records:
        d = rec.get("details", {})
        if d.get("decision_offset") != offset:
            continue
        if rec["action"] == "patch_applied":
            return d.get("status", "applied"), f"from {d['from_test']}"
        if rec["action"] == "plan_vetoed":
            return "vetoed", rec["why"]
        if rec["action"] in ("decision_refused", "nonce_replayed"):
            return "refused", rec["why"]
    return None


def plan_age(plan: PlanEvent, now: dt.datetime | None = None) -> str:
    """How long ago a plan's line was written: `42 s`, `7 min`, `3 h`."""
    then = dt.datetime.fromisoformat(plan.emitted_at.replace("Z", "+00:00"))
    seconds = max(0, int(((now or dt.datetime.now(dt.UTC)) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def describe_patch(patch: list[PatchItem]) -> str:
    """`vhf_min 0.25 -> 0.3 (plan showed 0.2)`, comma-separated."""
    return ", ".join(
        f"{p.parameter} {p.old_value} -> {p.new_value}"
        + (f" (plan showed {p.shown_old_value})" if p.shown_old_value is not None else "")
        for p in patch
    ) or "discard"
