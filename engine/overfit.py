"""Overfitting of the session's search: the probability of backtest overfitting, and chance counts.

A session tries many configs on the same walk-forward tests and keeps the best. With enough
tries the best looks good by luck alone. This module measures how much of the selection is
luck, from the configs' validation (out-of-sample) results only.

The performance matrix `perf` (T × N):

- a row is one test of the session (one walk-forward window), rows in test order;
- a column is one config tried;
- a cell is that config's validation return on that test: validation PnL / notional (USD/USD),
  0 when the config did not trade. Every config must have a result on every test.

Probability of backtest overfitting, by combinatorially symmetric cross-validation (CSCV;
Bailey, Borwein, López de Prado & Zhu, 2017, "The Probability of Backtest Overfitting"). In a
trader's words: the chance that the config which looks best on half of the tests is below
the middle of the pack on the other half — that picking the winner was worth nothing.

- The T rows are cut into S contiguous blocks (S = `n_splits`, even) of near-equal size:
  as `np.array_split`, the first T mod S blocks have one row more. If T < S, S is the largest
  even number ≤ T.
- For each of the C(S, S/2) ways to choose S/2 blocks as the in-sample set J (12,870 for
  S = 16, in the order of `itertools.combinations(range(S), S/2)`), the other blocks are the
  out-of-sample set J̄. J̄ is itself one of the combinations, so each set's Sharpe is
  computed once and looked up for both roles (exact, not an approximation).
- Performance of a config on a set of rows: SR = mean / sample sd (n − 1) of its returns on
  those rows, not annualised. SR = 0 when the sd is 0, i.e. when the population variance is
  ≤ (1e-12 · max |r|)² (the rule of `engine.deflated_sharpe`): a config that never traded, with
  all-zero returns, has SR = 0 and ties with other such configs.
- n* = the config with the highest in-sample SR; ties go to the lowest column index.
- ω = the rank of n* among the N out-of-sample SRs, 1 = worst, N = best, ties get the mean
  of the ranks they span (three configs tied for ranks 1–3 all get 2).

      ω̄ = ω / (N + 1)                      relative rank, in (0, 1)
      λ = ln(ω̄ / (1 − ω̄))                  logit; λ = 0 at the median, > 0 above it
      PBO = #{combinations with λ ≤ 0} / C(S, S/2)

How to read it: PBO near 0.5 (or above) — selecting by the in-sample Sharpe is no better
than picking a config at random: the best in-sample config is overfit noise. PBO near 0 —
the in-sample winner keeps ranking in the top half out of sample: there is something real to
select. The median logit says the same on a continuous scale (0 = a coin toss; ln 3 ≈ 1.1 =
the winner typically lands at the 3/4 point of the pack).

Caveats:

- PBO judges the selection procedure (take the best Sharpe), not one config.
- When walk-forward windows overlap, neighbouring rows share bars, so rows are not
  independent and the J/J̄ blocks leak into each other at their edges; PBO then reads low.
- Fewer than 4 tests or fewer than 2 configs: PBO is undefined (`pbo` is None, `why` says
  which). With few tests S is small and PBO is coarse: S = 4 gives 6 combinations, so PBO
  moves in steps of 1/6.

Chance counts (`chance_profitable`), from the same kind of matrix where a NaN cell means the
config did not run on that test: how many configs are profitable out of sample, how many
have a significant mean return, and how many of each one would expect by luck alone among
that many tries.

- profitable: the sum of its validation returns > 0 (= total validation PnL > 0 when the
  notional is the same in every test). Chance alone: ½ per config with at least one result
  (the null: a total return with median 0).
- significant: one-sided t-test of the per-test returns r_1..r_n (n ≥ 2, NaN skipped),

      t = mean(r) / (sd(r) / √n)            sd the sample sd (n − 1)
      p = P(T_{n−1} ≥ t)                    T_{n−1} Student's t with n − 1 degrees of freedom

  significant when p ≤ alpha (sd 0 as above: never significant). Chance alone: alpha per
  config with at least 2 results.
- profitable on holdout: holdout PnL > 0 (NaN: no holdout result, not profitable).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from engine.metrics import SD_ZERO_RELATIVE, per_test_sharpe

MIN_TESTS = 4
MIN_CONFIGS = 2


# ---------------------------------------------------------------------------- PBO by CSCV


@dataclass(frozen=True)
class Pbo:
    """Probability of backtest overfitting of one session's selection (module docstring).

    pbo in [0, 1], None when undefined (`why` says why); n_splits is the S used (0 when
    undefined); logits holds λ per combination, in `itertools.combinations` order of J.
    """

    pbo: float | None
    n_splits: int
    combinations: int
    tests: int
    configs: int
    logits: np.ndarray = field(repr=False, compare=False)
    why: str | None = None

    @property
    def median_logit(self) -> float | None:
        """Median λ over the combinations; None when PBO is undefined."""
        return float(np.median(self.logits)) if self.logits.size else None


def _undefined(tests: int, configs: int, why: str) -> Pbo:
    empty = np.empty(0)
    empty.setflags(write=False)
    return Pbo(pbo=None, n_splits=0, combinations=0, tests=tests, configs=configs, logits=empty, why=why)


def _block_stats(perf: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per block (S × N): row count (S,), mean, sum of squared deviations from it, max |r|."""
    t = perf.shape[0]
    sizes = np.full(s, t // s, dtype=np.int64)
    sizes[: t % s] += 1
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    mean = np.add.reduceat(perf, starts, axis=0) / sizes[:, None]
    dev = perf - np.repeat(mean, sizes, axis=0)
    m2 = np.add.reduceat(dev * dev, starts, axis=0)
    max_abs = np.maximum.reduceat(np.abs(perf), starts, axis=0)
    return sizes, mean, m2, max_abs


def _combination_sharpes(perf: np.ndarray, s: int, combos: np.ndarray) -> np.ndarray:
    """SR of every config on the rows of every combination of blocks (C × N).

    Per-block means and squared deviations are pooled with Chan's formula,
    M2 = Σ_b M2_b + Σ_b n_b (mean_b − mean)², whose terms are all ≥ 0, so no cancellation.
    """
    sizes, b_mean, b_m2, b_max_abs = _block_stats(perf, s)
    member = np.zeros((len(combos), s))
    np.put_along_axis(member, combos, 1.0, axis=1)
    n = (member @ sizes)[:, None]
    mean = member @ (b_mean * sizes[:, None]) / n
    m2 = np.zeros_like(mean)
    max_abs = np.zeros_like(mean)
    for k in range(combos.shape[1]):
        b = combos[:, k]
        gap = b_mean[b]
        gap -= mean
        gap *= gap
        gap *= sizes[b][:, None]
        m2 += gap
        m2 += b_m2[b]
        np.maximum(max_abs, b_max_abs[b], out=max_abs)
    flat = m2 / n <= (SD_ZERO_RELATIVE * max_abs) ** 2
    sd = np.sqrt(m2 / (n - 1.0))
    return np.divide(mean, sd, out=np.zeros_like(mean), where=~flat)


def pbo_cscv(perf: np.ndarray, n_splits: int = 16) -> Pbo:
    """PBO of picking the best-Sharpe config, by CSCV over the T × N validation-return matrix.

    Rows are tests in order, columns configs, cells validation PnL / notional (module
    docstring). `n_splits` (S) must be even and ≥ 2; it shrinks to the largest even S ≤ T.
    """
    perf = np.asarray(perf, dtype=np.float64)
    if perf.ndim != 2:
        raise ValueError(f"perf must be a 2-D matrix (tests × configs), got shape {perf.shape}")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even number ≥ 2, got {n_splits}")
    t, n = perf.shape
    if not np.isfinite(perf).all():
        row, col = np.argwhere(~np.isfinite(perf))[0]
        raise ValueError(
            f"perf has a missing or infinite return at test row {row}, config column {col}: "
            "PBO needs every config's result on every test; keep only configs that ran on all of them"
        )
    if t < MIN_TESTS:
        return _undefined(t, n, f"PBO needs at least {MIN_TESTS} tests (rows) to split into halves; got {t}")
    if n < MIN_CONFIGS:
        return _undefined(t, n, f"PBO needs at least {MIN_CONFIGS} configs (columns) to select from; got {n}")
    s = min(n_splits, t - t % 2)
    half = s // 2
    combos = np.array(list(itertools.combinations(range(s), half)), dtype=np.int64)
    # J̄ of combination i is combination complement[i]: index the J sets by their block bitmask.
    masks = (1 << combos).sum(axis=1)
    order = np.argsort(masks)
    complement = order[np.searchsorted(masks[order], ((1 << s) - 1) ^ masks)]

    sharpe = _combination_sharpes(perf, s, combos)
    rows = np.arange(len(combos))
    best = np.argmax(sharpe, axis=1)  # first maximum: ties go to the lowest column
    oos = sharpe[complement]
    chosen = oos[rows, best][:, None]
    below = (oos < chosen).sum(axis=1)
    tied = (oos == chosen).sum(axis=1)  # counts the chosen config itself
    twice_rank = 2 * below + tied + 1  # 2ω, an integer: ω = below + (tied + 1) / 2
    rel = twice_rank / (2.0 * (n + 1))
    logits = np.log(rel / (1.0 - rel))
    logits.setflags(write=False)
    overfit = int((twice_rank <= n + 1).sum())  # λ ≤ 0 ⇔ ω̄ ≤ ½, decided in integers
    return Pbo(pbo=overfit / len(combos), n_splits=s, combinations=len(combos), tests=t, configs=n,
               logits=logits, why=None)


# ---------------------------------------------------------------------------- chance counts


@dataclass(frozen=True)
class ChanceCounts:
    """How many configs look good, next to how many would by luck alone (module docstring).

    The *_by_chance fields are expected counts (floats) if no config had an edge.
    """

    configs: int
    profitable: int
    profitable_by_chance: float
    significant: int
    significant_by_chance: float
    holdout_profitable: int
    significant_holdout_profitable: int
    alpha: float


def t_upper_tail(t: float, df: int) -> float:
    """P(T ≥ t) for Student's t with `df` ≥ 1 degrees of freedom (exact closed form).

    Abramowitz & Stegun 26.7.3–4: with θ = atan(t / √df), P(|T| ≤ t) is a finite series in
    sin θ and cos θ.
    """
    if df < 1:
        raise ValueError(f"df must be at least 1, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    c2 = c * c
    if df % 2:
        term, total = c, c if df > 1 else 0.0
        for k in range(3, df - 1, 2):
            term *= c2 * (k - 1) / k
            total += term
        inside = 2.0 / math.pi * (theta + s * total)
    else:
        term, total = 1.0, 1.0
        for k in range(2, df - 1, 2):
            term *= c2 * (k - 1) / k
            total += term
        inside = s * total
    tail = (1.0 - inside) / 2.0
    return tail if t >= 0 else 1.0 - tail


def chance_profitable(returns: np.ndarray, holdout_pnl: np.ndarray, alpha: float = 0.05) -> ChanceCounts:
    """Count profitable and significant configs and what chance alone would give (module docstring).

    `returns` is T × N validation returns (PnL / notional), NaN where a config did not run;
    `holdout_pnl` has one holdout PnL (USD) per config, NaN when it has none.
    """
    returns = np.asarray(returns, dtype=np.float64)
    holdout_pnl = np.asarray(holdout_pnl, dtype=np.float64)
    if returns.ndim != 2:
        raise ValueError(f"returns must be a 2-D matrix (tests × configs), got shape {returns.shape}")
    n_configs = returns.shape[1]
    if holdout_pnl.shape != (n_configs,):
        raise ValueError(f"holdout_pnl must have one value per config ({n_configs}), got shape {holdout_pnl.shape}")
    if np.isinf(returns).any() or np.isinf(holdout_pnl).any():
        raise ValueError("returns and holdout_pnl must be finite numbers or NaN (no result), not infinite")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")

    ran = ~np.isnan(returns)
    counts = ran.sum(axis=0)
    profitable = np.nansum(returns, axis=0) > 0.0
    significant = np.zeros(n_configs, dtype=bool)
    for j in np.flatnonzero(counts >= 2):
        r = returns[ran[:, j], j].tolist()
        sharpe = per_test_sharpe(r)
        if sharpe == 0.0:  # flat, or a mean of exactly 0: no evidence either way
            continue
        significant[j] = t_upper_tail(sharpe * math.sqrt(len(r)), len(r) - 1) <= alpha
    holdout_profitable = holdout_pnl > 0.0  # NaN compares False: no holdout, not profitable
    return ChanceCounts(
        configs=n_configs,
        profitable=int(profitable.sum()),
        profitable_by_chance=0.5 * int((counts >= 1).sum()),
        significant=int(significant.sum()),
        significant_by_chance=alpha * int((counts >= 2).sum()),
        holdout_profitable=int(holdout_profitable.sum()),
        significant_holdout_profitable=int((significant & holdout_profitable).sum()),
        alpha=alpha,
    )
