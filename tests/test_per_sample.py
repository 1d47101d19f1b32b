"""ZiCo on per-sample gradients (`gradients="per_sample"`) against a looped reference, in float64.

Reference, independent of the implementation's two passes, `batch_stats` mode and `vmap`: for each mini-batch,
an eager train-mode forward records every BatchNorm's input and its mean / biased variance are computed in NumPy;
then for each sample, in a Python loop, `jax.grad` of that one sample's loss with every BatchNorm replaced (by a
method interceptor) by (x - mean) / sqrt(var + eps) * scale + bias with the NumPy statistics as constants; ZiCo
over the N * B stacked gradients by a NumPy implementation. Agreement to 1e-8 relative.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_batches

import zico_jax
from zico_jax.engine import Engine
from zico_jax.grads import bn_statistics, kernel_leaves, per_sample_grads
from zico_jax.nn.layers import TrainBatchNorm
from zico_jax.nn.losses import cross_entropy
from zico_jax.proxies.zico import zico

GENOTYPES = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|",
)
REL = 1e-8


def _setup(k):
    space = zico_jax.get_space("nats_tss", C=4, N=1, image_size=8)
    g = space.parse(GENOTYPES[k])
    model = space.model(g, dtype=jnp.float64)
    xs, ys = tiny_batches(2, 4, 8, seed=k, dtype=np.float64)
    params = model.init(jax.random.key(k), jnp.zeros((1, 8, 8, 3), jnp.float64))["params"]
    return space, g, model, params, jnp.asarray(xs), jnp.asarray(ys)


def _reference_grads(model, params, xs, ys):
    """{kernel path: (N * B, size)} per-sample gradients, looped, statistics from NumPy held fixed."""
    rows = []
    for n in range(xs.shape[0]):
        inputs = {}

        def record(next_fun, args, kwargs, context, inputs=inputs):
            if isinstance(context.module, TrainBatchNorm) and context.method_name == "__call__":
                inputs["/".join(context.module.scope.path)] = np.asarray(args[0])
            return next_fun(*args, **kwargs)

        with jax.disable_jit(), nn.intercept_methods(record):
            model.apply({"params": params}, xs[n])
        stats = {p: (v.mean(axis=(0, 1, 2)), v.var(axis=(0, 1, 2))) for p, v in inputs.items()}

        def fixed(next_fun, args, kwargs, context, stats=stats):
            mod = context.module
            if isinstance(mod, TrainBatchNorm) and context.method_name == "__call__":
                mean, var = stats["/".join(mod.scope.path)]
                scale, bias = mod.variables["params"]["scale"], mod.variables["params"]["bias"]
                return (args[0] - mean) / np.sqrt(var + mod.eps) * scale + bias
            return next_fun(*args, **kwargs)

        for i in range(xs.shape[1]):
            def sample_loss(p, n=n, i=i, fixed=fixed):
                with nn.intercept_methods(fixed):
                    return cross_entropy(model.apply({"params": p}, xs[n, i:i + 1]), ys[n, i:i + 1])

            rows.append({k: np.asarray(v).ravel() for k, v in kernel_leaves(jax.grad(sample_loss)(params)).items()})
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def _numpy_zico(grads):
    total = 0.0
    for g in grads.values():
        std, mean_abs = g.std(axis=0), np.abs(g).mean(axis=0)
        s = np.sum(mean_abs[std != 0] / std[std != 0])
        if s > 0:
            total += np.log(s)
    return total


@pytest.mark.parametrize("k", range(len(GENOTYPES)))
def test_per_sample_zico_matches_looped_reference(x64, k):
    _, _, model, params, xs, ys = _setup(k)
    ref = _reference_grads(model, params, xs, ys)
    got = jax.jit(lambda p: kernel_leaves(per_sample_grads(model.apply, p, xs, ys)))(params)
    assert set(got) == set(ref)
    for path, g in got.items():
        assert g.shape[0] == 8
        np.testing.assert_allclose(np.asarray(g).reshape(8, -1), ref[path], rtol=REL, atol=1e-14, err_msg=path)
    expected = _numpy_zico(ref)
    assert float(zico(model, {"params": params}, xs, ys, gradients="per_sample")) == pytest.approx(expected, rel=REL)
    # the default is the official per-mini-batch statistic, a different number
    assert float(zico(model, {"params": params}, xs, ys)) != pytest.approx(expected, rel=1e-3)


def test_engine_tape_per_sample_matches_generic(x64):
    space, g, _, _, xs, ys = _setup(0)
    engine = Engine(space, xs, ys, proxies=("zico",), gradients="per_sample")
    assert engine.backend == "tape"
    got = engine.score_one(g).scores["zico"]
    model = space.model(g, dtype=jnp.float64)
    params = model.init(engine.candidate_key(g), jnp.zeros((1, 8, 8, 3), jnp.float64))["params"]
    expected = _numpy_zico(_reference_grads(model, params, xs, ys))
    assert got == pytest.approx(expected, rel=REL)
    per_batch = Engine(space, xs, ys, proxies=("zico",)).score_one(g).scores["zico"]
    assert per_batch != pytest.approx(got, rel=1e-3)


def test_option_errors(x64):
    space, g, model, params, xs, ys = _setup(0)
    with pytest.raises(ValueError, match="tape backend only"):
        Engine(space, xs, ys, backend="supernet", gradients="per_sample")
    with pytest.raises(ValueError, match="gradients"):
        Engine(space, xs, ys, gradients="per_example")
    with pytest.raises(ValueError, match="cumulative"):
        zico(model, {"params": params}, xs, ys, gradients="per_sample", cumulative=True)
    with pytest.raises(NotImplementedError, match="BatchNorm"):
        bn_statistics(nn.BatchNorm(use_running_average=False).apply,
                        nn.BatchNorm(use_running_average=False).init(jax.random.key(0), xs[0]), xs[0])
