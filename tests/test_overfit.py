"""Overfitting: PBO by CSCV (against a hand case and a slow reference), chance counts, Student's t tail."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from engine.overfit import ChanceCounts, Pbo, chance_profitable, pbo_cscv, t_upper_tail

# ---------------------------------------------------------------------------- slow reference


def ref_sharpe(r: list[float]) -> float:
    """mean / sample sd; 0 when the population variance is ≤ (1e-12 · max |r|)²."""
    n = len(r)
    mean = math.fsum(r) / n
    m2 = math.fsum((x - mean) ** 2 for x in r) / n
    if m2 <= (1e-12 * max(abs(x) for x in r)) ** 2:
        return 0.0
    return mean / math.sqrt(m2 * n / (n - 1))


def ref_pbo(perf: np.ndarray, s: int) -> tuple[float, list[float]]:
    """CSCV straight from the paper: one combination at a time, rows listed, ranks counted."""
    t, n = perf.shape
    blocks = [list(b) for b in np.array_split(np.arange(t), s)]
    logits = []
    for j in itertools.combinations(range(s), s // 2):
        ins = [row for b in j for row in blocks[b]]
        oos = [row for b in range(s) if b not in j for row in blocks[b]]
        sr_in = [ref_sharpe([float(perf[i, c]) for i in ins]) for c in range(n)]
        sr_out = [ref_sharpe([float(perf[i, c]) for i in oos]) for c in range(n)]
        best = sr_in.index(max(sr_in))
        below = sum(v < sr_out[best] for v in sr_out)
        tied = sum(v == sr_out[best] for v in sr_out)
        rel = (below + (tied + 1) / 2) / (n + 1)
        logits.append(math.log(rel / (1 - rel)))
    return sum(lam <= 0 for lam in logits) / len(logits), logits


# ---------------------------------------------------------------------------- PBO


def test_hand_case_pins_the_sd_zero_tie_and_rank_rules() -> None:
    # 4 tests × 3 configs, S = 4: one row per block, 6 combinations. Config 0 never trades.
    perf = np.array([[0.0, 1.0, 2.0],
                     [0.0, 3.0, 2.0],
                     [0.0, -1.0, 1.0],
                     [0.0, 1.0, 1.0]])
    # SR of two returns a, b is (a + b) / (√2 |a − b|), 0 when a = b.
    # J={0,1}: IS (0, √2, 0 [2,2 constant]) → n*=1; OOS (0, 0, 0) all tied → ω=2, ω̄=½, λ=0 (counts)
    # J={0,2}, {0,3}, {1,2}, {1,3}: n*=2 (SR 3/√2) and best OOS too → ω=3, λ=ln 3
    # J={2,3}: IS all 0 → n*=0 (lowest column); OOS (0, √2, 0): tied with config 2 → ω=1.5, λ=ln 0.6
    result = pbo_cscv(perf, n_splits=4)
    assert (result.n_splits, result.combinations, result.tests, result.configs) == (4, 6, 4, 3)
    assert result.why is None
    assert result.pbo == pytest.approx(2 / 6, abs=1e-15)
    ln3 = math.log(3.0)
    assert result.logits.tolist() == pytest.approx([0.0, ln3, ln3, ln3, ln3, math.log(0.6)], abs=1e-12)
    assert result.logits[0] == 0.0
    assert result.median_logit == pytest.approx(ln3)


@pytest.mark.parametrize("t,n,n_splits,seed", [(37, 6, 8, 0), (13, 5, 16, 1), (5, 4, 16, 2), (24, 9, 6, 3)])
def test_fast_pbo_matches_the_slow_reference(t: int, n: int, n_splits: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    perf = rng.normal(0.0, 0.01, size=(t, n))
    perf[:, 0] = 0.0  # never trades
    perf[:, 1] = perf[:, 2]  # the same config twice: exact ties every time
    perf[:, 3] = 0.003  # constant non-zero return: sd 0 → SR 0
    perf[rng.random((t, n)) < 0.2] = 0.0  # tests without trades
    result = pbo_cscv(perf, n_splits=n_splits)
    expected_pbo, expected_logits = ref_pbo(perf, result.n_splits)
    assert result.pbo == expected_pbo
    assert result.logits.tolist() == pytest.approx(expected_logits, abs=1e-9)


def test_pure_noise_gives_pbo_near_one_half() -> None:
    # One noise matrix's PBO spreads widely (about 0.1..0.95: the 12,870 combinations share
    # the same rows), so the mean over 20 seeds is what sits near ½.
    pbos = [pbo_cscv(np.random.default_rng(seed).normal(size=(200, 30))).pbo for seed in range(20)]
    assert 0.40 <= float(np.mean(pbos)) <= 0.63
    assert all(0.0 < p < 1.0 for p in pbos)


def test_a_planted_edge_gives_pbo_near_zero() -> None:
    pbos, medians = [], []
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        perf = rng.normal(size=(200, 30))
        perf[:, rng.integers(30)] += 0.5  # half a sd per test above the others' zero mean
        result = pbo_cscv(perf)
        pbos.append(result.pbo)
        medians.append(result.median_logit)
    assert float(np.mean(pbos)) < 0.05
    assert float(np.median(pbos)) < 0.01
    assert min(medians) > math.log(29 / 2)  # the in-sample winner is typically the best of 30 out of sample


def test_sixteen_splits_give_12870_read_only_logits() -> None:
    result = pbo_cscv(np.random.default_rng(5).normal(size=(64, 4)))
    assert (result.n_splits, result.combinations, result.logits.shape) == (16, 12870, (12870,))
    assert not result.logits.flags.writeable


@pytest.mark.parametrize("t,s,combinations", [(4, 4, 6), (7, 6, 20), (9, 8, 70), (15, 14, 3432)])
def test_n_splits_shrinks_to_the_largest_even_number_of_tests(t: int, s: int, combinations: int) -> None:
    result = pbo_cscv(np.random.default_rng(t).normal(size=(t, 3)), n_splits=16)
    assert (result.n_splits, result.combinations, result.logits.shape) == (s, combinations, (combinations,))


@pytest.mark.parametrize("shape,words", [((3, 10), "4 tests"), ((0, 10), "4 tests"),
                                         ((50, 1), "2 configs"), ((50, 0), "2 configs")])
def test_pbo_is_undefined_with_fewer_than_four_tests_or_two_configs(shape: tuple[int, int], words: str) -> None:
    result = pbo_cscv(np.ones(shape))
    assert isinstance(result, Pbo)
    assert result.pbo is None and result.median_logit is None
    assert words in result.why
    assert (result.tests, result.configs, result.combinations, result.logits.size) == (*shape, 0, 0)


def test_bad_input_is_refused_with_where_it_is() -> None:
    perf = np.zeros((8, 3))
    perf[5, 2] = np.nan
    with pytest.raises(ValueError, match="row 5, config column 2"):
        pbo_cscv(perf)
    with pytest.raises(ValueError, match="even"):
        pbo_cscv(np.zeros((8, 3)), n_splits=5)
    with pytest.raises(ValueError, match="2-D"):
        pbo_cscv(np.zeros(8))


# ---------------------------------------------------------------------------- Student's t


@pytest.mark.parametrize("df,t95", [(1, 6.313751515), (2, 2.919985580), (3, 2.353363435), (4, 2.131846786),
                                    (7, 1.894578605), (10, 1.812461123), (30, 1.697260887), (200, 1.652508101)])
def test_student_t_tail_matches_the_table_quantiles(df: int, t95: float) -> None:
    assert t_upper_tail(t95, df) == pytest.approx(0.05, abs=1e-8)
    assert t_upper_tail(-t95, df) == pytest.approx(0.95, abs=1e-8)
    assert t_upper_tail(0.0, df) == pytest.approx(0.5, abs=1e-15)


# ---------------------------------------------------------------------------- chance counts


def test_chance_counts_on_a_constructed_matrix() -> None:
    nan = np.nan
    returns = np.array([
        # c0 never trades, c1 steady gains, c2 noise with a small plus, c3 losses,
        # c4 one test only, c5 never ran, c6 four strong tests, c7 the same gain every time
        [0.0, 0.01, 0.01, -0.01, 0.03, nan, 0.02, 0.01],
        [0.0, 0.02, -0.01, -0.02, nan, nan, 0.03, 0.01],
        [0.0, 0.01, 0.02, -0.01, nan, nan, 0.02, 0.01],
        [0.0, 0.02, -0.02, -0.02, nan, nan, 0.03, 0.01],
        [0.0, 0.01, 0.005, -0.01, nan, nan, nan, 0.01],
        [0.0, 0.02, 0.0, -0.02, nan, nan, nan, 0.01],
    ])
    holdout = np.array([0.0, 5.0, -3.0, nan, 2.0, nan, -1.0, 0.0])
    counts = chance_profitable(returns, holdout)
    assert counts == ChanceCounts(
        configs=8,
        profitable=5,  # c1 c2 c4 c6 c7
        profitable_by_chance=3.5,  # ½ × the 7 configs with a result (not c5)
        significant=2,  # c1 (t ≈ 6.7, 5 df) and c6 (t ≈ 8.7, 3 df); c7 has sd 0
        significant_by_chance=pytest.approx(0.3),  # 0.05 × the 6 configs with ≥ 2 results
        holdout_profitable=2,  # c1 c4 (0 is not a profit, NaN is no result)
        significant_holdout_profitable=1,  # c1
        alpha=0.05,
    )


@pytest.mark.parametrize("t,significant", [(2.14, True), (2.12, False)])
def test_significance_uses_students_t_not_the_normal(t: float, significant: bool) -> None:
    # 5 returns with sample sd 1 and mean t / √5: t-statistic t on 4 df (critical 2.1318;
    # the normal's 1.645 would call both significant)
    z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) / math.sqrt(2.5)
    returns = (t / math.sqrt(5.0) + z)[:, None]
    counts = chance_profitable(returns, np.array([1.0]))
    assert counts.significant == int(significant)
    assert counts.significant_holdout_profitable == int(significant)
    assert chance_profitable(returns, np.array([1.0]), alpha=0.01).significant == 0


def test_chance_counts_refuse_mismatched_holdout() -> None:
    with pytest.raises(ValueError, match="one value per config"):
        chance_profitable(np.zeros((5, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="alpha"):
        chance_profitable(np.zeros((5, 3)), np.zeros(3), alpha=0.0)
