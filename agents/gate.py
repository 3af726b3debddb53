"""The human gate inside the conductor: from a rule's check to a plan, a decision and a patch in force.

A full window of evidence either measures the plans awaiting their effect or may bring one
new plan (the Critic reviews the rule's firing first). A plan is pending until a decision
arrives — from the console or `maestro-tui decide` through decisions.jsonl, or from the
approval mode itself (auto at once, veto-only after its grace period) — and a decision is
audited first, then carried out: the plan's status line and the Maestro's message follow
from the audit record, so a crash between any two of these writes is completed on resume,
exactly once (DESIGN.md §7). The plan life cycle itself (statuses, checks, veto memory)
is agents/plans.py; this module is what the running conductor does with it.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agents.crash_points import crash_point
from agents.journal import Journal, audit_key
from agents.messages import MaestroMessage
from agents.notify import Notifier
from agents.plans import Hold, PlanBook, PlanError, PlanRecord, checked_patch, new_nonce, outcome
from agents.rules import RULE_METRIC, Analyzer, Check, RuleFiring
from agents.schedule import Schedule
from agents.settings import Settings
from engine.configs import config_id, config_label, params_json
from engine.events import DecisionEvent, PatchItem, PlanEvent, fold_plan_line, read_events, utc_now_iso
from engine.jsonl import JsonlTail, read_jsonl
from engine.params import Params
from engine.session import AUDIT, DECISIONS, PLANS, SessionDir, parse_test_id, test_id

log = logging.getLogger("maestro.gate")


@dataclass
class Patch:
    """An applied change: which segment, from which test (global index) on, the items."""

    segment: int
    from_index: int
    items: list[PatchItem]
    plan_id: str
    who: str


def with_patches(params: Params, patches: list[Patch]) -> Params:
    """`params` with each patch's items applied, in order."""
    for p in patches:
        params = params.with_changes(**{i.parameter: i.new_value for i in p.items})
    return params


class Host(Protocol):
    """What the gate asks of the conductor running it."""

    @property
    def segment(self) -> int: ...  # the segment being run (the gate only reads it)
    next_unstarted: int  # global index of the first test not yet started

    def research(self) -> Params: ...  # the segment's research config as chosen (patches come on top)
    def review(self, segment: int, in_force: Params, firing: RuleFiring) -> Any: ...  # the Critic's review
    def critic_provider(self) -> str: ...


@dataclass
class _Held:
    """A rule's change held for one reason: the test it was first said at, the last, and how many since."""

    why: str
    first: str
    last: str
    again: int = 0


class HoldLog:
    """conductor.log's lines on held changes: a rule firing while its change is held fires at every test
    (hundreds of identical lines a segment), so a hold is said once, and its repeats in one line when its
    reason changes, the change is proposed, or the segment ends (`close`)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], _Held] = {}  # by (rule, parameter)

    def held(self, rule: str, parameter: str, tid: str, why: str) -> None:
        key = (rule, parameter)
        said = self._held.get(key)
        if said is not None and said.why == why:
            said.again += 1
            said.last = tid
            return
        self.lifted(rule, parameter)
        log.info("rule %s on %s at %s held: %s", rule, parameter, tid, why)
        self._held[key] = _Held(why, tid, tid)

    def lifted(self, rule: str, parameter: str) -> None:
        """The rule's change is no longer held for the reason said: its repeats, if any, in one line."""
        said = self._held.pop((rule, parameter), None)
        if said is not None and said.again:
            log.info("rule %s on %s held %d more time%s for the same reason, from %s to %s", rule, parameter, said.again,
                     "" if said.again == 1 else "s", said.first, said.last)

    def close(self) -> None:
        for rule, parameter in list(self._held):
            self.lifted(rule, parameter)


