"""The allocation layer (DESIGN.md §8): modes by trailing Sharpe, the systemic-risk override,
just-in-time identities, and the numba portfolio simulation.

Modes, per strategy, from the trailing Sharpe of its out-of-sample returns:
  Sharpe ≥ 1.0 → ACTIVE (its base allocation); 0.5 ≤ Sharpe < 1.0 → REDUCED (base × 0.5);
  Sharpe < 0.5 → SHADOW (zero, still paper-traded so it can come back);
  too little history → ACTIVE. Thresholds, window, factor and base allocations are settings.
Systemic risk: when at least 3 strategies (a setting) signal SELL on the same bar, every BUY
on that bar becomes HOLD (`simulate_portfolio`, the one place it is decided).
Buying power: the base allocations sum to at most 1 and a mode only lowers a base, so the
BUYs of one bar never commit more than the capital (`run_portfolio` refuses bases above 1).
Identity: every allocation decision and every override carries agent_id (environment +
strategy), a fresh nonce and the session_id; a ledger spends each nonce once, and a refusal
is logged, never silent.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, Field

from engine.metrics import annualised_sharpe, in_numba_cache

log = logging.getLogger("maestro.allocation")

Mode = Literal["ACTIVE", "REDUCED", "SHADOW"]
MODES = ("ACTIVE", "REDUCED", "SHADOW")
ACTIVE, REDUCED, SHADOW = 0, 1, 2


class AllocationSettings(BaseModel):
    """The controller's thresholds; every one is a setting."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    active_sharpe: float = Field(1.0, description="trailing Sharpe at least this: ACTIVE")
    reduced_sharpe: float = Field(0.5, description="at least this (and below active_sharpe): REDUCED; below: SHADOW")
    reduced_factor: float = Field(0.5, ge=0, le=1, description="REDUCED gets base allocation × this")
    window_days: float = Field(30.0, gt=0, description="trailing window of returns for the Sharpe")
    min_history_days: float = Field(7.0, ge=0, description="less history than this: ACTIVE")
    rebalance_bars: int = Field(288, ge=1, description="allocations recomputed every N bars (288 = a day of 5m bars)")
    systemic_sells: int = Field(3, ge=1, description="this many SELLs on one bar turn every BUY into HOLD")
    cost_bps: float = Field(2.0, ge=0, le=100, description="cost per unit of position change, bps")


# ---------------------------------------------------------------- the controller


def mode_for(sharpe: float | None, s: AllocationSettings) -> Mode:
    """The mode for a trailing Sharpe (None: too little history → ACTIVE)."""
    if sharpe is None or sharpe >= s.active_sharpe:
        return "ACTIVE"
    if sharpe >= s.reduced_sharpe:
        return "REDUCED"
    return "SHADOW"


def allocation_for(mode: Mode, base: float, s: AllocationSettings) -> float:
    """Fraction of capital for a strategy in `mode` with base allocation `base`."""
    return {"ACTIVE": base, "REDUCED": base * s.reduced_factor, "SHADOW": 0.0}[mode]


def trailing_sharpe(returns: np.ndarray, bars_per_year: float, min_history: int) -> float | None:
    """Annualised Sharpe of per-period returns; None with fewer than `min_history` of them; 0 if flat."""
    r = np.asarray(returns, dtype=float)
    if r.shape[0] < max(min_history, 2):
        return None
    return annualised_sharpe(r, bars_per_year)


@dataclass(frozen=True)
class Identity:
    """Just-in-time identity of a signal or an applied change."""

    agent_id: str  # environment + strategy, e.g. "research/ema_crossover"
    nonce: str
    session_id: str


