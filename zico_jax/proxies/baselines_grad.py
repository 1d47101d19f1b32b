"""Gradient- and weight-based baseline proxies: grad_norm, snip, grasp, fisher, plain, l2_norm, synflow.

Each follows the definition of zero-cost-nas (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS",
ICLR 2021; SamsungLabs/zero-cost-nas, `foresight/pruners/measures/*.py`, copied into NASLib as
`naslib/predictors/utils/pruners/measures/*.py`), which is what the NAS-Bench-201 correlation tables of the
zero-cost literature (ZiCo included) report. Common to all, as there:

  * parameters read: the WEIGHTS of every Conv/Dense layer (flax leaves named `kernel`, `BaselineNetwork.kernels`)
    - no biases, no BatchNorm scale/shift; every such layer counts (stem, reduction blocks, shortcut 1x1 convs,
    classifier);
  * network: the candidate at the given `params`, BatchNorm in TRAIN mode (each batch normalised with its own
    statistics; running statistics never read) unless stated otherwise;
  * loss L: `net.loss(logits, y)`, the MEAN cross-entropy over the batch (`F.cross_entropy`);
  * one batch, `split_data=1`: the gradient of the whole batch (x, y) at once;
  * reduction: the per-weight (or per-channel) saliency summed over all elements of all counted layers
    (zero-cost-nas `sum_arr`); natural units, no log.

Every function is pure JAX: `fn(net, params, x, y, key) -> scalar array`; `net` is static (hashable), so
`jax.jit(fn, static_argnums=0)` compiles one program per network. `key` is unused by these proxies.

Example:
    >>> net = baseline_network(space, genotype)
    >>> float(snip(net, params, x, y, None))
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from zico_jax.proxies.baselines_network import BaselineNetwork


def _loss_and_grads(net: BaselineNetwork, params, x, y):
    return jax.value_and_grad(lambda p: net.loss(net.apply(p, x), y))(params)


def _sum(leaves) -> jax.Array:
    return sum((jnp.sum(v) for v in leaves), jnp.zeros(()))


def grad_norm(net: BaselineNetwork, params, x, y, key=None) -> jax.Array:
    """grad_norm = sum_l || dL/dW_l ||_2   (Frobenius norm of each layer's weight gradient, summed).

    BN: train. Inputs: the data batch (x, y). Parameters: Conv/Dense weights. Sign: non-negative.
    Reference: zero-cost-nas `grad_norm.py` (`get_grad_norm_arr`: `l.weight.grad.norm()` per Conv2d/Linear).
    """
    _, g = _loss_and_grads(net, params, x, y)
    return _sum(jnp.sqrt(jnp.sum(jnp.square(v))) for v in net.kernels(g).values())


def snip(net: BaselineNetwork, params, x, y, key=None) -> jax.Array:
    """snip = sum over weights | W ⊙ dL/dW |   (connection sensitivity, Lee et al., ICLR 2019).

    SNIP's saliency is |dL/dc| for a multiplicative mask c = 1 on each weight, which equals |W ⊙ dL/dW|.
    BN: train. Inputs: the data batch. Parameters: Conv/Dense weights. Sign: non-negative (absolute value per
    weight, then summed). Reference: zero-cost-nas `snip.py` (`weight_mask` gradients, `torch.abs`).
    """
    _, g = _loss_and_grads(net, params, x, y)
    w = net.kernels(params)
    return _sum(jnp.abs(v * w[k]) for k, v in net.kernels(g).items())


def grasp(net: BaselineNetwork, params, x, y, key=None) -> jax.Array:
    """grasp = - sum over weights  W ⊙ (H g)   (gradient signal preservation, Wang et al., ICLR 2020).

    g = dL/dW (held constant) and H = d^2 L / dW dW' are both restricted to the Conv/Dense weights (zero-cost-nas
    differentiates z = sum_W stop_grad(g) ⊙ dL/dW w.r.t. those weights only); here H g is one forward-over-reverse
    Hessian-vector product with tangent g on the kernels and 0 on every other parameter.
    BN: train. Inputs: the data batch (zero-cost-nas' grasp samples a class-balanced batch; that is data
    selection, left to the caller). Temperature T = 1, one iteration. Parameters: Conv/Dense weights.
    Sign: -theta ⊙ Hg as zero-cost-nas (its note: accuracy correlates negatively with +theta ⊙ Hg), signed sum.
    Reference: zero-cost-nas `grasp.py` (`compute_grasp_per_weight`).
    """
    grad_fn = jax.grad(lambda p: net.loss(net.apply(p, x), y))
    g = grad_fn(params)
    # Tangent: g on the weights, 0 elsewhere (BN scale/shift, classifier bias are not in GraSP's weight list).
    tangent = jax.tree_util.tree_map_with_path(
        lambda path, v: v if getattr(path[-1], "key", None) == "kernel" else jnp.zeros_like(v), g
    )
    hg = jax.jvp(grad_fn, (params,), (tangent,))[1]
    w = net.kernels(params)
    return -_sum(w[k] * v for k, v in net.kernels(hg).items())


def fisher(net: BaselineNetwork, params, x, y, key=None) -> jax.Array:
    """fisher = sum_l  fan_l * sum_k  1/2 mean_n ( sum_{h,w} z_{nkhw} dL/dz_{nkhw} )^2   (Theis et al. 2018;
    Turner et al., BlockSwap, ICLR 2020).

    z is the OUTPUT of each Conv/Dense layer (before its BN), the activation zero-cost-nas hooks through an
    identity after the layer; dL/dz comes from a zero tap added to that output (`BaselineNetwork.run(taps=...)`).
    The per-channel value is broadcast over the channel's weights and summed, as zero-cost-nas' `reshape_elements`
    + `sum_arr` do, hence the factor fan_l = weight elements per output channel (in_channels/groups * kh * kw for
    a conv, in_features for a dense layer).
    BN: train. Inputs: the data batch. Parameters: the Conv/Dense layers' outputs (one value per output channel).
    Sign: non-negative. Reference: zero-cost-nas `fisher.py` (`compute_fisher_per_weight`, mode 'channel').
    """
    shapes = net.conv_output_shapes(params, x)
    taps = {k: jnp.zeros(s.shape, s.dtype) for k, s in shapes.items()}

    def loss_fn(taps):
        logits, rec = net.run(params, x, taps=taps)
        return net.loss(logits, y), rec.conv_outputs

    dz, acts = jax.grad(loss_fn, has_aux=True)(taps)
    kernels = net.kernels(params)
    total = jnp.zeros(())
    for path, z in acts.items():
        prod = z * dz[path]
        g_nk = jnp.sum(prod, axis=tuple(range(1, prod.ndim - 1))) if prod.ndim > 2 else prod  # (N, C)
        per_channel = 0.5 * jnp.mean(jnp.square(g_nk), axis=0)
        fan = math.prod(kernels[path].shape[:-1])  # weight elements per output channel (HWIO or (in, out))
        total = total + fan * jnp.sum(per_channel)
    return total


def plain(net: BaselineNetwork, params, x, y, key=None) -> jax.Array:
    """plain = sum over weights  W ⊙ dL/dW   (signed; Mozer & Smolensky 1989, as named in zero-cost-nas).

    BN: train. Inputs: the data batch. Parameters: Conv/Dense weights. Sign: signed sum (no absolute value).
    Reference: zero-cost-nas `plain.py` (`layer.weight.grad * layer.weight`).
    """
    _, g = _loss_and_grads(net, params, x, y)
    w = net.kernels(params)
    return _sum(v * w[k] for k, v in net.kernels(g).items())


def l2_norm(net: BaselineNetwork, params, x=None, y=None, key=None) -> jax.Array:
    """l2_norm = sum_l || W_l ||_2   (Frobenius norm of each Conv/Dense weight, summed). Data-free.

    BN: not used (no forward pass). Inputs: none. Parameters: Conv/Dense weights. Sign: non-negative.
    Reference: zero-cost-nas `l2_norm.py` (`l.weight.norm()`).
    """
    return _sum(jnp.sqrt(jnp.sum(jnp.square(v))) for v in net.kernels(params).values())


def x64_scope():
    """A context in which 64-bit types exist (`jax.enable_x64(True)`); on exit the previous setting is restored,
    so nothing outside is promoted. `jax.enable_x64` is public in every jax setup.py admits (0.10.2 to 0.12);
    `jax.experimental.enable_x64` is gone from all of them."""
    return jax.enable_x64(True)


def synflow(net: BaselineNetwork, params, x, y=None, key=None) -> jax.Array:
    """synflow = sum over weights | W' ⊙ dR/dW' |,  R = sum_k f(1; |theta|)_k   (Tanaka et al., NeurIPS 2020).

    The network is linearised: EVERY parameter (weights, biases) replaced by its absolute value, BatchNorm REMOVED
    (identity, zero-cost-nas' `synflow` uses `bn=False`), and run on ONE all-ones input of x's image shape;
    R sums the logits. W' = |W|.
    BN: removed. Inputs: all-ones, batch 1 (x gives only the shape; y unused). Parameters: Conv/Dense weights.
    Sign: non-negative.
    Precision: ALWAYS float64, whatever the dtype of `params`, `x` or the run, as zero-cost-nas computes it
    (`compute_synflow_per_weight` calls `net.double()` and builds the input with `torch.ones(...).double()`):
    the value is a sum over input-output paths of products of |weights|, so it grows multiplicatively with depth
    and width (7.3e49 for the all-`nor_conv_3x3` NAS-Bench-201 network at C=16, N=5: inf/NaN in float32). The
    parameters (float32 values are exact in float64) and the input are cast to float64 inside a scoped
    `jax.enable_x64` (`x64_scope`): the rest of the run keeps its own precision and nothing leaks out of the
    scope. Eager, under `jax.jit` (`jitted_baseline`) or under `jax.disable_jit` alike, the result is a float64
    scalar.
    Reference: zero-cost-nas `synflow.py` (`compute_synflow_per_weight`, `bn=False`).
    """
    with x64_scope():
        ones = jnp.ones((1, *x.shape[1:]), jnp.float64)
        abs_params = jax.tree.map(lambda a: jnp.abs(jnp.asarray(a, jnp.float64)), params)
        g = jax.grad(lambda p: jnp.sum(net.apply_no_bn(p, ones)))(abs_params)
        w = net.kernels(abs_params)
        return _sum(jnp.abs(v * w[k]) for k, v in net.kernels(g).items()).astype(jnp.float64)


__all__ = ["fisher", "grad_norm", "grasp", "l2_norm", "plain", "snip", "synflow", "x64_scope"]
