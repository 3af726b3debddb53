"""Deflated Sharpe ratio of a config's per-test returns, against the best of the configs tried.

Bailey & López de Prado, 2014, "The Deflated Sharpe Ratio: Correcting for Selection Bias,
Backtest Overfitting and Non-Normality". In a trader's words: the probability that the
config's true Sharpe is above what the best of N random configs would show by luck alone.
Trying many configs and keeping the best inflates its Sharpe; the DSR asks how much of it
survives that selection and the fat tails of few test results.

    SR0 = sqrt(V) · ((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)))         (SR0 = 0 when N = 1)
    DSR = Φ( (SR̂ − SR0)·sqrt(T − 1) / sqrt(1 − γ3·SR̂ + (γ4 − 1)/4 · SR̂²) )

- SR̂: the config's sharpe_per_test; T: its number of tests (returns).
- γ3, γ4: skewness and (non-excess, normal = 3) kurtosis of its per-test returns, moment
  estimators (population central moments m3 / m2^1.5, m4 / m2²).
- N: the number of configs tried in the session (every config in the rows).
- V: sample variance across configs of their SR̂, over configs with at least 2 tests;
  0 when fewer than 2 such configs.
- γ = 0.5772156649 (Euler–Mascheroni); Φ, Φ⁻¹ the standard normal cdf and its inverse.
- SR0 is the Sharpe the best of N luck-only configs is expected to show (`expected_max_sharpe`).

Guards: the term under the square root is the variance of the SR̂ estimate (× T − 1). With
moments estimated from the same returns it cannot be negative (γ4 − 1 ≥ γ3²), but it can
reach 0, and caller-given moments can make it negative; it is floored at
`MIN_SR_VARIANCE` (1e-6), so the DSR then saturates near 0 or 1 by the sign of SR̂ − SR0.
Returns with sd 0 (e.g. a config that never traded) have SR̂ = 0, and are taken as normal
(γ3 = 0, γ4 = 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from engine.metrics import per_test_sharpe, return_moments

EULER_GAMMA = 0.5772156649
# Floor for the variance term of the DSR denominator (see the module docstring, "Guards").
MIN_SR_VARIANCE = 1e-6

_NORMAL = NormalDist()


def expected_max_sharpe(n_trials: int, var_trials: float) -> float:
    """SR0: the Sharpe the best of `n_trials` luck-only configs is expected to show (0 for 1 trial).

    `var_trials` is the variance across configs of their Sharpe estimates (same units as
    the Sharpe squared: here per test, not annualised).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if not (var_trials >= 0.0 and math.isfinite(var_trials)):
        raise ValueError(f"var_trials must be a finite number ≥ 0, got {var_trials}")
    if n_trials == 1:
        return 0.0  # one config is not a selection: nothing to deflate (and Φ⁻¹(0) is −∞)
    z_n = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z_ne = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(var_trials) * ((1.0 - EULER_GAMMA) * z_n + EULER_GAMMA * z_ne)


def deflated_sharpe(sr: float, t: int, skew: float, kurt: float, n_trials: int, var_trials: float) -> float:
    """Probability in [0, 1] that the true Sharpe beats the best of `n_trials` by luck (module docstring).

    `sr` is the non-annualised Sharpe of `t` returns, `skew` their skewness, `kurt` their
    non-excess kurtosis (3 for normal returns).
    """
    if t < 2:
        raise ValueError(f"t must be at least 2 returns, got {t}")
    for name, value in (("sr", sr), ("skew", skew), ("kurt", kurt)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    sr0 = expected_max_sharpe(n_trials, var_trials)
    sr_variance = max(1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr, MIN_SR_VARIANCE)
    return _NORMAL.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(sr_variance))


def return_stats(returns: Sequence[float]) -> tuple[float, float, float]:
    """(per-test Sharpe, skewness, kurtosis) of returns (engine.metrics.per_test_sharpe); (0, 0, 3) when flat."""
    moments = return_moments(returns)
    if moments is None:
        return 0.0, 0.0, 3.0
    _, m2, m3, m4 = moments
    return per_test_sharpe(returns), m3 / m2**1.5, m4 / (m2 * m2)
