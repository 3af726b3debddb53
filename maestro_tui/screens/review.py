"""The review modal: everything needed to decide one plan; a approves, e edits, v vetoes.

Any plan opens here. A pending one can be decided; an applied, edited, vetoed, superseded
or expired one is shown read-only, with what it did. Every string that came from a file or
an LLM is rendered as data (rich Text, never markup): a reason may contain `[/]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from agents.plans import PlanError, checked_patch, edited_patch
from agents.rules import RULE_METRIC
from engine.events import PlanEvent
from engine.params import SHARED_BOUNDS, ParamBound, ParamError, Params, bounds_for, coerce_value
from engine.reports.summary import describe_outcome
from engine.strategies import get as get_strategy
from engine.strategy import StrategyError
from engine.targets import TARGET_OF, TARGETS
from engine.text import visible
from maestro_tui.widgets.panes import STATUS_STYLE, plan_change, value_text

# evidence key -> (label, format); a target's metric is also shown against its threshold (engine.targets)
EVIDENCE = {
    **{t.metric: (t.label, t.fmt) for t in TARGETS},
    "score": ("score", "{:.1f}"),
    "pnl": ("pnl USD", "{:,.0f}"),
}
IN_SCOPE_LINE = ("episodes", "trades")  # said in the scope line, not repeated in the table
SETTLED_HINT = {
    "applied": "applied", "approved": "applied", "edited": "applied with edited values", "vetoed": "vetoed",
    "superseded": "superseded by a newer plan", "expired": "expired",
}


def _metric(fmt: str, value: Any) -> str:
    """A measured value in its format; anything not a number as it is ('—' for none)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    return fmt.format(value)