class Gate:
    """Plans, decisions and patches of one running session (the module docstring)."""

    def __init__(self, host: Host, session: SessionDir, schedule: Schedule, journal: Journal, settings: Settings,
                 approval: str, analyzer: Analyzer, notifier: Notifier, echo: Callable[[str], None]) -> None:
        self.host = host
        self.schedule = schedule
        self.session = session
        self.journal = journal
        self.settings = settings
        self.approval = approval
        self.W = settings.pipeline_depth
        self.analyzer = analyzer
        self.notifier = notifier
        self.echo = echo
        self.book = PlanBook()
        self.patches: list[Patch] = []
        self.plan_seq = 0
        self.holds = HoldLog()  # held changes, each said once in conductor.log
        self.refused_offsets: set[int] = set()  # byte offsets in decisions.jsonl of decisions refused
        self.spent_offsets: set[int] = set()  # ... and of decisions that spent a nonce
        self.audited: list[dict[str, Any]] = []  # decisions audited before a restart: their effects are completed
        self.decisions = JsonlTail(session.file(DECISIONS), DecisionEvent, index=True)
        # (segment, id of the research config, patches in force) -> (that config, the patches, patched, its JSON)
        self._in_force_memo: dict[tuple[int, int, int], tuple[Params, tuple[Patch, ...], Params, str]] = {}

    # ------------------------------------------------------------ what is in force

    def in_force(self, segment: int, research: Params, up_to: int | None = None) -> Params:
        """A segment's research config with its patches (those in force at test `up_to`, or all)."""
        return self._in_force(segment, research, up_to)[0]

    def in_force_json(self, segment: int, research: Params, up_to: int | None = None) -> str:
        """`in_force` as canonical JSON (engine.configs.params_json)."""
        return self._in_force(segment, research, up_to)[1]

    def _in_force(self, segment: int, research: Params, up_to: int | None) -> tuple[Params, str]:
        # every test asks, and the answer changes only with a patch: each config patched and validated once
        patches = tuple(p for p in self.patches if p.segment == segment and (up_to is None or p.from_index <= up_to))
        key = (segment, id(research), len(patches))
        known = self._in_force_memo.get(key)
        if known is None or known[0] is not research or known[1] != patches:
            params = with_patches(research, list(patches))
            known = self._in_force_memo[key] = (research, patches, params, params_json(params))
        return known[2], known[3]

    def current(self) -> Params:
        """The research config with every patch applied so far (what the next test would use)."""
        return self.in_force(self.host.segment, self.host.research())

    # ------------------------------------------------------------ reading back an earlier run

    def load_written(self) -> None:
        """What an earlier run wrote: the journal's keys, the plan book, the patch timeline, the decisions spent."""
        latest: dict[str, PlanEvent] = {}
        for event in read_jsonl(self.session.file(PLANS), PlanEvent).records:  # read once: keys and the fold
            self.journal.mark(PLANS, f"{event.plan_id}:{'outcome' if event.outcome is not None else event.status}")
            fold_plan_line(latest, event.plan_id, event)
        for plan_id, event in latest.items():  # each plan as its latest line says
            seg, t = parse_test_id(event.test_id or "seg1_test001")
            self.book.plans[plan_id] = PlanRecord(event, seg, self.schedule.index(seg, t))
        for rec in read_events(self.session.file(AUDIT)).records:
            try:
                self.load_audited(rec)
            except (KeyError, TypeError, ValueError) as err:  # valid as an event, not as what its action needs
                log.warning("audit.jsonl: a %s record skipped: %s %s", rec.get("action"), type(err).__name__, err)

    def load_audited(self, rec: dict[str, Any]) -> None:
        """What one audit record of an earlier run tells: spent nonces and offsets, patches, vetoes."""
        d = rec["details"]
        if rec["action"] == "patch_applied":  # checked before anything is taken from it
            patch = Patch(int(d["segment"]), int(d["from_index"]), [PatchItem(**p) for p in d["patch"]],
                          str(rec["plan_id"]), rec["who"])
        self.journal.mark("audit.jsonl", audit_key(rec))
        if rec.get("nonce") and rec["action"] in ("patch_applied", "plan_vetoed"):
            self.book.spent.add(rec["nonce"])
            if "decision_offset" in d:
                self.spent_offsets.add(d["decision_offset"])
        if rec["action"] == "patch_applied":
            self.patches.append(patch)
        if rec["action"] == "decision_refused" and "decision_offset" in d:
            self.refused_offsets.add(d["decision_offset"])
        if rec["action"] == "plan_vetoed" and rec.get("plan_id") in self.book.plans:
            self.book.remember_veto(self.book.plans[rec["plan_id"]], int(d.get("from_index", 0)), int(d.get("at_index", -1)))
        if rec["action"] in ("patch_applied", "plan_vetoed"):
            self.audited.append(rec)

    def finish_audited(self) -> None:
        """A crash between a decision's audit record and its effects: finish them."""
        for rec in self.audited:
            self.carry_out(rec)

    # ------------------------------------------------------------ when tests may start, what counts

    def may_start(self, g: int) -> bool:
        """Manual mode: a pending plan holds back every test that would start after its effect point."""
        if self.approval != "manual":
            return True
        return not any(r.emit_index <= g - self.W or r.segment < self.host.segment for r in self.book.pending())

    def muted_until(self, seg: int, g: int) -> int:
        """First test whose results count for the rules again after the plans emitted before test g.

        Positional, not timed, so a replay feeds the analyzer exactly as the original run did:
        a plan's evidence is spent at emission; the tests already in flight then (up to W − 1
        after it) and, when it applied, the tests before its patch took effect do not count.
        """
        until = 0
        for r in self.book.plans.values():
            if r.segment == seg and r.emit_index < g:
                until = max(until, r.emit_index + self.W)
        for p in self.patches:
            plan = self.book.plans.get(p.plan_id)
            if p.segment == seg and plan is not None and plan.emit_index < g:
                until = max(until, p.from_index)
        return until

    # ------------------------------------------------------------ from a check to a plan

    def on_check(self, check: Check, seg: int, t: int, g: int) -> None:
        """A full window of evidence: it measures the plans awaiting their effect, or else may bring one new plan.

        Evidence is used once: the window that judged a change is not also the reason for the
        next one (it was gathered right after a plan chose its moment, and would flatter it).
        """
        tests = [self.schedule.test_of(i) for i in sorted({e.test_index for e in self.analyzer.window})]
        measured = False
        for record in self.book.awaiting_outcome(g):
            patch = next((p for p in self.patches if p.plan_id == record.event.plan_id), None)
            rule = record.event.rule
            if patch is None or rule not in RULE_METRIC or check.metrics.first_test < patch.from_index:
                continue
            metric, better = RULE_METRIC[rule]
            result = outcome(metric, better, record.event.evidence, check.metrics.evidence(),
                             check.metrics.cautious(metric, self.settings.rules.confidence_z), tests, g)
            self.set_status(record, record.status, key="outcome", outcome=result)
            self.journal.say(f"{record.event.plan_id}:effect", seg, "maestro", MaestroMessage(
                turno=4, acao=f"effect of {record.event.plan_id}", detalhes=record.event.change,
                metricas_pos_patch=result, status="improved" if result["improved"] else "no better",
            ), ref=record.event.plan_id)
            measured = True
        if measured:  # this window is spent on judging a change; the next plan needs evidence of its own
            self.analyzer.reset()
            return
        if g + self.W > self.schedule.total - 1:
            if check.firings:  # a plan would apply from a test the session does not have: nothing to decide
                log.info("rules at %s: %s held: no test left to apply a change to", test_id(seg, t),
                         ", ".join(f.rule for f in check.firings))
            return
        for firing in check.firings:
            item = PatchItem(parameter=firing.parameter, old_value=firing.old_value, new_value=firing.new_value)
            hold = self.book.hold(item, seg, check.metrics.first_test, g)
            if hold.held:
                self.holds.held(firing.rule, firing.parameter, test_id(seg, t), hold.why)
                continue
            self.holds.lifted(firing.rule, firing.parameter)
            self._propose(firing, check, seg, t, g, hold)
            break  # one change at a time: the others are judged again on evidence gathered after it

    def _scope(self, check: Check, research: Params) -> dict[str, Any]:
        """What a plan's evidence covers: the research config, validation, which tests, how much."""
        m = check.metrics
        return {"config_id": config_id(research), "label": config_label(research), "method": research.method,
                "phase": "validation", "first_test": self.schedule.test_of(m.first_test), "last_test": self.schedule.test_of(m.last_test),
                "episodes": m.episodes, "trades": m.trades}

    def _propose(self, firing: RuleFiring, check: Check, seg: int, t: int, g: int, hold: Hold) -> None:
        """A rule fired: the Critic reviews it; a plan is written and goes through approval."""
        self.plan_seq += 1
        plan_id = f"P{seg}-{self.plan_seq:03d}"
        self.analyzer.reset()  # the evidence is spent on this plan
        in_force = self.current()
        review = self.host.review(seg, in_force, firing)
        self.journal.say(f"{plan_id}:review", seg, self.host.critic_provider(), review.message, ref=plan_id)
        if review.patch is None:
            return
        existing = self.book.plans.get(plan_id)
        if existing is None:
            try:
                patch = checked_patch(review.patch, in_force)
            except PlanError as err:  # the critic's patch breaks a bound or a step: no plan
                log.warning("%s not proposed: %s", plan_id, err)
                return
            reason = firing.reason
            vetoed_before = hold.vetoed_before
            if vetoed_before is not None:
                times = f" {hold.vetoes}×" if hold.vetoes > 1 else ""
                reason += f" (vetoed{times} before: {vetoed_before.describe()})"
            event = PlanEvent(
                session_id=self.session.session_id, emitted_at=utc_now_iso(), plan_id=plan_id, nonce=new_nonce(),
                episode_id=firing.episode_id, test_id=test_id(seg, t), agent=f"critic:{self.host.critic_provider()}",
                action="adjust", change=PlanEvent.change_from_patch(patch), patch=patch, reason=reason,
                evidence=dict(firing.evidence), status="pending", note=f"rule {firing.rule}", rule=firing.rule,
                scope=self._scope(check, in_force), vetoed_before=vetoed_before.describe() if vetoed_before else None,
            )
            record = PlanRecord(event, seg, g)
            self.book.plans[plan_id] = record
            self.journal.append(PLANS, f"{plan_id}:pending", event.model_dump())
            crash_point("plan_written")
            if self.approval != "auto":
                decide = f"maestro-tui decide {shlex.quote(str(self.session.root))} {plan_id} approve|veto|edit PARAM=VALUE"
                if self.approval == "manual":
                    self.echo(f"plan {plan_id} waits for a decision: "
                              f"{', '.join(f'{k} {v}' for k, v in event.change.items())} — {reason}; decide: {decide}")
                self.notifier.send("plan_pending", plan_id=plan_id, change=event.change, reason=reason, decide=decide,
                                   approval=self.approval)
        else:
            record = existing
        if record.status != "pending":
            return
        for old in self.book.superseded_by(record):
            self.journal.audit("plan_superseded", "maestro", f"{plan_id} changes the same parameter", old.event.plan_id,
                        old.event.nonce)
            self.set_status(old, "superseded", superseded_by=plan_id)
        if self.approval == "auto":
            self.apply_without_human(record, "maestro (auto approval)", "auto mode")
        elif self.approval == "veto-only" and record.deadline is None:
            record.deadline = time.monotonic() + self.settings.veto_grace_s

    def set_status(self, record: PlanRecord, status: str, key: str | None = None, **changes: Any) -> None:
        """Write the plan's next line (once: keyed by plan and status, or `key`)."""
        event = self.book.advance(record, status, utc_now_iso(), **changes)
        self.journal.append(PLANS, f"{event.plan_id}:{key or status}", event.model_dump())

    def apply_without_human(self, record: PlanRecord, who: str, why: str) -> None:
        """Auto mode and veto-only's grace: the patch as proposed, if it still keeps its bounds and steps."""
        try:
            patch = checked_patch(record.event.patch, self.current())
        except PlanError as err:
            self._expire(record, f"cannot apply: {err}")
            return
        self.apply_plan(record, patch, "applied", who, why)

    def _effect_point(self, record: PlanRecord) -> int:
        """The first test a decision on `record` can reach: W tests after its emission, or the first not yet started.

        Auto mode applies at emission, when exactly W tests are in flight; a human's decision
        reaches no test already started.
        """
        if self.approval == "auto":
            return record.emit_index + self.W
        return max(record.emit_index + self.W, self.host.next_unstarted)

    def apply_plan(self, record: PlanRecord, patch: list[PatchItem], status: str, who: str, why: str,
                    decision_offset: int | None = None) -> None:
        """Spend the plan's nonce and put its patch in force from the first test not yet started.

        The audit record is the fact, written first; the plan's status line and the Maestro's
        message follow from it, and a resume completes them from it (`carry_out`).
        """
        plan_id = record.event.plan_id
        from_index = self._effect_point(record)
        if record.segment != self.host.segment:  # decided after its segment ended: carried into this one
            from_index = max(from_index, self.schedule.index(self.host.segment, 1))
        # past the segment's last test: the next segment starts from this config with the patch (_carried_base)
        from_index = min(from_index, self.schedule.index(self.host.segment + 1, 1))
        self.book.spent.add(record.event.nonce)
        self.patches.append(Patch(self.host.segment, from_index, patch, plan_id, who))
        after = self.current()
        rec = self.journal.audit(
            "patch_applied", who, why, plan_id, record.event.nonce,
            segment=self.host.segment, from_index=from_index, from_test=self.schedule.test_of(from_index), status=status,
            patch=[p.model_dump() for p in patch], params_after=json.loads(params_json(after)),
            **({} if decision_offset is None else {"decision_offset": decision_offset}),
        )
        crash_point("decision_audited")
        self.carry_out(rec)

    def carry_out(self, rec: dict[str, Any]) -> None:
        """The plan line and the Maestro's message an audited decision calls for; each written once."""
        record = self.book.plans.get(rec.get("plan_id") or "")
        if record is None:
            return
        d = rec["details"]
        plan_id = record.event.plan_id
        if rec["action"] == "plan_vetoed":
            if record.status == "pending":
                self.set_status(record, "vetoed", note=rec["why"] if rec["why"] != "vetoed" else None)
            crash_point("decision_status")
            return
        if rec["action"] != "patch_applied":
            return
        status = d.get("status", "applied")
        patch = [PatchItem(**p) for p in d["patch"]]
        if record.status in ("pending", "approved"):
            self.set_status(record, status, patch=patch, change=PlanEvent.change_from_patch(patch),
                             applied_from=d["from_test"], note=f"{status} by {rec['who']}: applies from {d['from_test']}")
        crash_point("decision_status")
        self.journal.say(
            f"{plan_id}:apply", d["segment"], "maestro",
            MaestroMessage(turno=4, acao=f"apply {plan_id}", detalhes=PlanEvent.change_from_patch(patch),
                           metricas_pos_patch={}, status=f"from {d['from_test']} ({rec['who']})"),
            ref=plan_id,
        )
        crash_point("decision_said")

    def _expire(self, record: PlanRecord, why: str) -> None:
        self.journal.audit("plan_expired", "maestro", why, record.event.plan_id, record.event.nonce)
        self.set_status(record, "expired", note=why)

    def expire_undecided(self) -> None:
        """A finishing session leaves no plan pending: each becomes expired, with the reason."""
        self.grace_expiries()  # a grace already over applies rather than expires
        for record in self.book.pending():
            if self.approval == "veto-only":
                why = "the session finished inside its veto grace period"
            else:
                why = "the session finished before a decision"
            self._expire(record, why)

    def read_decisions(self) -> None:
        """Take every decision appended since the last read, in file order."""
        got = self.decisions.read_new()
        for bad in got.bad_lines:
            self.journal.audit("decision_refused", "maestro", f"unreadable decisions.jsonl line {bad.line_no}: {bad.reason}",
                        decision_offset=bad.byte_offset)
        known = self.decisions.offsets
        assert known is not None  # the tail is opened with index=True
        offsets = known[len(known) - len(got.records):]
        for decision, offset in zip(got.records, offsets):
            self.decide(decision, offset)

    def decide(self, decision: DecisionEvent, offset: int) -> None:
        """Apply, veto or refuse one decision; `offset` (its byte offset) keys it across restarts."""
        if offset in self.spent_offsets or offset in self.refused_offsets:
            return  # handled before a restart
        crash_point("decision_taken")
        verdict = self.book.judge(decision, self.current())
        if verdict.kind == "replay":
            self.journal.audit("nonce_replayed", decision.by, verdict.reason, decision.plan_id, decision.nonce,
                        decision_offset=offset)
            return
        if verdict.kind == "refuse":
            self.refused_offsets.add(offset)
            self.journal.audit("decision_refused", decision.by, verdict.reason, decision.plan_id, decision.nonce,
                        decision_offset=offset)
            self.echo(f"decision on {decision.plan_id} refused: {verdict.reason}")
            return
        record = verdict.plan
        assert record is not None
        self.spent_offsets.add(offset)
        if verdict.kind == "veto":
            self.book.spent.add(record.event.nonce)
            # positional, like a patch: fresh evidence starts with the first test the veto could have
            # held back, so a resume that reads the veto first thing rebuilds the same state
            from_index = self._effect_point(record)
            self.book.remember_veto(record, from_index, from_index - 1)
            rec = self.journal.audit("plan_vetoed", decision.by, decision.note or "vetoed", record.event.plan_id,
                              record.event.nonce, decision_offset=offset, from_index=from_index, at_index=from_index - 1)
            crash_point("decision_audited")
            self.carry_out(rec)
        else:
            status = "applied" if decision.decision == "approve" else "edited"
            self.apply_plan(record, verdict.patch, status, decision.by, decision.note or f"{status} by {decision.by}",
                             decision_offset=offset)

    def grace_expiries(self) -> None:
        if self.approval != "veto-only":
            return
        now = time.monotonic()
        for record in self.book.pending():
            if record.deadline is not None and now >= record.deadline:
                self.apply_without_human(record, "maestro (veto-only grace period)",
                                          f"no veto within {self.settings.veto_grace_s:g} s")
