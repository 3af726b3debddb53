"""The Strategist and the Critic played by an LLM, with the offline agent as their safety net.

Every answer is validated — the message shape (pydantic), then each parameter against the
schema: known name, bounds, at most `max_step` away from the base, cross-field rules. A
failure gets one repair attempt that quotes the validation error; if that fails too, the
offline agent answers the turn and the conversation says why. An auth error, or a spent
budget, puts the role offline for the rest of the session (the status bar shows it); any
other failure falls back for that turn only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents import prompts
from agents.context import SegmentContext
from agents.critic import Choice, OfflineCritic, Review, proposal_params
from agents.llm import LLMClient, LLMError
from agents.messages import CriticMessage, StrategistMessage
from agents.plans import PlanError, checked_patch
from agents.rules import RuleFiring
from agents.strategist import OfflineStrategist
from engine.params import ParamError, Params, bounds_for, coerce_value
from engine.strategies import get as get_strategy
from engine.strategy import StrategyError
from engine.targets import thresholds

log = logging.getLogger("maestro.llm")
M = TypeVar("M", bound=BaseModel)


class Invalid(ValueError):
    """An answer that breaks the schema; the message is quoted back to the model once."""


def check_change(base: Params, method: str, name: str, value: Any) -> Any:
    """One parameter change of a config of `method`: a parameter that strategy reads (or a shared
    one), typed, in bounds, within its max step of the base value (the strategy's default when
    the method changes)."""
    try:
        bounds = bounds_for(method)
    except StrategyError as err:
        raise Invalid(str(err)) from None
    if name not in bounds or name == "method":
        raise Invalid(f"{name}: not a parameter of {method} (its own: {', '.join(get_strategy(method).names) or 'none'}; "
                      f"or a shared one)")
    try:
        typed = coerce_value(name, value, bounds)
    except ParamError as err:
        raise Invalid(str(err)) from None
    b = bounds[name]
    if b.lo is not None and b.hi is not None and not (b.lo <= typed <= b.hi):
        raise Invalid(f"{name}: {typed} is outside {b.lo:g} … {b.hi:g}")
    if b.kind in ("int", "float") and b.max_step is not None:
        own = get_strategy(method).parameter(name)
        old = base.value(name) if own is None or method == base.method else own.default
        step = abs(typed - old)
        if step > b.max_step + 1e-9:
            raise Invalid(f"{name}: a change of {step:g} is more than the {b.max_step:g} one plan may make")
    return typed


def checked_params(base: Params, method: str, changes: dict[str, Any]) -> Params:
    """base with `changes` (each checked), and the cross-field rules."""
    values = {name: check_change(base, method, name, v) for name, v in changes.items()}
    try:
        return base.with_changes(method=method, **values)
    except ParamError as err:
        raise Invalid(str(err)) from None


class _Choose(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    chosen_index: int = Field(ge=0, le=2)
    verdict: str = Field(min_length=1, max_length=200)
    analysis: str = Field("", max_length=1200)


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    parameter: str
    new_value: float | int | bool


class _Review(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    decision: str = Field(pattern="^(confirm|reshape|reject)$")
    changes: list[_Change] = Field(default_factory=list, max_length=3)
    reason: str = Field(min_length=1, max_length=600)


class _Judge(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    verdict: str = Field(min_length=1, max_length=200)
    analysis: str = Field("", max_length=1200)


class LLMRole:
    """What both LLM roles share: a client, the repair loop, the fallback bookkeeping."""

    def __init__(self, client: LLMClient, on_note: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.offline_reason: str | None = None  # set when the role went offline for the session
        self.notes: list[str] = []  # why turns fell back, for the conversation
        self.on_note = on_note or (lambda _n: None)

    @property
    def provider(self) -> str:
        return f"offline ({self.offline_reason})" if self.offline_reason else self.client.provider

    def _note(self, text: str) -> None:
        self.notes.append(text)
        log.warning("%s", text)
        self.on_note(text)

    def ask(self, turn: str, system: str, user: str, model: type[M], validate: Callable[[M], Any]) -> Any | None:
        """The validated answer, after at most one repair; None means: answer offline this turn."""
        if self.offline_reason:
            return None
        schema = model.model_json_schema()
        prompt = user
        for attempt in (1, 2):
            try:
                answer = self.client.ask(system, prompt, turn, schema)
            except LLMError as err:
                if err.kind in ("auth", "budget"):
                    self.offline_reason = str(err)
                    self._note(f"{turn}: {err}; this role is offline for the rest of the session")
                else:
                    self._note(f"{turn}: {err}; the offline agent answers this turn")
                return None
            try:
                if answer.data is None:
                    raise Invalid("the answer was not a JSON object")
                return validate(model.model_validate(answer.data))
            except (ValidationError, Invalid) as err:
                problem = str(err).splitlines()[0] if isinstance(err, Invalid) else _first_error(err)
                if attempt == 1:
                    prompt = (f"{user}\n\nYour previous answer was refused: {problem}. "
                              "Answer again, within the schema and the allowed parameters.")
                    continue
                self._note(f"{turn}: answer refused twice ({problem}); the offline agent answers this turn")
                return None
        return None


def _first_error(err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(str(x) for x in e["loc"]) or "answer"
    return f"{where}: {e['msg']}"


class LLMStrategist(LLMRole):
    """Three proposals from the LLM, each validated; the offline Strategist on failure."""

    def __init__(self, client: LLMClient, **kw: Any) -> None:
        super().__init__(client, **kw)
        self.offline = OfflineStrategist()

    def propose(self, ctx: SegmentContext) -> StrategistMessage:
        def validate(message: StrategistMessage) -> StrategistMessage:
            if len(message.proposta) != 3:
                raise Invalid(f"proposta: {len(message.proposta)} proposals, exactly 3 wanted")
            for p in message.proposta:
                if p.metodo not in ctx.methods:
                    raise Invalid(f"{p.metodo}: not one of this session's strategies ({', '.join(ctx.methods)})")
                checked_params(ctx.base, p.metodo, p.parametros)
            return message.model_copy(update={"turno": 0})

        got = self.ask("strategist_proposals", prompts.strategist_system(ctx.methods), prompts.strategist_user(ctx),
                       StrategistMessage, validate)
        return got if got is not None else self.offline.propose(ctx)


class LLMCritic(LLMRole):
    """The LLM's choice, reviews and verdicts, validated; the offline Critic on failure."""

    def __init__(self, client: LLMClient, **kw: Any) -> None:
        super().__init__(client, **kw)
        self.offline = OfflineCritic()

    def choose(self, ctx: SegmentContext, proposals: StrategistMessage) -> Choice:
        if ctx.role == "ensemble":
            return self.offline.choose(ctx, proposals)  # the ensemble takes all three by definition
        candidates = proposal_params(ctx.base, proposals)
        scores = [ctx.preflight(p) if ctx.preflight else None for p in candidates]
        got = self.ask("critic_choice", prompts.critic_system(ctx.methods),
                       prompts.choose_user(ctx, [p.model_dump() for p in proposals.proposta], scores),
                       _Choose, lambda c: c)
        if got is None:
            return self.offline.choose(ctx, proposals)
        message = CriticMessage(turno=1, veredito=got.verdict, analise=got.analysis, ajuste_proposto={
            "chosen": proposals.proposta[got.chosen_index].nome,
            "targets": thresholds(ctx.targets),
        })
        return Choice((got.chosen_index,), message)

    def review(self, ctx: SegmentContext, firing: RuleFiring) -> Review:
        current = ctx.base

        def validate(r: _Review) -> _Review:
            if r.decision == "reshape" and not r.changes:
                raise Invalid("reshape needs at least one change")
            if r.decision != "reject":
                changes = r.changes or [_Change(parameter=firing.parameter, new_value=firing.new_value)]
                checked_params(current, current.method, {c.parameter: c.new_value for c in changes})
                try:  # bounds and the max step from the value in force, like every applied value
                    checked_patch([{"parameter": c.parameter, "old_value": current.value(c.parameter),
                                    "new_value": c.new_value} for c in changes], current)
                except PlanError as err:
                    raise Invalid(str(err)) from None
            return r

        got = self.ask("critic_review", prompts.critic_system(ctx.methods), prompts.review_user(ctx, firing, current),
                       _Review, validate)
        if got is None:
            return self.offline.review(ctx, firing)
        if got.decision == "reject":
            return Review(None, CriticMessage(turno=0, veredito=f"reject {firing.parameter}", analise=got.reason,
                                              ajuste_proposto=None))
        changes = got.changes if got.decision == "reshape" else [_Change(parameter=firing.parameter,
                                                                         new_value=firing.new_value)]
        typed = checked_params(current, current.method, {c.parameter: c.new_value for c in changes})
        patch = [{"parameter": c.parameter, "old_value": current.value(c.parameter),
                  "new_value": typed.value(c.parameter)} for c in changes]
        return Review(patch, CriticMessage(turno=0, veredito=f"{got.decision} {firing.parameter}", analise=got.reason,
                                           ajuste_proposto=patch))

    def judge(self, ctx: SegmentContext, results: dict[str, Any]) -> CriticMessage:
        got = self.ask("critic_verdict", prompts.critic_system(ctx.methods), prompts.judge_user(ctx, results), _Judge, lambda j: j)
        if got is None:
            return self.offline.judge(ctx, results)
        return CriticMessage(turno=2, veredito=got.verdict, analise=got.analysis, ajuste_proposto=None)

