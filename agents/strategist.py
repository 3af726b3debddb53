"""The Strategist: proposes three variations at each segment's start.

Any provider implements `Strategist.propose`; the offline one here follows the segment's
role (DESIGN.md §6) with deterministic rules, so a session needs no network and repeats.
"""

from __future__ import annotations

from typing import Protocol

from agents.context import SegmentContext
from agents.messages import Proposal, StrategistMessage
from engine.params import Params
from engine.targets import thresholds


class Strategist(Protocol):
    provider: str

    def propose(self, ctx: SegmentContext) -> StrategistMessage: ...


def changes(base: Params, other: Params) -> dict[str, float | int | bool | str]:
    """The parameters of `other` that differ from `base` (a proposal's `parametros`), by flat name."""
    a, b = base.flat(), other.flat()
    return {k: v for k, v in b.items() if k != "method" and (k not in a or a[k] != v)}


def clip(params: Params, name: str, value: float) -> float:
    bound = params.bounds()[name]
    assert bound.lo is not None and bound.hi is not None  # clipped are bounded numbers
    return min(max(value, bound.lo), bound.hi)


def _scaled_periods(p: Params, factor: float) -> Params:
    """The same config with its strategy's periods (its int parameters counted in bars) scaled, in
    bounds; when that breaks the strategy's own rule (a fast period no longer below the slow one),
    the first period steps down until the rule holds."""
    strategy = p.strategy
    periods = [q for q in strategy.parameters if q.kind == "int" and q.unit == "bars"]
    values = {**p.method_params, **{q.name: int(round(clip(p, q.name, int(p.method_params[q.name]) * factor)))
                                    for q in periods}}
    if periods and strategy.check is not None:
        first = periods[0]
        assert first.lo is not None
        while strategy.check(values) and values[first.name] > first.lo:
            values[first.name] = int(values[first.name]) - 1
    return p.with_changes(**values)


class OfflineStrategist:
    """Deterministic rules in place of an LLM."""

    provider = "offline"

    def propose(self, ctx: SegmentContext) -> StrategistMessage:
        """Three proposals for the segment's role, each validated against the parameter schema."""
        base = ctx.base
        if ctx.role == "explore":
            wider = base.with_changes(
                atr_stop_mult=round(clip(base, "atr_stop_mult", base.atr_stop_mult + 0.3), 4),
                hard_tp_usd=round(clip(base, "hard_tp_usd", base.hard_tp_usd + 100.0), 4),
            )
            factor = 1.5 if ctx.segment % 2 == 1 else 0.75
            candidates = [
                ("P1", base, "the best known config as it is (smart baseline)"),
                ("P2", wider, "wider stop and target: let winners run past the noise"),
                ("P3", _scaled_periods(base, factor), f"method periods x{factor}: {'slower' if factor > 1 else 'faster'} signals"),
            ]
            plan = f"explore around {base.method}: as is, wider exits, {'slower' if factor > 1 else 'faster'} periods"
        elif ctx.role == "new_methods":
            others = [m for m in ctx.methods if m != base.method]
            shared = base.model_dump(exclude={"method", "method_params"})
            fresh = [Params(method=m, **shared) for m in others]  # the method's default periods, our exits and gates
            pool = fresh[:2] or [Params(method=base.method, **shared)]  # one strategy: its own default periods
            described = [(p, f"{p.method} with the exits and gates learned so far") for p in pool]
            described.append((_scaled_periods(pool[0], 1.5), f"{pool[0].method}, slower"))
            if len(described) < 3:
                described.append((_scaled_periods(base, 0.75), f"{base.method}, faster"))
            candidates = [(f"P{i + 1}", p, why) for i, (p, why) in enumerate(described)]
            plan = (f"try the methods not yet researched: {', '.join(others)}" if others
                    else f"{base.method} is the session's only strategy: its default periods, slower and faster")
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
