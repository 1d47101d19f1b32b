"""Per-batch gradients: vmap(grad) in one call equals a Python loop of grads, whatever the layout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_batches

from zico_jax.grads import classification_loss, kernel_leaves, looped_grads, per_batch_grads
from zico_jax.spaces import get_space

ARCH = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def tiny():
    space = get_space("nats_tss", C=4, N=1, image_size=8)
    model = space.model(space.parse(ARCH), dtype=jnp.float64)
    return space, model


@pytest.mark.parametrize("method", ["vmap", "unroll", "map"])
def test_one_call_equals_python_loop(x64, tiny, method):
    space, model = tiny
    xs, ys = tiny_batches(num_batches=3, dtype=np.float64)
    params = model.init(jax.random.key(0), xs[0])["params"]
    loss = classification_loss(model.apply)
    fast = jax.jit(per_batch_grads, static_argnums=(0, 4))(loss, params, xs, ys, method)
    slow = looped_grads(loss, params, xs, ys)
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(fast)[0], jax.tree.leaves(slow)):
        assert a.shape[0] == 3, path
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14, err_msg=str(path))
    # the mini-batches really differ: gradients are per batch, not one gradient repeated
    k = kernel_leaves(fast)["stem/conv"]
    assert not np.allclose(k[0], k[1])


def test_batchnorm_uses_each_batch_statistics(x64, tiny):
    space, model = tiny
    xs, ys = tiny_batches(dtype=np.float64)
    params = model.init(jax.random.key(0), xs[0])["params"]
    shifted = xs.copy()
    shifted[1] = xs[1] * 3.0  # rescale batch 1 alone: the stem conv is linear and train-mode BN undoes the scale
    loss = classification_loss(model.apply)
    a = per_batch_grads(loss, params, jnp.asarray(xs), jnp.asarray(ys))
    b = per_batch_grads(loss, params, jnp.asarray(shifted), jnp.asarray(ys))
    np.testing.assert_allclose(kernel_leaves(a)["head/classifier"][1], kernel_leaves(b)["head/classifier"][1],
                               rtol=1e-3, atol=1e-6)  # up to BN's eps
    # ...while batch 0, untouched, is unaffected by batch 1 at all
    np.testing.assert_array_equal(kernel_leaves(a)["head/classifier"][0], kernel_leaves(b)["head/classifier"][0])


def test_mismatched_batches_are_rejected(tiny):
    space, model = tiny
    xs, ys = tiny_batches()
    with pytest.raises(ValueError, match="3 mini-batches but ys has 2"):
        per_batch_grads(lambda p, x, y: 0.0, {}, np.concatenate([xs, xs[:1]]), ys)
    with pytest.raises(ValueError, match="unknown method 'scan'"):
        per_batch_grads(lambda p, x, y: 0.0, {}, xs, ys, method="scan")
