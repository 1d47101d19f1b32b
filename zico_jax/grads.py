"""Per-mini-batch gradients at initialisation: the measurement every gradient proxy reads.

ZiCo (and every gradient-based proxy here) needs the gradient of each mini-batch's loss separately, at the same
initial weights:

    g_n = d/dw  mean_{(x, y) in batch n}  loss(f_w(x), y),      n = 1..N

computed in ONE call over a stacked input xs of shape (N, B, H, W, C):

    jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, xs, ys)      # method="vmap" (default)

The model runs in train mode: BatchNorm normalises with each mini-batch's own statistics, exactly as the official
PyTorch code does after `network.train()`. Collections other than `params` (e.g. a flax `batch_stats`) are
passed through and their updates discarded: ZiCo never reads running statistics.

`method` picks how the N gradients are laid out inside the one call; the values are the same:
  * "vmap"   - one batched program; XLA turns the weight gradients into grouped convolutions.
  * "unroll" - the N grads unrolled in Python inside the jitted function; cheaper on XLA:CPU for N <= 4
    (`../shared/NOTES-jax-cpu.md`), and the shape the engine's CPU backend uses.
  * "map"    - `lax.map` over the batches (a loop inside the program; least memory).
`looped_grads` is the plain Python loop of N separate `jax.grad` calls, the reference the tests compare with.

Example:
    >>> loss = classification_loss(model.apply)
    >>> grads = jax.jit(per_batch_grads, static_argnums=0)(loss, params, xs, ys)   # leaves (N, *shape)
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from spaces.losses import cross_entropy

LossFn = Callable[[Any, jax.Array, jax.Array], jax.Array]
METHODS = ("vmap", "unroll", "map")


def classification_loss(
    apply_fn: Callable, other_variables: Mapping[str, Any] | None = None, loss=cross_entropy
) -> LossFn:
    """`loss(params, x, y)` for a flax `apply_fn`; extra collections (e.g. batch_stats) are read, never kept."""
    other = dict(other_variables or {})
    mutable = list(other)

    def loss_fn(params, x, y):
        variables = {"params": params, **other}
        if mutable:
            logits, _ = apply_fn(variables, x, mutable=mutable)
        else:
            logits = apply_fn(variables, x)
        return loss(logits, y)

    return loss_fn


def per_batch_grads(loss_fn: LossFn, params, xs: jax.Array, ys: jax.Array, method: str = "vmap"):
    """Gradients of `loss_fn` at `params` for each mini-batch: a params-shaped tree with leaves (N, *shape).

    Args:
      loss_fn: `loss_fn(params, x, y) -> scalar`, the mean loss of one mini-batch.
      xs: (N, B, ...) stacked mini-batches; ys: (N, B, ...) their targets.
      method: "vmap", "unroll" or "map" (see the module docstring); the numbers agree.
    """
    if xs.shape[0] != ys.shape[0]:
        raise ValueError(f"per_batch_grads: xs has {xs.shape[0]} mini-batches but ys has {ys.shape[0]}")
    grad = jax.grad(loss_fn)
    if method == "vmap":
        return jax.vmap(grad, in_axes=(None, 0, 0))(params, xs, ys)
    if method == "unroll":
        grads = [grad(params, xs[n], ys[n]) for n in range(xs.shape[0])]
        return jax.tree.map(lambda *g: jnp.stack(g), *grads)
    if method == "map":
        return jax.lax.map(lambda batch: grad(params, *batch), (xs, ys))
    raise ValueError(f"per_batch_grads: unknown method {method!r}; expected one of {', '.join(METHODS)}")


def looped_grads(loss_fn: LossFn, params, xs, ys):
    """Reference: N separate `jax.grad` calls in a Python loop (what the official code does), stacked."""
    grads = [jax.grad(loss_fn)(params, xs[n], ys[n]) for n in range(xs.shape[0])]
    return jax.tree.map(lambda *g: jnp.stack(g), *grads)


def kernel_leaves(tree, leaf_name: str = "kernel") -> dict[str, jax.Array]:
    """{module path: leaf} for every leaf called `leaf_name`: the Conv/Dense weights ZiCo counts.

    Paths are '/'-joined module names without the leaf name, e.g. 'cells_0/edge_3/nor_conv_3x3/conv'.
    """
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        keys = [getattr(k, "key", getattr(k, "name", None)) for k in path]
        if keys and keys[-1] == leaf_name:
            out["/".join(str(k) for k in keys[:-1])] = leaf
    return out
