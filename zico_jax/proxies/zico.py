"""ZiCo (Li et al., ICLR 2023) and ZiCo-BC (bias-corrected ZiCo, ICCV 2023 workshops).

For each counted layer l with weight gradients g_n (one per mini-batch n = 1..N, taken at the initial weights):

    mu_l   = mean_n |g_n|                (per element; absolute value first)
    sig_l  = std_n  g_n,  ddof = 0        (per element; population std of the signed gradient)
    S_l    = sum over elements with sig_l != 0 of  mu_l / sig_l
    ZiCo   = sum over layers with S_l > 0 of  log S_l

    ZiCo-BC = sum over the same layers of  [ log S_l  -  beta * log(H_l * W_l / sqrt(C_l)) ]

Semantics, each chosen to match the official code (SLDGroup/ZiCo, `ZeroShotProxy/compute_zico.py`):
  * layers counted: every convolution (depthwise, 1x1, stem and reduction convs included) and every dense layer;
    their weight (the flax leaf `kernel`) only - no biases, no BatchNorm scale/shift. Transposed convolutions are
    not counted: `getgrad` keeps `nn.Conv2d` and `nn.Linear` modules, and `nn.ConvTranspose2d` is neither
    (`count_transposed_conv=True` includes them; a flax `nn.ConvTranspose`, or a module with the class attribute
    `transposed_conv = True`, is one);
  * std with ddof=0 (numpy's default; ddof=1 would add log(sqrt 2) per layer at N=2 and change the ranking);
  * no epsilon: elements whose std is exactly 0 are dropped; a layer whose S_l is 0 (all its gradients zero,
    e.g. a conv whose output never reaches the loss) contributes nothing, not log 0;
  * natural log; mini-batches separate: g_n is the gradient of mini-batch n alone. This is the current official
    code: `getzico` calls `network.zero_grad()` before each batch's `loss.backward()` (since commit d7076d5,
    2023-02-17), and the golden cases the tests compare with were computed by it (matched to 1e-10 in float64).
    The repository's first commit (bbabe28) had no `zero_grad()`, so it read running sums g_1, g_1 + g_2, ...;
    `cumulative=True` reproduces that superseded behaviour, for comparison with results computed by it.
  * ZiCo-BC (the paper leaves the feature map open): H_l, W_l, C_l are the layer's OUTPUT height, width and
    channels (`feature_map="output"`, default) or its input's (`"input"`); dense layers have H = W = 1 and
    C = output (input) features. beta = 1 for classification and detection, 2 for segmentation (the paper);
    beta = 0 gives ZiCo exactly. The penalty is taken over the layers ZiCo counts (S_l > 0).

Example:
    >>> grads = per_batch_grads(classification_loss(model.apply), params, xs, ys)
    >>> zico_statistic(kernel_leaves(grads))
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from zico_jax.errors import InputError, UnknownNameError
from zico_jax.grads import (
    GRADIENTS,
    classification_loss,
    cross_entropy,
    kernel_leaves,
    per_batch_grads,
    per_sample_grads,
)


class LayerTerms(NamedTuple):
    """Per-layer ZiCo terms: `terms[path]` = log S_l (0 where not counted), `counted[path]` = S_l > 0."""

    terms: dict[str, jax.Array]
    counted: dict[str, jax.Array]


def layer_term(grad: jax.Array, cumulative: bool = False) -> tuple[jax.Array, jax.Array]:
    """(log S_l, S_l > 0) of one layer from its per-batch gradients `grad` of shape (N, *weight_shape)."""
    g = grad.reshape(grad.shape[0], -1)
    if cumulative:
        g = jnp.cumsum(g, axis=0)
    std = jnp.std(g, axis=0)  # ddof=0
    mean_abs = jnp.mean(jnp.abs(g), axis=0)
    nonzero = std != 0
    # The inner where keeps the untaken 0/0 branch from producing NaN gradients-of-gradients or warnings.
    total = jnp.sum(jnp.where(nonzero, mean_abs / jnp.where(nonzero, std, 1), 0))
    counted = total > 0
    return jnp.where(counted, jnp.log(jnp.where(counted, total, 1)), 0.0), counted


def zico_layer_terms(kernel_grads: Mapping[str, jax.Array], cumulative: bool = False) -> LayerTerms:
    """Per-layer terms for `{layer path: (N, *shape) gradients}` (see `grads.kernel_leaves`)."""
    for path, g in kernel_grads.items():
        if g.ndim < 2 or g.shape[0] < 2:
            raise InputError(f"ZiCo: layer {path!r} has gradients of shape {g.shape}; expected (N >= 2, *weight_shape)")
    pairs = {path: layer_term(g, cumulative) for path, g in kernel_grads.items()}
    return LayerTerms({p: t for p, (t, _) in pairs.items()}, {p: c for p, (_, c) in pairs.items()})


def zico_statistic(kernel_grads: Mapping[str, jax.Array], cumulative: bool = False) -> jax.Array:
    """ZiCo = sum_l log S_l over counted layers, from per-batch kernel gradients."""
    terms = zico_layer_terms(kernel_grads, cumulative)
    return sum(terms.terms.values(), jnp.zeros(()))


def bias_penalty(hwc: tuple[int, int, int]) -> float:
    """log(H * W / sqrt(C)): ZiCo-BC's per-layer correction for a feature map of size H x W x C."""
    h, w, c = hwc
    if min(h, w, c) <= 0:
        raise InputError(f"ZiCo-BC: feature map {hwc} must have positive H, W, C")
    return math.log(h * w / math.sqrt(c))


