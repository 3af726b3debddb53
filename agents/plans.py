"""The plan life cycle (DESIGN.md §7): what a plan may become, and every check on the way.

    pending ── approve, auto, veto-only grace ──> applied   (the patch as proposed)
            ── edit ──────────────────────────> edited    (applied with the human's values)
            ── veto ──────────────────────────> vetoed
            ── a newer plan on its parameter ──> superseded
            ── the session ends undecided ─────> expired

An applied or edited plan gets one more line later, same status, with its `outcome`: once
a rule window of tests has run under its patch, the metric that triggered it and the
score, before vs after. Sessions written before this module also hold `approved` lines
(then `applied`); they read as the same thing.

Every applied value — proposed, edited, from an LLM or a rule — keeps its parameter's
bounds and its max step measured from the value in force when it applies; `old_value` is
that value, and `shown_old_value` keeps what the plan showed when the two differ. An edit
decides the plan's own parameters only.

Plans worth a human's attention: at most one pending plan per parameter (a newer one
supersedes); a vetoed change (same parameter, same direction) comes back only when a full
rule window of tests started after the veto still shows the condition (k windows after k
vetoes), and then says it was vetoed before; a step on a parameter is not repeated before its outcome is known, nor
at all once a step that way showed no improvement; one plan comes from one window of
evidence, and the window that measured a plan's effect is not also the next plan's reason.

This module decides; the conductor writes. Nothing here touches a file.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.events import DecisionEvent, PatchItem, PlanEvent
from engine.params import ParamError, Params, coerce_value

FINAL = frozenset({"applied", "edited", "vetoed", "superseded", "expired"})
NEXT: dict[str, frozenset[str]] = {
    "pending": FINAL,
    "approved": frozenset({"applied"}),  # sessions written before approvals became one line
    "applied": frozenset({"applied"}),  # the outcome line
    "edited": frozenset({"edited"}),
}


class PlanError(ValueError):
    """A plan or decision refused by the life cycle or the schema; str() is one line saying why."""


def new_nonce() -> str:
    """A fresh single-use identity for a plan (or any applied change)."""
    return secrets.token_hex(8)


def direction(item: PatchItem) -> int:
    """+1 when the change raises the parameter (or switches it on), -1 when it lowers it, 0 for none."""
    new, old = item.new_value, item.old_value
    if isinstance(new, bool) or isinstance(old, bool):
        return 0 if bool(new) == bool(old) else (1 if new else -1)
    if isinstance(new, str) or isinstance(old, str):
        return 0 if new == old else 1
    return (new > old) - (new < old)


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def checked_patch(items: Iterable[PatchItem | Mapping[str, Any]], in_force: Params) -> list[PatchItem]:
    """`items` typed, inside their bounds and within their max step of the value in force.

    `old_value` becomes the value in force; the old value the plan showed is kept as
    `shown_old_value` when it differs. PlanError names the parameter and the bound or step.
    """
    out: list[PatchItem] = []
    values: dict[str, Any] = {}
    bounds = in_force.bounds()  # shared, and the config's own strategy's: no other strategy's parameter
    for raw in items:
        item = raw if isinstance(raw, PatchItem) else PatchItem.model_validate(raw)
        name = item.parameter
        if name in values:
            raise PlanError(f"{name} is named twice")
        bound = bounds.get(name)
        if bound is None:
            raise PlanError(f"{name}: not a parameter of {in_force.method} (nor a shared one)")
        if bound.kind == "method":
            raise PlanError("method: a plan does not change the method (a segment's Strategist does)")
        try:
            value = coerce_value(name, item.new_value, bounds)
        except ParamError as err:
            raise PlanError(f"{name}: {err.problem}") from None
        old = in_force.value(name)
        if bound.kind != "bool":
            if not bound.lo <= value <= bound.hi:
                raise PlanError(f"{name}: {_fmt(value)} is outside its bounds {_fmt(bound.lo)} … {_fmt(bound.hi)}")
            step = abs(value - old)
            if bound.max_step is not None and step > bound.max_step * (1 + 1e-9):
                raise PlanError(
                    f"{name}: {_fmt(old)} → {_fmt(value)} is a step of {_fmt(step)}, more than its max step "
                    f"{_fmt(bound.max_step)} from the value in force"
                )
        values[name] = value
        shown = item.shown_old_value if item.shown_old_value is not None else item.old_value
        out.append(PatchItem(parameter=name, old_value=old, new_value=value,
                             shown_old_value=None if shown == old else shown))
    if not out:
        raise PlanError("the patch changes nothing")
    try:
        in_force.with_changes(**values)  # cross-field rules (ema_fast < ema_slow, ...)
    except ParamError as err:
        raise PlanError(f"{err.field}: {err.problem}") from None
    return out


def edited_patch(plan: PlanEvent, values: Mapping[str, Any], in_force: Params) -> list[PatchItem]:
    """The plan's patch with the human's values for (some of) its own parameters, checked like any patch."""
    own = [p.parameter for p in plan.patch]
    if not values:
        raise PlanError("an edit needs at least one parameter=value")
    foreign = [name for name in values if name not in own]
    if foreign:
        raise PlanError(
            f"plan {plan.plan_id} changes {', '.join(own)}; an edit decides those only, not {', '.join(foreign)}"
        )
    return checked_patch(
        [PatchItem(parameter=p.parameter, old_value=p.old_value, new_value=values.get(p.parameter, p.new_value))
         for p in plan.patch],
        in_force,
    )


@dataclass
class PlanRecord:
    """A plan's latest line, where it was emitted, and (veto-only) when it applies itself."""

    event: PlanEvent
    segment: int
    emit_index: int  # global index of the test whose processing emitted it
    deadline: float | None = None  # monotonic seconds, veto-only mode

    @property
    def parameters(self) -> set[str]:
        return {p.parameter for p in self.event.patch}

    @property
    def status(self) -> str:
        return self.event.status


