"""Rank statistics between proxy scores and ground-truth accuracies (how training-free NAS proxies are judged).

All functions take two equally long 1-D sequences, `scores` (the proxy, higher = predicted better) and `truth`
(e.g. test accuracy), paired by position. Statistics come from scipy.stats:

  * kendall_tau  - Kendall's tau-b (scipy.stats.kendalltau's default), which corrects for ties; NAS-Bench-201 has
                   many tied accuracies (e.g. every disconnected cell scores 10.0 on CIFAR-10).
  * spearman_rho - Spearman's rank correlation (Pearson correlation of average ranks).
  * top_k_precision - of the k = max(1, round(fraction * n)) architectures the proxy ranks highest, the share that
                   are also among the k best by truth. Ties at the cut are broken by position (stable sort), so
                   the result does not depend on sort-algorithm details.

Non-finite values: a pair whose score OR truth is NaN or +-inf (a proxy that overflowed, an architecture missing
from the benchmark) is dropped before any statistic is computed; `rank_correlations` reports in `n` how many pairs
were used. Fewer than 2 usable pairs is a ValueError, as is a length mismatch. A constant input (no ranking
information) gives NaN for tau and rho, as scipy does.

Example:
    >>> rank_correlations([0.1, 0.5, 0.3, float("nan")], [60.0, 90.0, 70.0, 80.0])
    {'n': 3, 'kendall_tau': 1.0, 'spearman_rho': 1.0, 'top10_precision': 1.0}
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from etils import epy

with epy.lazy_imports():  # loaded on first use: scipy.stats takes ~0.5 s to import, and scoring never needs it
    from scipy import stats

from zico_jax.errors import InputError

ArrayLike = Sequence[float] | np.ndarray


def _finite_pairs(scores: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as float64 1-D arrays, restricted to the positions where both are finite."""
    s = np.asarray(scores, np.float64)
    t = np.asarray(truth, np.float64)
    if s.ndim != 1 or t.ndim != 1:
        raise InputError(f"scores and truth must be 1-D, got shapes {s.shape} and {t.shape}")
    if len(s) != len(t):
        raise InputError(f"scores and truth must have the same length, got {len(s)} scores and {len(t)} truth values")
    keep = np.isfinite(s) & np.isfinite(t)
    if keep.sum() < 2:
        raise InputError(f"need at least 2 pairs with finite score and truth, got {int(keep.sum())} of {len(s)}")
    return s[keep], t[keep]


def _statistic(fn, s: np.ndarray, t: np.ndarray) -> float:
    # scipy warns (and returns NaN) when an input is constant; NaN already says "undefined", keep the output quiet.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(fn(s, t).statistic)


def kendall_tau(scores: ArrayLike, truth: ArrayLike) -> float:
    """Kendall's tau-b between scores and truth over the finite pairs."""
    return _statistic(stats.kendalltau, *_finite_pairs(scores, truth))


def spearman_rho(scores: ArrayLike, truth: ArrayLike) -> float:
    """Spearman's rho between scores and truth over the finite pairs."""
    return _statistic(stats.spearmanr, *_finite_pairs(scores, truth))


def _top_k_precision(s: np.ndarray, t: np.ndarray, fraction: float) -> float:
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"fraction must be in (0, 1], got {fraction}")
    k = max(1, int(round(fraction * len(s))))
    # argsort of the negated values, stable: descending order, earlier position first among equals.
    top_s = np.argsort(-s, kind="stable")[:k]
    top_t = np.argsort(-t, kind="stable")[:k]
    return len(np.intersect1d(top_s, top_t)) / k


def top_k_precision(scores: ArrayLike, truth: ArrayLike, fraction: float = 0.1) -> float:
    """Share of the true top `fraction` among the proxy's top `fraction` (k = max(1, round(fraction * n)))."""
    return _top_k_precision(*_finite_pairs(scores, truth), fraction)


def rank_correlations(scores: ArrayLike, truth: ArrayLike) -> dict[str, float | int]:
    """{'n', 'kendall_tau', 'spearman_rho', 'top10_precision'} over the finite pairs; n = number of pairs used."""
    s, t = _finite_pairs(scores, truth)
    return {
        "n": int(len(s)),
        "kendall_tau": _statistic(stats.kendalltau, s, t),
        "spearman_rho": _statistic(stats.spearmanr, s, t),
        "top10_precision": _top_k_precision(s, t, 0.1),
    }