class _Nonces:
    """Nonces of 8 bytes from the operating system's random source, read 4 KiB at a time: a session draws
    three at every test, and here each read of os.urandom costs a tenth of a millisecond."""

    SIZE = 8
    READ = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0

    def next(self) -> str:
        with self._lock:
            if self._at + self.SIZE > len(self._buffer):
                self._buffer, self._at = os.urandom(self.READ), 0
            nonce = self._buffer[self._at : self._at + self.SIZE]
            self._at += self.SIZE
        return nonce.hex()


    def forget(self) -> None:
        """Drop what is left unread: a forked child must not draw its parent's next nonces."""
        self._lock = threading.Lock()
        self._buffer, self._at = b"", 0


_NONCES = _Nonces()
os.register_at_fork(after_in_child=_NONCES.forget)


def new_identity(environment: str, strategy: str, session_id: str) -> Identity:
    """A fresh identity: a nonce no one has spent (as unpredictable as secrets.token_hex(8))."""
    return Identity(f"{environment}/{strategy}", _NONCES.next(), session_id)


@dataclass(frozen=True)
class Decision:
    """What the controller decided for one strategy at one rebalance."""

    strategy: str
    sharpe: float | None
    mode: Mode
    allocation: float
    previous_allocation: float
    identity: Identity
    reason: str


class NonceLedger:
    """Spends each nonce once; a refusal is logged and kept (DESIGN.md §8: a nonce is consumed once)."""

    def __init__(self) -> None:
        self.spent: set[str] = set()
        self.refusals: list[str] = []

    def spend(self, identity: Identity) -> bool:
        """Spend `identity.nonce`; False, logged, if it was spent before."""
        if identity.nonce in self.spent:
            why = f"nonce {identity.nonce} of {identity.agent_id} already spent (double spend refused)"
            self.refusals.append(why)
            log.warning("ledger refused: %s", why)
            return False
        self.spent.add(identity.nonce)
        return True


class Controller:
    """Modes and allocations for named strategies, plus the systemic-risk override for one bar."""

    def __init__(self, bases: dict[str, float], settings: AllocationSettings, session_id: str,
                 environment: str = "research") -> None:
        self.bases = dict(bases)
        self.settings = settings
        self.session_id = session_id
        self.environment = environment
        self.allocations = dict(bases)  # too little history: ACTIVE
        self.modes: dict[str, Mode] = dict.fromkeys(bases, "ACTIVE")
        self.ledger = NonceLedger()

    def rebalance(self, sharpes: dict[str, float | None]) -> list[Decision]:
        """New mode and allocation per strategy from its trailing Sharpe (None: too little history)."""
        out = []
        s = self.settings
        for name, base in self.bases.items():
            sharpe = sharpes.get(name)
            mode = mode_for(sharpe, s)
            alloc = allocation_for(mode, base, s)
            identity = new_identity(self.environment, name, self.session_id)
            self.ledger.spend(identity)
            if sharpe is None:
                reason = "too little history: ACTIVE until its Sharpe can be judged"
            elif mode == "ACTIVE":
                reason = f"trailing Sharpe {sharpe:.2f} ≥ {s.active_sharpe:g}: full base allocation"
            elif mode == "REDUCED":
                reason = f"trailing Sharpe {sharpe:.2f} in [{s.reduced_sharpe:g}, {s.active_sharpe:g}): half allocation"
            else:
                reason = f"trailing Sharpe {sharpe:.2f} < {s.reduced_sharpe:g}: shadow (paper only)"
            out.append(Decision(name, sharpe, mode, alloc, self.allocations[name], identity, reason))
            self.allocations[name] = alloc
            self.modes[name] = mode
        return out



# ---------------------------------------------------------------- portfolio simulation