@dataclass(frozen=True)
class Verdict:
    """What to do with a decision: apply a patch, veto, refuse (with why), or ignore a replay."""

    kind: Literal["apply", "veto", "refuse", "replay"]
    plan: PlanRecord | None
    patch: list[PatchItem] = field(default_factory=list)
    reason: str = ""


@dataclass(frozen=True)
class Veto:
    """A vetoed change: fresh evidence for it starts at `from_index` (the first test started after the veto)."""

    plan_id: str
    parameter: str
    direction: int
    test_id: str  # where the vetoed plan was emitted
    from_index: int
    at_index: int = -1  # the last test processed when the veto arrived: a replay knows of it only after that one

    def describe(self) -> str:
        return f"{self.plan_id} at {self.test_id}"


@dataclass(frozen=True)
class Hold:
    """Why a rule's change does not become a plan now; `note` goes into the reason of one that does."""

    held: bool
    why: str = ""
    vetoed_before: Veto | None = None  # the last veto of the same change
    vetoes: int = 0  # how many times it was vetoed


@dataclass
class PlanBook:
    """Every plan of the session by id, the nonces already spent, and the vetoes to remember."""

    plans: dict[str, PlanRecord] = field(default_factory=dict)
    spent: set[str] = field(default_factory=set)
    vetoes: list[Veto] = field(default_factory=list)

    # ------------------------------------------------------------ reading

    def pending(self) -> list[PlanRecord]:
        return [r for r in self.plans.values() if r.status == "pending"]

    def superseded_by(self, new: PlanRecord) -> list[PlanRecord]:
        """Older pending plans on any of `new`'s parameters (at most one pending plan per parameter)."""
        return [r for r in self.pending() if r.event.plan_id != new.event.plan_id and r.parameters & new.parameters]

    # A resume re-reads the tests done before the crash while the book already holds every
    # plan's latest line; so what the book says "as of test `now`" counts only what was known
    # then: plans emitted before it, outcomes measured and vetoes received before it.

    @staticmethod
    def outcome_as_of(record: PlanRecord, now: int) -> dict[str, Any] | None:
        o = record.event.outcome
        # an evidence value may be None by its type; at_index never is (the gate writes a test index)
        return o if o is not None and int(o.get("at_index", -1)) < now else None  # type: ignore[arg-type]

    def last_applied(self, parameter: str, segment: int, now: int) -> PlanRecord | None:
        """The latest applied or edited plan of `segment` emitted before test `now` that changed `parameter`."""
        found = None
        for r in self.plans.values():
            if (r.segment == segment and r.emit_index < now and r.status in ("applied", "edited")
                    and parameter in r.parameters):
                found = r
        return found

    def awaiting_outcome(self, now: int) -> list[PlanRecord]:
        """Applied or edited plans emitted before test `now` whose effect was not measured before it."""
        return [r for r in self.plans.values() if r.status in ("applied", "edited") and r.emit_index < now
                and r.event.applied_from is not None and self.outcome_as_of(r, now) is None]

    # ------------------------------------------------------------ the gate before a plan exists

    def hold(self, item: PatchItem, segment: int, window_from: int, now: int) -> Hold:
        """Whether a rule's one-parameter change waits instead of becoming a plan now.

        `window_from` is the global index of the oldest test in the evidence window, `now` the
        test being processed. A change
        waits while the last step on its parameter in this segment awaits its outcome; it is
        not proposed again in this session once a step on that parameter, in that direction,
        did not improve its metric (the remedy was tried); after a veto of the same change it
        waits until the whole window comes from tests started after the veto.
        """
        d = direction(item)
        name = item.parameter
        last = self.last_applied(name, segment, now)
        if last is not None and self.outcome_as_of(last, now) is None:
            return Hold(True, f"{last.event.plan_id} on {name} has no outcome yet")
        for r in self.plans.values():
            o = self.outcome_as_of(r, now)
            if (o is not None and o.get("improved") is False
                    and any(p.parameter == name and direction(p) == d for p in r.event.patch)):
                return Hold(True, f"{r.event.plan_id} already stepped {name} this way and "
                                  f"{o.get('metric')} did not improve")
        vetoes = [v for v in self.vetoes if v.parameter == name and v.direction == d and v.at_index < now]
        if vetoes:
            veto = vetoes[-1]
            # each veto asks for more: after k of them, k windows' worth of tests started after the last one
            span = max(1, now - window_from)
            if window_from < veto.from_index or now - veto.from_index < len(vetoes) * span:
                return Hold(True, f"vetoed {len(vetoes)}× ({veto.describe()} last); waiting for "
                                  f"{len(vetoes)} window(s) of tests started after the veto")
            return Hold(False, vetoed_before=veto, vetoes=len(vetoes))
        return Hold(False)

    # ------------------------------------------------------------ decisions

    def judge(self, decision: DecisionEvent, in_force: Params) -> Verdict:
        """Check a decision against its plan, the schema and the value in force; nothing is changed here."""
        if decision.nonce in self.spent:
            return Verdict("replay", self.plans.get(decision.plan_id), reason=f"nonce {decision.nonce} already spent")
        record = self.plans.get(decision.plan_id)
        if record is None:
            return Verdict("refuse", None, reason=f"no plan {decision.plan_id} in this session")
        if record.event.nonce != decision.nonce:
            return Verdict("refuse", record, reason=f"nonce does not match plan {decision.plan_id}")
        if record.status != "pending":
            return Verdict("refuse", record, reason=f"plan {decision.plan_id} is {record.status}, not pending")
        if decision.decision == "veto":
            return Verdict("veto", record)
        try:
            if decision.decision == "approve":
                patch = checked_patch(record.event.patch, in_force)
            else:
                patch = edited_patch(record.event, {p.parameter: p.new_value for p in decision.patch}, in_force)
        except PlanError as err:
            return Verdict("refuse", record, reason=f"{decision.decision} refused: {err}")
        return Verdict("apply", record, patch)

    # ------------------------------------------------------------ moving a plan on

    def advance(self, record: PlanRecord, status: str, emitted_at: str, **changes: Any) -> PlanEvent:
        """The plan's next line: `status` must follow the current one (PlanError if not)."""
        if status not in NEXT.get(record.status, frozenset()):
            raise PlanError(f"plan {record.event.plan_id} is {record.status}: it cannot become {status}")
        record.event = record.event.with_changes(status=status, emitted_at=emitted_at, **changes)
        return record.event

    def remember_veto(self, record: PlanRecord, from_index: int, at_index: int) -> None:
        """A veto of `record`, received after test `at_index`: its changes wait for evidence from tests started at `from_index` on."""
        for p in record.event.patch:
            self.vetoes.append(Veto(record.event.plan_id, p.parameter, direction(p), record.event.test_id or "",
                                    from_index, at_index))


# ---------------------------------------------------------------- outcomes

def outcome(metric: str, better: int, before: Mapping[str, Any], after: Mapping[str, Any], cautious: float | None,
            tests: Sequence[str], at_index: int) -> dict[str, Any]:
    """A plan's effect: `metric` (better = +1 when higher is better) and the score, before vs after, with trade counts.

    `improved` only when even the after window's least favourable plausible value (`cautious`,
    agents.rules) beats the value before, and the score did not fall: a change that may have
    done nothing, or traded its metric for a worse whole, is no success, and the same step
    is not taken again on its strength.
    """
    b, a = before.get(metric), after[metric]
    return {
        "metric": metric,
        "before": b,
        "after": a,
        "after_cautious": None if cautious is None else round(cautious, 4),
        "improved": (b is not None and cautious is not None and (cautious - b) * better > 0
                     and after.get("score", 0) >= before.get("score", 0)),
        "score_before": before.get("score"),
        "score_after": after.get("score"),
        "trades_before": before.get("trades"),
        "trades_after": after.get("trades"),
        "episodes_after": after.get("episodes"),
        "first_test": tests[0] if tests else None,
        "last_test": tests[-1] if tests else None,
        "at_index": at_index,  # the test whose processing measured it
    }