def _visible(value: Any) -> Any:
    """`value` with every string in it (keys too) made safe to show, for display only."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, BaseModel):
        # a display copy of the same model (model_copy does not validate it again): what a
        # decision names and the checks read stay the plan as read, never this copy
        return value.model_copy(update={name: _visible(getattr(value, name)) for name in type(value).model_fields})
    if isinstance(value, dict):
        return {_visible(k): _visible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible(v) for v in value]
    return value


def _table(*headers: str) -> Table:
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold dim")
    for header in headers:
        table.add_column(Text(header))  # a str header would be read as markup
    return table


def _heading(text: str) -> Text:
    return Text(text, style="bold")


@dataclass(frozen=True)
class Decision:
    """The human decided: `decision` is approve/edit/veto, `values` the edited ones (what ReviewScreen dismisses with)."""

    plan_id: str
    decision: str
    values: dict[str, str]


class ReviewScreen(ModalScreen[Decision | None]):
    """Review one plan; decide it when it is pending. Nothing is decided by a key outside this screen."""

    DEFAULT_CSS = """
    ReviewScreen { align: center middle; }
    #review { width: 90%; max-width: 110; height: auto; max-height: 90%; border: thick $accent; background: $surface; padding: 1 2; }
    #review > Static { margin: 0 0 1 0; }
    #review > #hint { margin: 0; }
    #review .error { color: $error; height: auto; margin: 0; }
    #review .field { margin: 0; }
    #review Input { margin: 0 0 0 0; }
    #edit-form { height: auto; margin: 0 0 1 0; }
    #edit-form.hidden { display: none; }
    """
    BINDINGS = [
        Binding("a", "approve", "approve", id="review.approve"),
        Binding("e", "edit", "edit", id="review.edit"),
        Binding("v", "veto", "veto", id="review.veto"),
        Binding("escape", "close", "close", id="review.close"),
    ]

    def __init__(
        self,
        plan: PlanEvent,
        reasoning: list[str],
        read_only: bool,
        *,
        proposed: PlanEvent | None = None,
        in_force: Params | None = None,
        targets: Mapping[str, Any] | None = None,
        earlier: list[PlanEvent] | None = None,
    ) -> None:
        """`plan` is the plan's latest line and `proposed` its first; `in_force` the research params the next
        test would run with (None when unknown: a replay, or a settled plan); `earlier` the plans written
        before it on its parameters; `targets` the session's settings.targets."""
        super().__init__()
        self.plan = plan  # as read: what a decision names and the checks validate
        # what the screen shows: every string made visible (escapes, bidi controls), see engine.text
        self.shown: PlanEvent = _visible(plan)
        self.proposed: PlanEvent = _visible(proposed or plan)
        self.reasoning: list[str] = _visible(reasoning)
        self.read_only = read_only
        self.in_force = in_force
        self.bounds = plan_bounds(plan, in_force)  # what the plan's parameters may be: its config's strategy's and the shared
        self.targets = targets or {}
        self.earlier: list[PlanEvent] = _visible(earlier or [])
        self.editing = False

    @property
    def pending(self) -> bool:
        return self.plan.status == "pending"

    # ------------------------------------------------------------ what it says

    def compose(self) -> ComposeResult:
        p = self.shown
        with VerticalScroll(id="review"):
            yield Static(self._title(), id="title")
            yield Static(self._changes(), id="changes")
            yield Static(self._strategy(), id="strategy")
            yield Static(self._evidence(), id="evidence")
            yield Static(self._why(), id="why")
            if self.earlier:
                yield Static(self._history(), id="history")
            if p.status in ("applied", "approved", "edited"):
                yield Static(self._effect(), id="effect")
            with Vertical(id="edit-form", classes="hidden"):
                for item in self.plan.patch:
                    name = item.parameter
                    if name not in self.bounds:  # no field (nor widget id) for a name outside the schema
                        continue
                    yield Static(self._field_label(name), classes="field")
                    new = item.new_value
                    yield Input(("on" if new else "off") if isinstance(new, bool) else str(new), id=f"edit-{name}")
                    yield self._refusal_line(name)
                yield self._refusal_line("form")
            yield Static(self._hint(), id="hint")

    def _title(self) -> Text:
        p = self.shown
        status = p.status
        title = Text.assemble((f"Plan {p.plan_id} ", "bold"), (status, STATUS_STYLE.get(status, "bold")),
                              ("  ", ""), (plan_change(p), "bold"))
        scope = p.scope or {}
        label, method, config = scope.get("label"), scope.get("method"), scope.get("config_id")
        title.append("\nchanges ")
        if label or config:
            title.append(str(label or config), style="bold")
            details = ", ".join(str(x) for x in (method, config) if x)
            title.append(f" ({details})" if details and label else "")
            title.append(", the research config")
        else:
            title.append("the research config")
        if self.pending:
            title.append("; applies to the tests that start after the decision")
        elif p.applied_from:
            title.append(f"; applied from {p.applied_from}", style="bold")
        return title

    def _changes(self) -> Group:
        """Per parameter: the value before (in force now, for a pending plan), proposed, applied; bounds and step."""
        p, status = self.shown, self.shown.status
        proposed = {i.parameter: i.new_value for i in self.proposed.patch}
        if self.pending:
            before = "in force now" if self.in_force is not None else "when proposed"
            heads = ("parameter", before, "proposed")
        elif status == "edited":
            heads = ("parameter", "before", "proposed", "applied")
        elif status in ("applied", "approved"):
            heads = ("parameter", "before", "applied")
        else:
            heads = ("parameter", "was", "proposed")
        table = _table(*heads, "bounds", "max step", "unit")
        notes: list[Text] = []
        for item in p.patch:
            name = item.parameter
            bound = self.bounds.get(name)
            old = item.old_value
            if self.pending and self.in_force is not None and name in self.bounds:
                now = self.in_force.value(name)
                if now != old:
                    notes.append(Text(f"{name}: the plan was made when it was {value_text(old)}; "
                                      f"{value_text(now)} is in force now", style="yellow"))
                old = now
            values = [Text(value_text(old), style="red")]
            if status == "edited":
                values.append(Text(value_text(proposed.get(name))))
            values.append(Text(value_text(item.new_value), style="green"))
            if bound is None:
                limits = [Text("unknown parameter", style="red"), Text(""), Text("")]
            elif bound.kind == "bool":
                limits = [Text("on/off"), Text("—"), Text("")]
            else:
                limits = [Text(f"[{value_text(bound.lo)} … {value_text(bound.hi)}]"),
                          Text(value_text(bound.max_step)), Text(bound.unit)]
            table.add_row(Text(str(name), style="bold"), *values, *limits)
            if item.shown_old_value is not None:
                notes.append(Text(f"{name}: the plan showed {value_text(item.shown_old_value)} as the old value; "
                                  f"{value_text(item.old_value)} was in force when it applied", style="yellow"))
            if bound is not None and bound.doc:
                notes.append(Text(f"{name}: {bound.doc}", style="dim"))
        refusal = self._approve_refusal()
        if refusal:
            notes.append(Text(f"approve would be refused: {refusal}", style="bold red"))
        return Group(table, *notes)

    def _approve_refusal(self) -> str:
        """Why the patch as proposed cannot apply to the values in force now ('' when it can, or nobody knows)."""
        if not self.pending or self.in_force is None:
            return ""
        try:
            checked_patch(self.plan.patch, self.in_force)
        except PlanError as err:
            return visible(str(err))
        return ""

    def _strategy(self) -> Text:
        """The config's strategy and its own parameters — value in force (when known), bounds, unit — for context:
        an edit decides the plan's parameters only."""
        method = self.in_force.method if self.in_force is not None else (self.plan.scope or {}).get("method")
        out = Text("strategy ", style="dim")
        out.append(visible(str(method or "?")), style="bold")
        try:
            strategy = get_strategy(str(method))
        except StrategyError:
            return out.append("  (not loaded here: its parameters show without bounds)", style="dim")
        if strategy.origin != "built-in":
            out.append(f"  {visible(strategy.origin)}", style="dim")
        for p in strategy.parameters:
            b = self.bounds.get(p.name)
            out.append("\n  ")
            out.append(p.name, style="bold")
            if self.in_force is not None:
                out.append(f" {value_text(self.in_force.value(p.name))}")
            if b is not None and b.kind != "bool":
                out.append(f"  [{value_text(b.lo)} … {value_text(b.hi)}], max step {value_text(b.max_step)}"
                           f"{' ' + b.unit if b.unit else ''}", style="dim")
            if p.doc:
                out.append(f"  {visible(p.doc)}", style="dim")
        return out

    def _evidence(self) -> Group:
        """The metrics that triggered the plan, against the session's targets, and what they cover."""
        p = self.shown
        evidence = p.evidence
        scope = p.scope or {}
        episodes, trades = scope.get("episodes", evidence.get("episodes")), scope.get("trades", evidence.get("trades"))
        line = Text("evidence: ", style="bold")
        if scope:
            line.append(f"{scope.get('phase') or 'validation'} episodes of {scope.get('label') or scope.get('config_id')}, "
                        f"{scope.get('first_test')}…{scope.get('last_test')}: ")
        line.append(f"{episodes if episodes is not None else '?'} episodes, {trades if trades is not None else '?'} trades")
        if "maxdd" in evidence:
            line.append("; maxdd = worst single test's drawdown (as in the targets pane)", style="dim")
        watched = RULE_METRIC.get(p.rule or "", ("", 0))[0]
        table = _table("metric", "value", "target", "")
        keys = [k for k in EVIDENCE if k in evidence] + [k for k in evidence if k not in EVIDENCE and k not in IN_SCOPE_LINE]
        for key in keys:
            label, fmt = EVIDENCE.get(key, (key, "{:g}"))
            value = evidence[key]
            goal = TARGET_OF.get(key)
            threshold = goal.threshold(self.targets) if goal else None
            style = ""
            target_cell = Text("")
            if isinstance(threshold, int | float) and isinstance(value, int | float) and not isinstance(value, bool):
                style = "green" if goal.met(value, threshold) else "red"
                target_cell = Text(f"{goal.sign} {_metric(fmt, threshold)}", style="dim")
            table.add_row(Text(label, style="bold" if key == watched else ""), Text(_metric(fmt, value), style=style),
                          target_cell, Text("◀ the rule's metric" if key == watched else "", style="yellow"))
        return Group(line, table)

    def _why(self) -> Text:
        p = self.shown
        why = Text("why: ", style="bold")
        if p.rule:
            why.append(f"rule {p.rule}", style="bold")
            why.append(f" ({p.agent})")
        else:
            why.append(f"agent {p.agent}", style="bold")
        why.append(" — ")
        why.append(p.reason)
        if p.vetoed_before:
            why.append(f"\nvetoed before: {p.vetoed_before}", style="bold yellow")
        if p.superseded_by:
            why.append(f"\nsuperseded by {p.superseded_by}", style="dim")
        if p.note and p.status in ("vetoed", "superseded", "expired"):
            why.append(f"\nnote: {p.note}", style="dim")
        for line in self.reasoning[-4:]:
            why.append("\n")
            why.append(line, style="dim")
        return why

    def _history(self) -> Text:
        names = ", ".join(i.parameter for i in self.shown.patch)
        out = _heading(f"earlier plans on {names}:")
        for e in self.earlier:
            out.append("\n  ")
            out.append(f"{e.plan_id} ", style="bold")
            out.append(e.status, style=STATUS_STYLE.get(e.status, ""))
            out.append(f"  {plan_change(e)}")
            if e.outcome:
                out.append(f"  {describe_outcome(e.outcome)}", style="green" if e.outcome.get("improved") else "red")
            elif e.status in ("applied", "edited") and e.applied_from:
                out.append(f"  from {e.applied_from}, effect not measured yet", style="dim")
            elif e.note:
                out.append(f"  {e.note}", style="dim")
        return out

    def _effect(self) -> Group | Text:
        p = self.shown
        o = p.outcome
        head = _heading(f"effect (applied from {p.applied_from or '?'}): ")
        if not o:
            head.append("measuring: needs a window of tests run with the patch", style="yellow")
            return head
        head.append(describe_outcome(o), style="green" if o.get("improved") else "red")
        head.append(f"\nmeasured on {o.get('first_test')}…{o.get('last_test')}, {o.get('episodes_after', '?')} episodes",
                    style="dim")
        metric = str(o.get("metric"))
        label, fmt = EVIDENCE.get(metric, (metric, "{:g}"))
        table = _table("", "before", "after")
        table.add_row(Text(label), Text(_metric(fmt, o.get("before"))), Text(_metric(fmt, o.get("after"))))
        table.add_row(Text("score"), Text(_metric("{:.1f}", o.get("score_before"))),
                      Text(_metric("{:.1f}", o.get("score_after"))))
        table.add_row(Text("trades"), Text(_metric("{:,}", o.get("trades_before"))),
                      Text(_metric("{:,}", o.get("trades_after"))))
        verdict = (Text("✓ improved, even on its least favourable plausible value", style="green") if o.get("improved")
                   else Text("✗ not improved: the metric may not have moved, or the score fell", style="red"))
        return Group(head, table, verdict)

    def _field_label(self, name: str) -> Text:
        bound = self.bounds.get(name)
        label = Text(name, style="bold")
        if self.in_force is not None and bound is not None:
            label.append(f"  in force {value_text(self.in_force.value(name))}")
        if bound is not None and bound.kind not in ("bool", "method"):
            label.append(f"  [{value_text(bound.lo)} … {value_text(bound.hi)}], max step {value_text(bound.max_step)}"
                         f"{' ' + bound.unit if bound.unit else ''}", style="dim")
        elif bound is not None and bound.kind == "bool":
            label.append("  on/off", style="dim")
        return label

    def _hint(self) -> Text:
        if not self.pending:
            what = SETTLED_HINT.get(self.shown.status, self.shown.status)
            return Text(f"{self.shown.plan_id} is {what}: nothing to decide   esc close", style="dim")
        if self.read_only:
            return Text("read-only: decisions are disabled", style="bold red")
        return Text("a approve   e edit   v veto   esc close", style="dim")

    # ------------------------------------------------------------ decided elsewhere

    def follow(self, plan: PlanEvent, decided_by: str | None = None) -> None:
        """The plan's latest line, as the session screen reads it: when it was decided (another console, `decide`,
        the conductor's expiry) while this review was open, say so and stop offering a decision."""
        if plan.status == self.plan.status:
            return
        self.plan, self.shown = plan, _visible(plan)
        self.editing = False
        self.query_one("#edit-form").add_class("hidden")
        self.query_one("#title", Static).update(self._title())
        self.query_one("#changes", Static).update(self._changes())
        who = f" by {visible(decided_by, one_line=True)}" if decided_by else ""
        self.query_one("#hint", Static).update(Text.assemble(
            (f"{plan.plan_id} was {plan.status}{who} while this review was open: nothing to decide", "bold yellow"),
            ("   esc close", "dim")))
        self.notify(f"{plan.plan_id} was {plan.status}{who} elsewhere", title="review", severity="warning",
                    markup=False)

    # ------------------------------------------------------------ deciding

    def _can_decide(self) -> bool:
        if not self.pending:
            self.notify(f"{self.shown.plan_id} is {self.shown.status}: nothing to decide", severity="warning",
                        markup=False)
            return False
        if self.read_only:
            self.notify("read-only attach: this console cannot decide plans", severity="error")
            return False
        return True

    def _decide(self, decision: str, values: dict[str, str] | None = None) -> None:
        if self._can_decide():
            self.dismiss(Decision(self.plan.plan_id, decision, values or {}))

    def action_approve(self) -> None:
        if not self.editing:
            self._decide("approve")

    def action_veto(self) -> None:
        if not self.editing:
            self._decide("veto")

    def action_edit(self) -> None:
        if not self.editing and self._can_decide():
            self.editing = True
            self.query_one("#edit-form").remove_class("hidden")
            self.query_one(Input).focus()
            self.query_one("#hint", Static).update(Text("edit the values, enter to submit, esc to close", style="dim"))

    def action_close(self) -> None:
        self.dismiss()

    @on(Input.Submitted)
    def submit_edit(self) -> None:
        """Check the edit as the conductor will (bounds, max step from the value in force); refusals go under the field."""
        names = [item.parameter for item in self.plan.patch if item.parameter in self.bounds]
        values = {name: self.query_one(f"#edit-{name}", Input).value.strip() for name in names}
        for name in [*names, "form"]:
            self._refusal(name, "")
        problem = self._edit_problem(values)
        if problem is None:
            self._decide("edit", values)
            return
        name, why = problem
        self._refusal(name if name in names else "form", why)

    @staticmethod
    def _refusal_line(name: str) -> Static:
        line = Static(Text(""), classes="error", id=f"error-{name}")
        line.display = False  # shown when there is something to say
        return line

    def _refusal(self, name: str, why: str) -> None:
        """Say under field `name` (or under the form: "form") why the edit is refused; '' clears it."""
        line = self.query_one(f"#error-{name}", Static)
        line.update(Text(visible(why)))
        line.display = bool(why)
        if why:
            self.query_one("#review", VerticalScroll).scroll_to_widget(line, animate=False)

    def _edit_problem(self, values: dict[str, str]) -> tuple[str, str] | None:
        """(parameter, why) when the edit would be refused, else None."""
        if self.in_force is not None:
            try:
                edited_patch(self.plan, values, self.in_force)
            except PlanError as err:
                return str(err).split(":", 1)[0], str(err)
            return None
        # the values in force are unknown: the schema's bounds are all that can be checked here
        for name, raw in values.items():
            try:
                value = coerce_value(name, raw, self.bounds)
                bound = self.bounds[name]
                if bound.lo is not None and bound.hi is not None and not bound.lo <= value <= bound.hi:
                    raise ParamError(name, f"{raw} is outside its bounds {value_text(bound.lo)} … {value_text(bound.hi)}")
            except ParamError as err:
                return name, f"{name}: {err.problem}"
        return None


def plan_bounds(plan: PlanEvent, in_force: Params | None) -> dict[str, ParamBound]:
    """The bounds table of the config a plan changes: the one in force, else the method its scope names
    (if registered here), else the shared parameters only."""
    if in_force is not None:
        return in_force.bounds()
    method = (plan.scope or {}).get("method")
    try:
        return bounds_for(str(method)) if method else dict(SHARED_BOUNDS)
    except StrategyError:  # a strategy this console has not loaded: its own parameters show without bounds
        return dict(SHARED_BOUNDS)