def zico_bc_from_terms(terms: LayerTerms | Mapping[str, float], shapes: Mapping[str, tuple[int, int, int]],
                       beta: float = 1.0):
    """ZiCo-BC = sum over counted layers of  log S_l - beta * log(H_l W_l / sqrt(C_l)),  from per-layer terms and
    each layer's feature map `shapes[path]` = (H, W, C). The one implementation: the `zico_bc` proxy of the
    registry and `zico_bc` below both call it.

    `terms`: a `LayerTerms` of arrays (a layer not counted adds an exact 0, so this traces under `jit`; the sum is
    in the arrays' dtype), or {path: log S_l} of the counted layers only, e.g. an engine `Measurement`'s host
    floats (a Python sum, in float64). Summed with the built-in `sum`, as ZiCo is (`zico_statistic`, the registry's
    `zico`): Python 3.12's `sum` of floats is compensated (Neumaier), unlike a `+=` loop, so only the same
    summation keeps beta = 0 bitwise equal to ZiCo on every Python."""
    if isinstance(terms, LayerTerms):
        values, counted, start = terms.terms, terms.counted, jnp.zeros(())
    else:
        values, counted, start = terms, None, 0.0
    adjusted = []
    for path, term in values.items():
        if path not in shapes:
            raise UnknownNameError(f"ZiCo-BC: no feature-map size for layer {path!r}; known: {sorted(shapes)[:5]}...")
        value = term - beta * bias_penalty(shapes[path])
        adjusted.append(value if counted is None else jnp.where(counted[path], value, 0.0))
    return sum(adjusted, start)


def feature_shapes(model, variables, x) -> dict[str, tuple[int, int, int]]:
    """Output (H, W, C) of every kernel-carrying layer of a flax `model`, from an abstract forward pass on `x`.

    Convolution outputs (B, H, W, C) give (H, W, C); dense outputs (B, C) give (1, 1, C). No FLOPs are spent
    (`jax.eval_shape`). Spaces provide the same table analytically (`Space.layers`), with input sizes too.
    """
    layers = kernel_leaves(variables["params"])

    def capture(v, x):
        keep = lambda mdl, _: "/".join(mdl.scope.path) in layers  # noqa: E731
        _, state = model.apply(v, x, capture_intermediates=keep, mutable=["intermediates"])
        return state["intermediates"]

    shapes = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(jax.eval_shape(capture, variables, x))[0]:
        keys = [getattr(k, "key", None) for k in path]  # module names..., '__call__', then the output's index
        mod = "/".join(str(k) for k in keys if isinstance(k, str) and k != "__call__")
        if mod in layers:
            s = leaf.shape
            shapes[mod] = (s[-3], s[-2], s[-1]) if len(s) >= 4 else (1, 1, s[-1])
    missing = sorted(set(layers) - set(shapes))
    if missing:
        raise InputError(f"ZiCo-BC: could not read the output shape of layer {missing[0]!r}; pass shapes=")
    return shapes


