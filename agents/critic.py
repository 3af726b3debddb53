"""The Critic: picks a proposal and states targets, reviews rule firings, judges each segment.

The offline Critic decides by numbers: a proposal's validation score on recent windows the
session has already seen (no look-ahead), rule firings confirmed as the rules propose them,
the segment judged against the targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from agents.context import SegmentContext
from agents.messages import CriticMessage, StrategistMessage
from agents.rules import RuleFiring
from engine.params import Params
from engine.targets import targets_met, thresholds


@dataclass(frozen=True)
class Choice:
    """The Critic's pick: indices into the proposals (several for an ensemble) and its message."""

    chosen: tuple[int, ...]
    message: CriticMessage


@dataclass(frozen=True)
class Review:
    """The Critic's word on a rule firing: the patch to propose (None: reject) and its message."""

    patch: list[dict[str, Any]] | None
    message: CriticMessage


class Critic(Protocol):
    provider: str

    def choose(self, ctx: SegmentContext, proposals: StrategistMessage) -> Choice: ...

    def review(self, ctx: SegmentContext, firing: RuleFiring) -> Review: ...

    def judge(self, ctx: SegmentContext, results: dict[str, Any]) -> CriticMessage: ...


def proposal_params(base: Params, proposals: StrategistMessage) -> list[Params]:
    """Each proposal as full, validated Params."""
    return [base.with_changes(method=p.metodo, **p.parametros) for p in proposals.proposta]


class OfflineCritic:
    """Deterministic rules in place of an LLM."""

    provider = "offline"

    def choose(self, ctx: SegmentContext, proposals: StrategistMessage) -> Choice:
        """Pick by validation score on already-seen windows; the ensemble takes all three."""
        n = len(proposals.proposta)
        if ctx.role == "ensemble":
            chosen = tuple(range(n))
            verdict = f"ensemble of {', '.join(p.nome for p in proposals.proposta)}"
            analysis = "the best configs so far run side by side under the allocation layer"
        else:
            scores = [ctx.preflight(p) if ctx.preflight else None for p in proposal_params(ctx.base, proposals)]
            if all(s is None for s in scores):
                best = 0
                analysis = "no out-of-sample results to compare yet: start from the first proposal"
            else:
                best = max(range(n), key=lambda i: (scores[i] if scores[i] is not None else -1.0, -i))
                analysis = "validation score on recent windows: " + ", ".join(
                    f"{p.nome} {s:.1f}" for p, s in zip(proposals.proposta, scores) if s is not None
                )
            chosen = (best,)
            verdict = f"chosen: {proposals.proposta[best].nome}"
        message = CriticMessage(
            turno=1,
            veredito=verdict,
            analise=analysis,
            ajuste_proposto={"targets": thresholds(ctx.targets)},
        )
        return Choice(chosen, message)

    def review(self, ctx: SegmentContext, firing: RuleFiring) -> Review:
        """Confirm the rule's patch as it stands."""
        patch = [{"parameter": firing.parameter, "old_value": firing.old_value, "new_value": firing.new_value}]
        message = CriticMessage(
            turno=0,
            veredito=f"adjust {firing.parameter}",
            analise=firing.reason,
            ajuste_proposto=patch,
        )
        return Review(patch, message)

    def judge(self, ctx: SegmentContext, results: dict[str, Any]) -> CriticMessage:
        """Segment verdict against the targets, on the chosen config's validation results."""
        m = results.get("chosen", {}).get("validation", {})
        met = targets_met(ctx.targets, m)
        missed = [k for k, ok in met.items() if not ok]
        verdict = "targets met" if not missed else f"below target: {', '.join(missed)}"
        analysis = (
            f"validation: {m.get('n_trades', 0)} trades, hit {m.get('hit', 0):.3f}, payoff {m.get('payoff', 0):.2f}, "
            f"pnl {m.get('total_pnl', 0):,.0f} USD, worst test drawdown {m.get('maxdd', 0):,.0f} USD, "
            f"blunders {m.get('blunders_per_100', 0):.1f}/100, high-vol share {m.get('high_vol_share', 0):.0%}"
        )
        return CriticMessage(turno=2, veredito=verdict, analise=analysis, ajuste_proposto=None)
