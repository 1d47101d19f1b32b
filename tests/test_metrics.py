"""zico_jax.metrics: rank statistics against small hand-worked cases."""

import math

import numpy as np
import pytest

from zico_jax.metrics import kendall_tau, rank_correlations, spearman_rho, top_k_precision


def test_perfect_and_reversed_order():
    truth = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert kendall_tau([1, 2, 3, 4, 5], truth) == pytest.approx(1.0)
    assert spearman_rho([0.1, 0.2, 0.3, 0.4, 0.5], truth) == pytest.approx(1.0)
    assert kendall_tau([5, 4, 3, 2, 1], truth) == pytest.approx(-1.0)
    assert spearman_rho([5, 4, 3, 2, 1], truth) == pytest.approx(-1.0)
    # Only ranks matter: a monotone transform of the scores changes nothing.
    assert kendall_tau(np.exp([1, 3, 2, 5, 4]), truth) == pytest.approx(kendall_tau([1, 3, 2, 5, 4], truth))


def test_kendall_tau_b_with_ties_by_hand():
    # x = [1, 2, 2, 3], y = [1, 3, 2, 4]. Of the 6 pairs: (2,3) is tied in x only; the other 5 are concordant.
    # tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)) = 5 / sqrt((6 - 1)(6 - 0)) = 5 / sqrt(30).
    assert kendall_tau([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(5 / math.sqrt(30))
    # One discordant pair: x = [1, 2, 3, 4], y = [1, 3, 2, 4] -> (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)


def test_spearman_by_hand():
    # Ranks x = [1, 2, 3, 4], y = [1, 3, 2, 4]: d^2 sums to 2, rho = 1 - 6*2 / (4*15) = 0.8.
    assert spearman_rho([10, 20, 30, 40], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_non_finite_pairs_dropped():
    scores = [1.0, np.nan, 2.0, 3.0, np.inf, 4.0]
    truth = [1.0, 100.0, 3.0, 2.0, 5.0, np.nan]
    # Kept: (1,1), (2,3), (3,2) -> one discordant pair among three: tau = 1/3.
    result = rank_correlations(scores, truth)
    assert result["n"] == 3
    assert result["kendall_tau"] == pytest.approx(1 / 3)
    assert kendall_tau(scores, truth) == pytest.approx(kendall_tau([1, 2, 3], [1, 3, 2]))
    assert spearman_rho(scores, truth) == pytest.approx(0.5)
    assert set(result) == {"n", "kendall_tau", "spearman_rho", "top10_precision"}


def test_top_k_precision_by_hand():
    truth = np.arange(10.0)                      # best: 9, 8, 7, ...
    scores = np.array([0, 1, 2, 3, 4, 5, 6, 9, 8, 7.5])
    # fraction 0.3 -> k = 3: proxy's top {7, 8, 9} = true top {7, 8, 9}.
    assert top_k_precision(scores, truth, 0.3) == 1.0
    scores = np.array([9, 1, 2, 3, 4, 5, 6, 0, 8, 7.5])
    # proxy's top 3 = {0, 8, 9}; true top 3 = {7, 8, 9}: 2 of 3 shared.
    assert top_k_precision(scores, truth, 0.3) == pytest.approx(2 / 3)
    # fraction 0.1 -> k = 1: proxy's best (index 0) is not the true best (index 9).
    assert top_k_precision(scores, truth) == 0.0
    # Very small fractions still use k = 1 (max(1, round(...))).
    assert top_k_precision(truth, truth, 0.01) == 1.0


def test_rank_correlations_top10_uses_tenth():
    truth = np.arange(20.0)
    scores = truth.copy()
    scores[[18, 0]] = scores[[0, 18]]            # swap the 2nd best with the worst: k = 2, top-2 shares 1
    result = rank_correlations(scores, truth)
    assert result["n"] == 20 and result["top10_precision"] == 0.5


def test_errors():
    with pytest.raises(ValueError, match="3 scores and 2 truth"):
        kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        rank_correlations([1.0, np.nan, 3.0], [1.0, 2.0, np.nan])
    with pytest.raises(ValueError, match="1-D"):
        spearman_rho([[1, 2]], [[1, 2]])
    with pytest.raises(ValueError, match="fraction"):
        top_k_precision([1, 2], [1, 2], 0.0)


def test_constant_input_is_nan_not_error():
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
