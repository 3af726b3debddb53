"""What an agent is told at its turn: computed numbers only, never raw files or free text.

The same context feeds the offline rules and (later) the LLM prompts, so both see the
session through one narrow, validated window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.settings import Targets
from engine.params import Params
from engine.strategies import registered

Role = Literal["explore", "new_methods", "validate", "ensemble"]


def segment_role(segment: int) -> Role:
    """DESIGN.md §6: 1–2 explore around the best known configs, 3 new methods,
    4 walk-forward validation of the best, 5 (and later) the ensemble."""
    if segment <= 2:
        return "explore"
    later: dict[int, Role] = {3: "new_methods", 4: "validate"}
    return later.get(segment, "ensemble")


@dataclass(frozen=True)
class Standing:
    """A config's out-of-sample record so far, as agents see it."""

    config_id: str
    label: str
    params: Params
    tests: int
    val_trades: int
    val_hit: float
    val_payoff: float
    val_pnl: float
    val_score: float
    deflated_sharpe: float | None = None


@dataclass
class SegmentContext:
    """The facts an agent decides on at a segment's start or end."""

    segment: int
    segments: int
    role: Role
    base: Params
    targets: Targets
    seed: int
    standings: list[Standing] = field(default_factory=list)  # best first, validation only
    # the session's strategies, by registered name (default: every registered one)
    methods: tuple[str, ...] = field(default_factory=lambda: tuple(registered()))
    # validation score of a config on recent, already-seen windows (no look-ahead); None: no such windows
    preflight: Callable[[Params], float | None] | None = None


def selection_view(results: dict[str, Any]) -> dict[str, Any]:
    """Segment results as the agents may see them: no holdout figure ever reaches a choice."""
    view = {k: v for k, v in results.items() if k not in ("standings", "overfitting")}
    view["chosen"] = {phase: m for phase, m in results["chosen"].items() if phase != "holdout"}
    return view
