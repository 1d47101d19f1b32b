"""The ZiCo statistic against an independent NumPy oracle on hand-made gradients."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from zico_jax.proxies import bias_penalty, zico_bc_from_terms, zico_layer_terms, zico_statistic


def numpy_zico(grads: dict, ddof=0) -> float:
    """Written from the paper's formula, separately from the library (loops, float64)."""
    total = 0.0
    for g in grads.values():
        g = np.asarray(g, np.float64).reshape(len(g), -1)
        s = 0.0
        for j in range(g.shape[1]):
            column = g[:, j]
            sd = np.std(column, ddof=ddof)
            if sd != 0:
                s += np.mean(np.abs(column)) / sd
        if s != 0:
            total += math.log(s)
    return total


@pytest.mark.parametrize("n", [2, 3])
def test_matches_numpy_oracle(x64, n):
    rng = np.random.default_rng(n)
    grads = {"a": rng.normal(size=(n, 3, 3, 2, 4)), "b": rng.normal(size=(n, 5, 7))}
    got = float(zico_statistic({k: jnp.asarray(v) for k, v in grads.items()}))
    assert got == pytest.approx(numpy_zico(grads), rel=1e-12)


def test_zero_std_elements_are_dropped_not_epsiloned(x64):
    g = np.array([[1.0, 2.0, -3.0, 0.5], [1.0, 4.0, -3.0, -0.5]])  # columns 0 and 2 have std exactly 0
    expected = math.log(3.0 / 1.0 + 0.5 / 0.5)  # only columns 1 and 3 count
    assert float(zico_statistic({"l": jnp.asarray(g)})) == pytest.approx(expected, rel=1e-12)
    assert numpy_zico({"l": g}) == pytest.approx(expected, rel=1e-12)


def test_all_zero_layer_is_skipped_not_log_zero(x64):
    rng = np.random.default_rng(1)
    live = rng.normal(size=(2, 10))
    terms = zico_layer_terms({"dead": jnp.zeros((2, 4, 4)), "live": jnp.asarray(live)})
    assert not bool(terms.counted["dead"]) and float(terms.terms["dead"]) == 0.0
    assert bool(terms.counted["live"])
    assert float(zico_statistic({"dead": jnp.zeros((2, 4, 4)), "live": jnp.asarray(live)})) == pytest.approx(
        numpy_zico({"live": live}), rel=1e-12)


def test_population_std_not_unbiased(x64):
    rng = np.random.default_rng(2)
    grads = {"a": rng.normal(size=(2, 50)), "b": rng.normal(size=(2, 30))}
    got = float(zico_statistic({k: jnp.asarray(v) for k, v in grads.items()}))
    # ddof=1 would shift every layer by log(sqrt 2) at N=2 (std grows by sqrt 2); ours must be the ddof=0 value.
    assert got == pytest.approx(numpy_zico(grads, ddof=1) + 2 * math.log(math.sqrt(2)), rel=1e-12)


def test_cumulative_reads_running_sums(x64):
    rng = np.random.default_rng(3)
    g = rng.normal(size=(3, 20))
    got = float(zico_statistic({"l": jnp.asarray(g)}, cumulative=True))
    assert got == pytest.approx(numpy_zico({"l": np.cumsum(g, axis=0)}), rel=1e-12)
    assert got != pytest.approx(numpy_zico({"l": g}), rel=1e-3)


def test_single_batch_is_rejected():
    with pytest.raises(ValueError, match="layer 'x'.*N >= 2"):
        zico_layer_terms({"x": jnp.ones((1, 3))})


def test_bias_correction(x64):
    rng = np.random.default_rng(4)
    grads = {"conv": jnp.asarray(rng.normal(size=(2, 3, 3, 4, 8))), "dead": jnp.zeros((2, 8, 10)),
             "fc": jnp.asarray(rng.normal(size=(2, 8, 10)))}
    shapes = {"conv": (16, 16, 8), "dead": (1, 1, 10), "fc": (1, 1, 10)}
    terms = zico_layer_terms(grads)
    zico = float(zico_statistic(grads))
    assert float(zico_bc_from_terms(terms, shapes, beta=0.0)) == zico
    penalty = math.log(16 * 16 / math.sqrt(8)) + math.log(1 / math.sqrt(10))  # the dead layer pays nothing
    assert float(zico_bc_from_terms(terms, shapes, beta=2.0)) == pytest.approx(zico - 2 * penalty, rel=1e-12)
    assert bias_penalty((8, 8, 64)) == pytest.approx(math.log(64 / 8))
    with pytest.raises(KeyError, match="'fc'"):
        zico_bc_from_terms(terms, {"conv": (16, 16, 8), "dead": (1, 1, 10)})
