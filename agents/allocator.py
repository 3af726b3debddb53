"""The allocation layer inside a session: the conductor's desk for engine.allocation.

Segments 1–4: one strategy per method family, rated after every test by the trailing
Sharpe of its out-of-sample returns — each test's validation PnL of the family's baseline
config / notional, over the last `window_days / 2` tests (one test per 2-day walk-forward
step), annualised by √(365 / 2) (`family_returns`, `Rating`: the console rates the families
with them too). A mode change, and every segment end, is an AllocationEvent in
allocation.jsonl and a one-paragraph summary in audit.jsonl.

Segment 5: the best configs found so far trade as one portfolio under the controller over
the bars of the segment's windows (engine.allocation.run_portfolio), compared with equal
weights and with the systemic override switched off.
"""

from __future__ import annotations

import functools
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.allocation import (
    MODES,
    AllocationSettings,
    Controller,
    Decision,
    Mode,
    NonceLedger,
    decided_positions,
    new_identity,
    run_portfolio,
    trailing_sharpe,
)
from engine.configs import config_label
from engine.data import Bars
from engine.events import event_fields
from engine.leaderboard import LeaderboardRow
from engine.metrics import YEAR_MS, annualised_sharpe, max_drawdown
from engine.params import Params
from engine.sweep import run_sweep, sweep_of

STEP_DAYS = 2.0  # walk-forward step: one test's validation return every 2 days


def summary(d: Decision) -> str:
    """The one-paragraph account of an allocation decision (the template an LLM may replace)."""
    sharpe = "not rated yet (too little history)" if d.sharpe is None else f"{d.sharpe:.2f}"
    verb = "stays" if d.allocation == d.previous_allocation else "moves"
    return (
        f"{d.strategy}: trailing Sharpe {sharpe}; mode {d.mode}; allocation {verb} from "
        f"{d.previous_allocation:.0%} to {d.allocation:.0%} of capital. {d.reason[0].upper() + d.reason[1:]}."
    )


@dataclass(frozen=True)
class Rating:
    """How a family is rated: the trailing Sharpe of its last `window` per-test returns, from `min_history` on."""

    window: int  # tests
    min_history: int  # tests

    @classmethod
    def of(cls, settings: AllocationSettings) -> Rating:
        """The settings' days in tests: one test per STEP_DAYS walk-forward step."""
        return cls(max(2, int(round(settings.window_days / STEP_DAYS))),
                   max(2, int(math.ceil(settings.min_history_days / STEP_DAYS))))

    def sharpe(self, returns: Sequence[float]) -> float | None:
        """Trailing Sharpe (engine.allocation.trailing_sharpe) of the last `window` of a family's per-test
        returns, annualised by √(365 / STEP_DAYS); None with fewer than `min_history` of them."""
        return trailing_sharpe(np.array(returns[-self.window:]), 365.0 / STEP_DAYS, self.min_history)


def family_returns(rows: Iterable[LeaderboardRow]) -> dict[str, float]:
    """One test's out-of-sample return per method family: its baseline row's validation PnL / notional
    (the first baseline row of the method, in the test's ranked order)."""
    out: dict[str, float] = {}
    for r in rows:
        if r.role == "baseline" and r.method not in out:
            out[r.method] = r.val_pnl / _notional(r.params_json)
    return out


@functools.lru_cache(maxsize=1024)
def _notional(params_json: str) -> float:
    """A config's notional (USD), read once per config: a session's tests run a few configs each, again and again."""
    return float(json.loads(params_json)["notional_usd"])


@dataclass
class Record:
    """A record for the conductor to append, with the key that makes it idempotent."""

    file: str  # "allocation.jsonl" or "audit.jsonl"
    key: str
    body: dict[str, Any]