@njit(cache=True, error_model="numpy")
def simulate_portfolio(close, decided, bases, active_sharpe, reduced_sharpe, reduced_factor,
                       window, min_history, rebalance, systemic_sells, cost, bars_per_year, use_controller, use_override):
    """K strategies trading one instrument's closes, under the controller.

    decided[k, i] ∈ {−1, 0, +1}: the position strategy k wants to hold during bar i + 1,
    decided at bar i's close. A change upwards is a BUY, downwards a SELL. On a bar where at
    least `systemic_sells` strategies SELL, every BUY is held (the strategy keeps its
    position) — when `use_override`. Every strategy trades on paper whatever its mode; its
    paper returns set its trailing Sharpe (over `window` bars, None-like before `min_history`).
    Allocations (base, × reduced_factor, or 0) are recomputed every `rebalance` bars from
    bar `rebalance` on and apply from the next bar; without `use_controller` they stay at
    `bases`.

    Returns (portfolio_returns[n], strategy_returns[K, n], alloc_timeline[R, K],
    mode_timeline[R, K], sharpe_timeline[R, K] (NaN: too little history), rebalance_bars[R],
    overridden[K, n] bool).
    """
    k_n, n = decided.shape
    pos = np.zeros(k_n)
    prev_decided = np.zeros(k_n)
    alloc = bases.copy()
    strat_ret = np.zeros((k_n, n))
    port_ret = np.zeros(n)
    overridden = np.zeros((k_n, n), np.bool_)
    n_reb = (n - 1) // rebalance if rebalance > 0 else 0
    alloc_tl = np.zeros((n_reb, k_n))
    mode_tl = np.zeros((n_reb, k_n), np.int8)
    sharpe_tl = np.full((n_reb, k_n), np.nan)
    reb_bars = np.zeros(n_reb, np.int64)
    s1 = np.zeros(k_n)
    s2 = np.zeros(k_n)
    r = 0
    for i in range(n):
        if i > 0:
            move = close[i] / close[i - 1] - 1.0
            total = 0.0
            for k in range(k_n):
                ret = pos[k] * move
                strat_ret[k, i] = ret
                total += alloc[k] * ret
            port_ret[i] = total
        # costs of the position changes decided at this close are paid on this bar
        sells = 0
        for k in range(k_n):
            if decided[k, i] < prev_decided[k]:
                sells += 1
        systemic = use_override and sells >= systemic_sells
        extra = 0.0
        for k in range(k_n):
            want = decided[k, i]
            if want != prev_decided[k]:
                buy = want > prev_decided[k]
                if buy and systemic:
                    overridden[k, i] = True
                else:
                    change = abs(want - pos[k])
                    strat_ret[k, i] -= cost * change
                    extra -= alloc[k] * cost * change
                    pos[k] = want
            prev_decided[k] = want
        port_ret[i] += extra
        # trailing sums of paper returns
        for k in range(k_n):
            x = strat_ret[k, i]
            if i >= window:
                old = strat_ret[k, i - window]
                s1[k] += x - old
                s2[k] += x * x - old * old
            else:
                s1[k] += x
                s2[k] += x * x
        if i > 0 and i % rebalance == 0 and r < n_reb:
            count = min(i + 1, window)
            reb_bars[r] = i
            for k in range(k_n):
                if count >= min_history and count >= 2:
                    mean = s1[k] / count
                    var = s2[k] / count - mean * mean
                    sh = 0.0
                    if var > 1e-30:
                        sh = mean / np.sqrt(var) * np.sqrt(bars_per_year)
                    sharpe_tl[r, k] = sh
                    if sh >= active_sharpe:
                        mode = ACTIVE
                    elif sh >= reduced_sharpe:
                        mode = REDUCED
                    else:
                        mode = SHADOW
                else:
                    mode = ACTIVE
                mode_tl[r, k] = mode
                if use_controller:
                    if mode == ACTIVE:
                        alloc[k] = bases[k]
                    elif mode == REDUCED:
                        alloc[k] = bases[k] * reduced_factor
                    else:
                        alloc[k] = 0.0
                alloc_tl[r, k] = alloc[k]
            r += 1
    return port_ret, strat_ret, alloc_tl, mode_tl, sharpe_tl, reb_bars, overridden


