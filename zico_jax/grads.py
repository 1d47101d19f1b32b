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
    (XLA:CPU runs the vmapped weight gradients as slower grouped convolutions), and the shape the engine's CPU
    backend uses.
  * "map"    - `lax.map` over the batches (a loop inside the program; least memory).
`looped_grads` is the plain Python loop of N separate `jax.grad` calls, the reference the tests compare with.

Per-sample gradients (`per_sample_grads`, ZiCo's `gradients="per_sample"` option; the default stays
"per_batch", the official code's N mini-batch gradients): the gradient of EACH SAMPLE's loss, the quantity of
the ZiCo paper's theory (Sec. 3), by `jax.vmap(jax.grad(sample_loss))` over the samples of each mini-batch.
BatchNorm: every `TrainBatchNorm` normalises a sample with the batch mean and biased variance of the sample's
MINI-BATCH, held fixed. Pass 1 (`bn_statistics`) runs the mini-batch forward and records, through a flax method
interceptor, each BN's input mean/variance over (B, H, W) (`stop_gradient`); pass 2 differentiates each sample's
loss alone with those statistics supplied as the BN's `batch_stats` collection (its normalise-with-given-statistics
mode), so they are constants. Why: statistics of a batch of one sample are degenerate (variance 0 wherever the
map is 1x1, e.g. before the classifier, and instance normalisation elsewhere: a different network from the one
the per-batch gradients see), while differentiating through the mini-batch statistics would couple the samples
(sample i's "gradient" would carry terms from every other sample of its mini-batch through mu_B and var_B). The
forward values are exactly the train-mode ones. Layout: leaves (N * B, *shape), samples of mini-batch 0 first.

Example:
    >>> loss = classification_loss(model.apply)
    >>> grads = jax.jit(per_batch_grads, static_argnums=0)(loss, params, xs, ys)   # leaves (N, *shape)
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from zico_jax.errors import InputError
from zico_jax.nn.layers import TrainBatchNorm
from zico_jax.nn.losses import cross_entropy

LossFn = Callable[[Any, jax.Array, jax.Array], jax.Array]
METHODS = ("vmap", "unroll", "map")
GRADIENTS = ("per_batch", "per_sample")


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
        raise InputError(f"per_batch_grads: xs has {xs.shape[0]} mini-batches but ys has {ys.shape[0]}")
    grad = jax.grad(loss_fn)
    if method == "vmap":
        return jax.vmap(grad, in_axes=(None, 0, 0))(params, xs, ys)
    if method == "unroll":
        grads = [grad(params, xs[n], ys[n]) for n in range(xs.shape[0])]
        return jax.tree.map(lambda *g: jnp.stack(g), *grads)
    if method == "map":
        return jax.lax.map(lambda batch: grad(params, *batch), (xs, ys))
    raise InputError(f"per_batch_grads: unknown method {method!r}; expected one of {', '.join(METHODS)}")


def bn_statistics(apply_fn: Callable, variables: Mapping[str, Any], *args, **kwargs) -> dict:
    """Batch statistics of every `TrainBatchNorm` in one forward pass `apply_fn(variables, *args, **kwargs)`.

    Returns a `batch_stats`-shaped nested dict {module path...: {"mean": mu_B, "var": var_B}}: the mean and the
    BIASED variance (ddof=0) of the BN's input over all axes but the last, exactly what train-mode BN normalises
    with, under `stop_gradient`. Applied as ``apply_fn({"params": p, "batch_stats": stats}, x)``, a
    `TrainBatchNorm` normalises with them (see `zico_jax.nn.layers.TrainBatchNorm`), so the output equals the train-mode
    output on the mini-batch the statistics came from. The dict is a return value (not a side channel), so this
    works under `jit` and `vmap`. Other BatchNorm implementations (flax `nn.BatchNorm`, the masked or tiled BNs of
    some spaces) cannot take fixed statistics: NotImplementedError. A BN module applied twice: ValueError.
    """
    records: dict[tuple[str, ...], tuple[jax.Array, jax.Array]] = {}

    def interceptor(next_fun, f_args, f_kwargs, context):
        mod = context.module
        if context.method_name != "__call__":
            return next_fun(*f_args, **f_kwargs)
        if isinstance(mod, TrainBatchNorm):
            path = tuple(mod.scope.path)
            if path in records:
                raise InputError(f"bn_statistics: BatchNorm {'/'.join(path)!r} is applied more than once")
            x = f_args[0]
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axis=axes)
            var = jnp.mean(jnp.square(x - mean), axis=axes)
            records[path] = (jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var))
        elif isinstance(mod, nn.BatchNorm) or "batchnorm" in type(mod).__name__.lower() or type(mod).__name__ == "BN":
            raise NotImplementedError(f"per-sample gradients: {type(mod).__name__} at {'/'.join(mod.scope.path)!r} "
                                      "cannot take fixed batch statistics; only zico_jax.nn.layers.TrainBatchNorm can")
        return next_fun(*f_args, **f_kwargs)

    with nn.intercept_methods(interceptor):
        apply_fn(variables, *args, **kwargs)
    flat = {path + (name,): value for path, stat in records.items() for name, value in zip(("mean", "var"), stat)}
    return traverse_util.unflatten_dict(flat)


def per_sample_grads(
    apply_fn: Callable, params, xs: jax.Array, ys: jax.Array, loss=cross_entropy,
    other_variables: Mapping[str, Any] | None = None, method: str = "unroll",
):
    """Per-sample gradients at `params`: a params-shaped tree with leaves (N * B, *shape).

    Row n * B + i is d/dw loss(f_w(x_ni), y_ni), the loss of sample i of mini-batch n alone, with every BatchNorm
    normalising by mini-batch n's statistics held fixed (see the module docstring and `bn_statistics`).

    Args:
      apply_fn: a flax `apply`; called as `apply_fn({"params": p, "batch_stats": stats}, x)`.
      xs: (N, B, ...) stacked mini-batches; ys: (N, B, ...) their targets; `loss(outputs, targets)` on a batch
        of one sample is that sample's loss.
      other_variables: extra collections (not `batch_stats`, which this function supplies), passed through.
      method: how the N mini-batches are looped ("unroll", "vmap" or "map"); samples are always `vmap`ped.
    """
    if xs.shape[:2] != ys.shape[:2]:
        raise InputError(f"per_sample_grads: xs {xs.shape} and ys {ys.shape} disagree on (N, B)")
    other = {k: v for k, v in dict(other_variables or {}).items() if k != "batch_stats"}

    def one_batch(x, y):
        stats = bn_statistics(apply_fn, {"params": params, **other}, x)

        def sample_loss(p, xi, yi):
            return loss(apply_fn({"params": p, "batch_stats": stats, **other}, xi[None]), yi[None])

        return jax.vmap(jax.grad(sample_loss), in_axes=(None, 0, 0))(params, x, y)

    if method == "vmap":
        grads = jax.vmap(one_batch)(xs, ys)
    elif method == "unroll":
        grads = jax.tree.map(lambda *g: jnp.stack(g), *[one_batch(xs[n], ys[n]) for n in range(xs.shape[0])])
    elif method == "map":
        grads = jax.lax.map(lambda batch: one_batch(*batch), (xs, ys))
    else:
        raise InputError(f"per_sample_grads: unknown method {method!r}; expected one of {', '.join(METHODS)}")
    return jax.tree.map(lambda g: g.reshape(-1, *g.shape[2:]), grads)


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