class AllocationDesk:
    """Per-family modes during research segments, and the ensemble portfolio at the end."""

    def __init__(self, families: list[str], settings: AllocationSettings, session_id: str) -> None:
        self.settings = settings
        self.session_id = session_id
        self.families = families
        self.rating = Rating.of(settings)
        self.returns: dict[str, deque[float]] = {f: deque(maxlen=self.rating.window) for f in families}
        self.controller = Controller({f: 1.0 / len(families) for f in families}, settings, session_id)
        self.modes: dict[str, Mode] = dict.fromkeys(families, "ACTIVE")
        # each family's rating on its returns so far: it moves only when a test brings the family a return
        self.sharpes: dict[str, float | None] = {f: self.rating.sharpe([]) for f in families}

    def _event(self, d: Decision, ts: str, reason: str) -> dict[str, Any]:
        return {
            **event_fields("allocation", self.session_id), "ts": ts,
            "strategy": d.strategy, "sharpe": None if d.sharpe is None else round(d.sharpe, 6), "mode": d.mode,
            "allocation": round(d.allocation, 6), "previous_allocation": round(d.previous_allocation, 6),
            "reason": reason, "agent_id": d.identity.agent_id, "nonce": d.identity.nonce,
        }

    def _audit(self, d: Decision, where: str) -> dict[str, Any]:
        return {
            **event_fields("audit", self.session_id),
            "action": "allocation_decision", "plan_id": None, "nonce": d.identity.nonce, "who": d.identity.agent_id,
            "why": summary(d),
            "details": {"strategy": d.strategy, "sharpe": d.sharpe, "mode": d.mode, "allocation": d.allocation,
                        "previous_allocation": d.previous_allocation, "at": where},
        }

    def after_test(self, test_id: str, rows: list[LeaderboardRow], ts: str) -> list[Record]:
        """Rate the families on this test's baseline results; records for every mode change."""
        seen = {f: r for f, r in family_returns(rows).items() if f in self.returns}
        if not seen:
            return []
        for f, r in seen.items():
            self.returns[f].append(r)
            self.sharpes[f] = self.rating.sharpe(list(self.returns[f]))
        out = []
        for d in self.controller.rebalance(self.sharpes):
            if d.mode != self.modes[d.strategy]:
                reason = f"mode {self.modes[d.strategy]} -> {d.mode}: {d.reason}"
                self.modes[d.strategy] = d.mode
                out.append(Record("allocation.jsonl", f"{test_id}:{d.strategy}", self._event(d, ts, reason)))
                out.append(Record("audit.jsonl", f"allocation:{test_id}:{d.strategy}", self._audit(d, test_id)))
        return out

    def segment_end(self, segment: int, ts: str) -> list[Record]:
        """Every family's standing at the end of a segment."""
        out = []
        for name in self.families:
            sharpe = self.sharpes[name]
            alloc = self.controller.allocations[name]
            d = Decision(name, sharpe, self.modes[name], alloc, alloc,
                         new_identity("research", name, self.session_id), f"end of segment {segment}")
            out.append(Record("allocation.jsonl", f"segment{segment}:{name}", self._event(d, ts, d.reason)))
        return out


def ensemble_portfolio(
    bars: Bars,
    start: int,
    end: int,
    train_bars: int,
    members: list[Params],
    settings: AllocationSettings,
    session_id: str,
    iso: Callable[[int], str],
) -> tuple[dict[str, Any], list[Record]]:
    """Run the members as one portfolio over bars [start, end); its results and its allocation records."""
    span = bars.slice(start, end)
    n = len(span)
    names = [f"{i + 1}:{config_label(p)}" for i, p in enumerate(members)]
    swept = run_sweep(span, sweep_of(members), train_end=train_bars, validation_end=n)  # each run_backtest's trades
    decided = np.vstack([decided_positions(swept.trades_of(k), n) for k in range(len(members))])
    capital = float(members[0].notional_usd)
    result = run_portfolio(span.close, decided, names, np.full(len(members), 1.0 / len(members)), settings,
                           bars.interval_ms, capital_usd=capital)
    equity = result.portfolio_equity
    rets = np.diff(equity, prepend=0.0) / capital
    records: list[Record] = []
    ledger = NonceLedger()

    def identity(strategy: str) -> dict[str, str]:
        who = new_identity("ensemble", strategy, session_id)
        ledger.spend(who)
        return {"agent_id": who.agent_id, "nonce": who.nonce}

    previous: list[str | None] = [None] * len(members)
    prev_alloc = [1.0 / len(members)] * len(members)
    for r, bar in enumerate(result.rebalance_bars.tolist()):
        for k, name in enumerate(names):
            mode = MODES[int(result.modes[r, k])]
            alloc = float(result.allocations[r, k])
            if mode != previous[k]:
                sharpe = result.sharpes[r, k]
                rated = "too little history" if math.isnan(sharpe) else f"trailing Sharpe {sharpe:.2f}"
                records.append(Record("allocation.jsonl", f"ensemble:{bar}:{k}", {
                    **event_fields("allocation", session_id),
                    "ts": iso(start + bar), "strategy": name, "sharpe": None if math.isnan(sharpe) else float(sharpe),
                    "mode": mode, "allocation": alloc, "previous_allocation": prev_alloc[k],
                    "reason": f"ensemble: {rated} -> {mode}", **identity(name),
                }))
                previous[k] = mode
            prev_alloc[k] = alloc
    overrides = result.override_bars()
    for bar, held in overrides:
        records.append(Record("allocation.jsonl", f"ensemble-override:{bar}", {
            **event_fields("allocation", session_id),
            "ts": iso(start + bar), "strategy": "systemic-risk", "sharpe": None, "mode": "ACTIVE", "allocation": 0.0,
            "previous_allocation": 0.0, "override": True, "signals_changed": held,
            "reason": f"at least {settings.systemic_sells} strategies signalled SELL: BUY held for {', '.join(held)}",
            **identity("systemic-risk"),
        }))
    results = {
        "members": names,
        "bars": n,
        "capital_usd": capital,
        "pnl": result.pnl,
        "sharpe": annualised_sharpe(rets, YEAR_MS / bars.interval_ms),
        "maxdd": float(max_drawdown(equity, 0, n)),
        "equal_weights_pnl": result.comparisons["equal_weights_pnl"],
        "no_override_pnl": result.comparisons["no_override_pnl"],
        "override_bars": len(overrides),
        "rebalances": int(len(result.rebalance_bars)),
        "final": {name: {"mode": MODES[int(result.modes[-1, k])] if len(result.rebalance_bars) else "ACTIVE",
                         "allocation": float(result.allocations[-1, k]) if len(result.rebalance_bars) else 1.0 / len(members)}
                  for k, name in enumerate(names)},
    }
    return results, records
