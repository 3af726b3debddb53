"""The Strategist: proposes three variations at each segment's start.

Any provider implements `Strategist.propose`; the offline one here follows the segment's
role (DESIGN.md §6) with deterministic rules, so a session needs no network and repeats.
"""

from __future__ import annotations

from typing import Protocol

from agents.context import SegmentContext
from agents.messages import Proposal, StrategistMessage
from engine.methods import METHODS
from engine.params import PARAM_BOUNDS, Params
from engine.targets import thresholds

# the method-specific periods; everything else (exits, gates, costs) is shared by all methods
METHOD_FIELDS = {name: m.param_names for name, m in METHODS.items()}


class Strategist(Protocol):
    provider: str

    def propose(self, ctx: SegmentContext) -> StrategistMessage: ...


def changes(base: Params, other: Params) -> dict[str, float | int | bool | str]:
    """The fields of `other` that differ from `base` (a proposal's `parametros`)."""
    a, b = base.model_dump(), other.model_dump()
    return {k: v for k, v in b.items() if a[k] != v and k != "method"}


def clip(name: str, value: float) -> float:
    bound = PARAM_BOUNDS[name]
    assert bound.lo is not None and bound.hi is not None  # clipped are the methods' periods, all bounded
    return min(max(value, bound.lo), bound.hi)


def _scaled_periods(p: Params, factor: float) -> Params:
    """The same config with its method's periods scaled (kept ordered and in bounds)."""
    values = {n: int(round(clip(n, getattr(p, n) * factor))) for n in METHOD_FIELDS[p.method]}
    if "ema_fast" in values and values["ema_fast"] >= values["ema_slow"]:
        values["ema_fast"] = max(2, values["ema_slow"] - 1)
    if "macd_fast" in values and values["macd_fast"] >= values["macd_slow"]:
        values["macd_fast"] = max(2, values["macd_slow"] - 1)
    return p.with_changes(**values)


class OfflineStrategist:
    """Deterministic rules in place of an LLM."""

    provider = "offline"

    def propose(self, ctx: SegmentContext) -> StrategistMessage:
        """Three proposals for the segment's role, each validated against the parameter schema."""
        base = ctx.base
        if ctx.role == "explore":
            wider = base.with_changes(
                atr_stop_mult=round(clip("atr_stop_mult", base.atr_stop_mult + 0.3), 4),
                hard_tp_usd=round(clip("hard_tp_usd", base.hard_tp_usd + 100.0), 4),
            )
            factor = 1.5 if ctx.segment % 2 == 1 else 0.75
            candidates = [
                ("P1", base, "the best known config as it is (smart baseline)"),
                ("P2", wider, "wider stop and target: let winners run past the noise"),
                ("P3", _scaled_periods(base, factor), f"method periods x{factor}: {'slower' if factor > 1 else 'faster'} signals"),
            ]
            plan = f"explore around {base.method}: as is, wider exits, {'slower' if factor > 1 else 'faster'} periods"
        elif ctx.role == "new_methods":
            others = [m for m in METHODS if m != base.method]
            shared = {k: v for k, v in base.model_dump().items() if k not in sum(METHOD_FIELDS.values(), ()) and k != "method"}
            fresh = [Params(method=m, **shared) for m in others]  # the method's default periods, our exits and gates
            candidates = [
                ("P1", fresh[0], f"{others[0]} with the exits and gates learned so far"),
                ("P2", fresh[1], f"{others[1]} with the exits and gates learned so far"),
                ("P3", _scaled_periods(fresh[0], 1.5), f"{others[0]}, slower"),
            ]
            plan = f"try the methods not yet researched: {', '.join(others)}"
        else:
            tops = [s.params for s in ctx.standings[:3]] or [base]
            while len(tops) < 3:
                tops.append(_scaled_periods(tops[-1], 1.25))
            what = "re-test on unseen windows" if ctx.role == "validate" else "run side by side as an ensemble"
            candidates = [(f"P{i + 1}", p, f"rank {i + 1} so far: {what}") for i, p in enumerate(tops)]
            plan = f"{what}: the three best configs by out-of-sample score"
        proposals = [
            Proposal(nome=name, metodo=p.method, parametros=changes(base, p), racional=why) for name, p, why in candidates
        ]
        expected = thresholds(ctx.targets)
        return StrategistMessage(
            turno=0,
            proposta=proposals,
            plano_curto=plan,
            metricas_esperadas={k: expected[k] for k in ("hit", "payoff", "maxdd")},
            proximo_passo="the Critic picks one; 100 walk-forward tests follow",
        )