def is_transposed_conv(module) -> bool:
    """A transposed convolution: flax's `nn.ConvTranspose`, or a module declaring `transposed_conv = True`."""
    return isinstance(module, nn.ConvTranspose) or bool(getattr(type(module), "transposed_conv", False))


def transposed_conv_paths(model, variables, x) -> frozenset[str]:
    """Module paths of the transposed convolutions `model` calls on `x` (abstract evaluation, no FLOPs)."""
    found = set()

    def record(mdl, _):
        if is_transposed_conv(mdl):
            found.add("/".join(mdl.scope.path))
        return False

    jax.eval_shape(lambda v, x: model.apply(v, x, capture_intermediates=record, mutable=True), variables, x)
    return frozenset(found)


def _without(terms: LayerTerms, paths) -> LayerTerms:
    """`terms` without the layers at `paths`."""
    return LayerTerms({p: t for p, t in terms.terms.items() if p not in paths},
                      {p: c for p, c in terms.counted.items() if p not in paths})


def zico(model, variables, xs, ys, *, loss: Callable = cross_entropy, method: str = "vmap", cumulative=False,
         gradients: str = "per_batch", count_transposed_conv: bool = False):
    """ZiCo of a flax `model` at `variables` on mini-batches xs (N, B, ...), ys (N, B): one jitted call.

    gradients: "per_batch" (default, the official code): mean |g| and std g over the N mini-batch gradients;
    "per_sample": over the N * B per-sample gradients, each sample's BatchNorm statistics those of its
    mini-batch held fixed (`grads.per_sample_grads`; needs N * B >= 2, `cumulative=False`).
    count_transposed_conv: also count transposed convolutions (official: not counted; `transposed_conv_paths`).
    """
    terms = _measure(model, variables, xs, ys, loss, method, cumulative, gradients)[1]
    if not count_transposed_conv:
        terms = _without(terms, transposed_conv_paths(model, variables, xs[0]))
    return sum(terms.terms.values(), jnp.zeros(()))


def zico_bc(
    model, variables, xs, ys, *, beta: float = 1.0, shapes=None, loss: Callable = cross_entropy,
    method: str = "vmap", cumulative=False, gradients: str = "per_batch", count_transposed_conv: bool = False,
):
    """ZiCo-BC of a flax `model`; layer sizes are read from the model unless `shapes` {path: (H, W, C)} is given.
    Transposed convolutions count only with `count_transposed_conv=True`, as in `zico`."""
    terms = _measure(model, variables, xs, ys, loss, method, cumulative, gradients)[1]
    if not count_transposed_conv:
        terms = _without(terms, transposed_conv_paths(model, variables, xs[0]))
    shapes = feature_shapes(model, variables, xs[0]) if shapes is None else shapes
    return zico_bc_from_terms(terms, shapes, beta)


def _measure(model, variables, xs, ys, loss, method, cumulative, gradients="per_batch") -> tuple[jax.Array, LayerTerms]:
    if gradients not in GRADIENTS:
        raise InputError(f"ZiCo: gradients={gradients!r}; expected one of {', '.join(GRADIENTS)}")
    if gradients == "per_sample" and cumulative:
        raise InputError("ZiCo: cumulative=True (running sums over mini-batches) has no per-sample counterpart")
    other = {k: v for k, v in variables.items() if k != "params"}

    @jax.jit
    def run(params, other, xs, ys):
        if gradients == "per_sample":
            grads = per_sample_grads(model.apply, params, xs, ys, loss, other,
                                       method="unroll" if method == "vmap" else method)
        else:
            loss_fn = classification_loss(model.apply, other, loss)
            grads = per_batch_grads(loss_fn, params, xs, ys, method)
        terms = zico_layer_terms(kernel_leaves(grads), cumulative)
        return sum(terms.terms.values(), jnp.zeros(())), terms

    return run(variables["params"], other, xs, ys)


__all__ = [
    "LayerTerms", "layer_term", "zico_layer_terms", "zico_statistic", "bias_penalty", "zico_bc_from_terms",
    "feature_shapes", "is_transposed_conv", "transposed_conv_paths", "zico", "zico_bc",
]
