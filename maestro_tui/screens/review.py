"""The review modal: a plan's diff, evidence and the agents' reasoning; a approves, e edits, v vetoes."""

from __future__ import annotations

import json

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from engine.params import PARAM_BOUNDS, ParamError, coerce_value


class ReviewScreen(ModalScreen[None]):
    """Decide one plan. Nothing is decided by a key outside this screen."""

    DEFAULT_CSS = """
    ReviewScreen { align: center middle; }
    #review { width: 90%; max-width: 110; height: auto; max-height: 90%; border: thick $accent; background: $surface; padding: 1 2; }
    #review .error { color: $error; height: auto; }
    #review Input { margin: 0 0 0 0; }
    #edit-form.hidden { display: none; }
    """
    BINDINGS = [
        Binding("a", "approve", "approve", id="review.approve"),
        Binding("e", "edit", "edit", id="review.edit"),
        Binding("v", "veto", "veto", id="review.veto"),
        Binding("escape", "close", "close", id="review.close"),
    ]

    class Decided(Message):
        """The human decided: `decision` is approve/edit/veto, `values` the edited ones."""

        def __init__(self, plan_id: str, decision: str, values: dict[str, str]) -> None:
            super().__init__()
            self.plan_id = plan_id
            self.decision = decision
            self.values = values

    def __init__(self, plan: dict, reasoning: list[str], read_only: bool) -> None:
        super().__init__()
        self.plan = plan
        self.reasoning = reasoning
        self.read_only = read_only
        self.editing = False

    def compose(self) -> ComposeResult:
        p = self.plan
        with VerticalScroll(id="review"):
            yield Label(Text(f"Plan {p['plan_id']} — {p['status']}", style="bold"))
            diff = Text()
            for k, v in p["change"].items():
                old, _, new = v.partition(" -> ")
                diff.append(f"{k} ", style="bold")
                diff.append(old, style="red")
                diff.append(" → ")
                diff.append(new + "\n", style="green")
            yield Static(diff, id="diff")
            yield Static(Text(f"why: {p['reason']}"), id="reason")
            yield Static(Text("evidence: " + json.dumps(p["evidence"])), id="evidence")
            for line in self.reasoning[-4:]:
                yield Static(Text(line, style="dim"))
            with Vertical(id="edit-form", classes="hidden"):
                for item in p["patch"]:
                    b = PARAM_BOUNDS.get(item["parameter"])
                    bounds = f" [{b.lo:g} … {b.hi:g}]" if b and b.lo is not None else ""
                    yield Label(f"{item['parameter']}{bounds}")
                    yield Input(str(item["new_value"]), id=f"edit-{item['parameter']}")
                    yield Static("", classes="error", id=f"error-{item['parameter']}")
            hint = "read-only: decisions are disabled" if self.read_only else "a approve   e edit   v veto   esc close"
            yield Label(Text(hint, style="bold red" if self.read_only else "dim"), id="hint")

    def _decide(self, decision: str, values: dict[str, str] | None = None) -> None:
        if self.read_only:
            self.notify("read-only attach: this console cannot decide plans", severity="error")
            return
        self.post_message(self.Decided(self.plan["plan_id"], decision, values or {}))
        self.dismiss()

    def action_approve(self) -> None:
        if not self.editing:
            self._decide("approve")

    def action_veto(self) -> None:
        if not self.editing:
            self._decide("veto")

    def action_edit(self) -> None:
        if self.read_only:
            self._decide("edit")
            return
        if not self.editing:
            self.editing = True
            self.query_one("#edit-form").remove_class("hidden")
            self.query_one(Input).focus()
            self.query_one("#hint", Label).update("edit the values, enter to submit, esc to close")

    def action_close(self) -> None:
        self.dismiss()

    @on(Input.Submitted)
    def submit_edit(self) -> None:
        values, ok = {}, True
        for item in self.plan["patch"]:
            name = item["parameter"]
            raw = self.query_one(f"#edit-{name}", Input).value
            error = self.query_one(f"#error-{name}", Static)
            try:
                value = coerce_value(name, raw)
                b = PARAM_BOUNDS[name]
                if b.lo is not None and not (b.lo <= value <= b.hi):
                    raise ParamError(name, f"{raw} is outside {b.lo:g} … {b.hi:g}")
                error.update("")
                values[name] = raw
            except ParamError as err:
                error.update(err.problem)
                ok = False
        if ok:
            self._decide("edit", values)