@dataclass
class PortfolioResult:
    """A portfolio run: equity curves (USD), the allocation timeline and the override events."""

    names: list[str]
    capital_usd: float
    portfolio_equity: np.ndarray
    strategy_equity: np.ndarray  # K × n, each strategy alone at full capital (paper)
    rebalance_bars: np.ndarray
    allocations: np.ndarray  # R × K
    modes: np.ndarray  # R × K codes into MODES
    sharpes: np.ndarray  # R × K, NaN: too little history
    overridden: np.ndarray  # K × n
    comparisons: dict[str, float] = field(default_factory=dict)

    @property
    def pnl(self) -> float:
        return float(self.portfolio_equity[-1]) if len(self.portfolio_equity) else 0.0

    def override_bars(self) -> list[tuple[int, list[str]]]:
        """(bar, strategies whose BUY was held) for every bar with an override."""
        bars = np.nonzero(self.overridden.any(axis=0))[0]
        return [(int(b), [self.names[k] for k in np.nonzero(self.overridden[:, b])[0]]) for b in bars]


def run_portfolio(
    close: np.ndarray,
    decided: np.ndarray,
    names: list[str],
    bases: np.ndarray,
    settings: AllocationSettings,
    interval_ms: int,
    *,
    capital_usd: float = 100_000.0,
    use_controller: bool = True,
    use_override: bool = True,
    compare: bool = True,
) -> PortfolioResult:
    """Simulate the strategies' decided positions as one portfolio; with `compare`, also report
    the PnL with equal weights (no controller) and without the systemic override."""
    if float(np.sum(bases)) > 1.0 + 1e-9:
        raise ValueError(f"base allocations sum to {float(np.sum(bases)):.4f}: more than the capital (at most 1)")
    bars_per_day = 86_400_000 / interval_ms
    window = max(2, int(round(settings.window_days * bars_per_day)))
    min_history = int(round(settings.min_history_days * bars_per_day))
    args = (
        np.ascontiguousarray(close, dtype=np.float64), np.ascontiguousarray(decided, dtype=np.float64),
        np.ascontiguousarray(bases, dtype=np.float64), settings.active_sharpe, settings.reduced_sharpe,
        settings.reduced_factor, window, min_history, settings.rebalance_bars, settings.systemic_sells,
        settings.cost_bps * 1e-4, 365.0 * bars_per_day,
    )
    port, strat, alloc, modes, sharpes, reb, over = simulate_portfolio(*args, use_controller, use_override)
    result = PortfolioResult(
        names, capital_usd, np.cumsum(port) * capital_usd, np.cumsum(strat, axis=1) * capital_usd,
        reb, alloc, modes, sharpes, over,
    )
    if compare:
        k = len(names)
        equal = simulate_portfolio(*args[:2], np.full(k, 1.0 / k), *args[3:], False, use_override)[0]
        no_override = simulate_portfolio(*args, use_controller, False)[0]
        result.comparisons = {
            "controller_pnl": result.pnl,
            "equal_weights_pnl": float(equal.sum() * capital_usd),
            "no_override_pnl": float(no_override.sum() * capital_usd),
        }
    return result


def decided_positions(trades: np.ndarray, n: int) -> np.ndarray:
    """Bar-level positions a strategy decides at each close, from its simulator trades.

    A trade filled at bar e's open was decided at bar e − 1's close and held until its exit
    bar x: decided[e − 1 .. x − 1] = side (decisions at x's close and later follow the next trade).
    """
    out = np.zeros(n, np.int8)
    for entry, exit_, side in zip(trades["entry_idx"].tolist(), trades["exit_idx"].tolist(), trades["side"].tolist()):
        out[max(entry - 1, 0):max(exit_, entry)] = side
    return out


def portfolio_cached() -> bool:
    """Whether numba's cache holds the portfolio kernel: `warm_up_portfolio` then only loads it."""
    return in_numba_cache(simulate_portfolio)


def warm_up_portfolio() -> None:
    """Compile the portfolio kernel (a tiny run): the conductor does it while the worker pool compiles its own."""
    close = np.linspace(100.0, 101.0, 50)
    run_portfolio(close, np.zeros((1, 50)), ["warm-up"], np.ones(1), AllocationSettings(), 300_000, compare=False)
