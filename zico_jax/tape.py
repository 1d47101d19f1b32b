"""Per-batch gradients of a network run as a tape of compiled blocks (the engine's CPU backend, `engine._tape`).

Why: XLA:CPU runs convolutions inside `cond`/`switch` bodies as slow generic thunks, so a control-flow supernet
is ~10x slower than a network compiled for one genotype, and compiling per genotype costs seconds each
(measured on this project's CPU machines). A network is instead a short list of module applications (`TapeNode`s); each
distinct (module config, input shape) is compiled once, as forward and as backward, and the candidates of a
space reuse the same small set of executables: the number of compilations does not grow with the number of
candidates.

Semantics are those of `jax.vmap(jax.grad(loss))` over mini-batches, exactly:
  * values carry a leading mini-batch axis (N, B, H, W, C); each kernel applies its module to every mini-batch
    separately (Python-unrolled: `vmap` would turn weight gradients into grouped convolutions), so BatchNorm sees
    each mini-batch's own statistics;
  * backward kernels differentiate w.r.t. a per-mini-batch copy of the weights, which yields the N weight
    gradients (N, *shape) at the cost of one backward pass;
  * the loss is the space's loss of each mini-batch (mean cross-entropy for classification).
With `gradients="per_sample"` (`tape_grads(..., gradients=...)`) each module node differentiates w.r.t. a copy of
its weights per SAMPLE (`vmap` over the samples of each mini-batch), BatchNorm normalising with the statistics of
the sample's mini-batch held fixed (`zico_jax.grads.bn_statistics`), and the head sums the samples' own losses:
weight gradients (N, B, *shape), the same as `zico_jax.grads.per_sample_grads`.
Nodes that cannot reach the loss are not computed, and their weights get no gradient entry: the same as the
exact zeros the full network would give them (ZiCo skips such layers either way).

Example:
    >>> # grads = tape_grads(space.tape(g), params, xs, ys)  # {'stem/conv/kernel': (N, 3, 3, 3, 16), ...}
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from zico_jax import xla_cpu
from zico_jax.errors import InputError
from zico_jax.grads import bn_statistics
from zico_jax.nn.losses import cross_entropy
from zico_jax.nn.tape_nodes import TapeNode, add_n, zeros_like  # noqa: F401  (re-exported)


def _per_batch(module: nn.Module, params, xs):
    """Apply `module` to each mini-batch; params carry a leading mini-batch axis."""
    n = xs[0].shape[0]
    return jnp.stack(
        [module.apply({"params": jax.tree.map(lambda a, i=i: a[i], params)}, *(x[i] for x in xs)) for i in range(n)]
    )


def _broadcast(params, n):
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (n,) + a.shape), params)


def _per_sample(module: nn.Module, params, xs):
    """Apply `module` to each sample with its mini-batch's BatchNorm statistics held fixed; params carry leading
    (mini-batch, sample) axes (a copy per sample: its cotangent is that sample's gradient)."""
    outs = []
    for n in range(xs[0].shape[0]):
        p_n = jax.tree.map(lambda a, n=n: a[n], params)
        stats = bn_statistics(module.apply, {"params": jax.tree.map(lambda a: a[0], p_n)}, *(x[n] for x in xs))

        def one(p, *x_i, stats=stats):
            return module.apply({"params": p, "batch_stats": stats}, *(a[None] for a in x_i))[0]

        outs.append(jax.vmap(one)(p_n, *(x[n] for x in xs)))
    return jnp.stack(outs)


def _copies(params, xs, per_sample: bool):
    """The weights broadcast to one copy per mini-batch (N,) or per sample (N, B)."""
    if per_sample:
        return jax.tree.map(lambda a: jnp.broadcast_to(a, xs.shape[:2] + a.shape), params)
    return _broadcast(params, xs.shape[0])


@functools.lru_cache(maxsize=None)
def _module_forward(module: nn.Module, per_sample: bool = False):
    """Forward of a module node; returns its output and the pullback (a `jax.vjp` pullback is a pytree and crosses
    `jit`), whose residuals, the module's inputs, stay on the device until the backward."""
    apply = _per_sample if per_sample else _per_batch

    def forward(params, *xs):
        copies = _copies(params, xs[0], per_sample)  # a copy per mini-batch (sample): its cotangent is g_n (g_ni)
        # The pullback keeps the module's inputs only and recomputes its forward in the backward: a ReLU-Conv-BN
        # kept ~4 activations, which made the residuals of a whole network the bulk of the memory; recomputing
        # cost no time on XLA:CPU (NAS-Bench-201 at 2 x 128: peak 3.8 -> 1.9 GB, 2.06 -> 1.94 s per candidate).
        run = jax.checkpoint(lambda p, *xs: apply(module, p, xs), policy=jax.checkpoint_policies.nothing_saveable)
        return jax.vjp(run, copies, *xs)

    return xla_cpu.jit(forward)


@functools.lru_cache(maxsize=None)
def _function_forward(fn: Callable):
    return xla_cpu.jit(lambda *xs: jax.vjp(fn, *xs))


@xla_cpu.jit
def _pull_back(pullback, cotangent):
    return pullback(cotangent)


@functools.lru_cache(maxsize=None)
def _loss_head(module: nn.Module, loss: Callable, per_sample: bool = False):
    """`loss` of each mini-batch; returns (losses (N,), per-batch param grads, feature grads). Per sample: the sum
    of the samples' own losses is differentiated (samples are independent once BN statistics are fixed), losses
    (N,) are their means."""

    def total_loss(params, feats, targets):
        if not per_sample:
            outputs = _per_batch(module, params, (feats,))
            losses = jnp.stack([loss(outputs[n], targets[n]) for n in range(outputs.shape[0])])
            return losses.sum(), losses
        outputs = _per_sample(module, params, (feats,))
        each = jax.vmap(jax.vmap(lambda o, t: loss(o[None], t[None])))(outputs, targets)  # (N, B)
        return each.sum(), each.mean(axis=1)

    def head(params, feats, labels):
        grad_fn = jax.grad(total_loss, argnums=(0, 1), has_aux=True)
        (dparams, dfeats), losses = grad_fn(_copies(params, feats, per_sample), feats, labels)
        return losses, dparams, dfeats

    return xla_cpu.jit(head)


def _subtree(params, path):
    for key in path:
        params = params[key]
    return params


def _live_nodes(nodes: Sequence[TapeNode]) -> list[bool]:
    """Which nodes the last node (the loss head) depends on."""
    live = [False] * len(nodes)
    live[-1] = True
    for k in range(len(nodes) - 1, -1, -1):
        if live[k]:
            for v in nodes[k].inputs:
                if v > 0:
                    live[v - 1] = True
    return live


def tape_grads(nodes: Sequence[TapeNode], params, xs, ys, loss: Callable = cross_entropy,
               gradients: str = "per_batch") -> tuple[jax.Array, dict[str, jax.Array]]:
    """Per-mini-batch losses (N,) and weight gradients {'/'-joined param path: (N, *shape)} of a tape
    (`gradients="per_sample"`: (N, B, *shape), one per sample, see the module docstring).

    `xs`: (N, B, H, W, C) inputs, `ys`: (N, B, ...) targets of `loss(outputs, targets)` (default: integer labels
    and softmax cross-entropy). The last node must be the head (a module mapping features to outputs). Parameters
    of nodes that cannot reach the loss get no entry.
    """
    if gradients not in ("per_batch", "per_sample"):
        raise InputError(f"tape_grads: gradients={gradients!r}; expected 'per_batch' or 'per_sample'")
    per_sample = gradients == "per_sample"
    live = _live_nodes(nodes)
    values: list[Any] = [xs] + [None] * len(nodes)
    pullbacks: dict[int, Any] = {}
    for k, node in enumerate(nodes[:-1]):
        if not live[k]:
            continue
        inputs = [values[v] for v in node.inputs]
        if node.fn is add_n:
            values[k + 1] = _add_n_jit(*inputs)
        elif not node.differentiable:
            values[k + 1] = _constant_jit(node.fn)(*inputs)
        elif node.path is None:
            values[k + 1], pullbacks[k] = _function_forward(node.fn)(*inputs)
        else:
            values[k + 1], pullbacks[k] = _module_forward(node.fn, per_sample)(_subtree(params, node.path), *inputs)

    head = nodes[-1]
    head_fn = _loss_head(head.fn, loss, per_sample)
    losses, dparams, dfeats = head_fn(_subtree(params, head.path), values[head.inputs[0]], ys)
    values = None  # the pullbacks hold what the backward needs
    grads = {head.path: dparams}
    cotangents: dict[int, Any] = {head.inputs[0]: dfeats}
    for k in range(len(nodes) - 2, -1, -1):
        node = nodes[k]
        dy = cotangents.pop(k + 1, None)
        if dy is None or not node.differentiable:
            continue
        if node.fn is add_n:
            dxs = (dy,) * len(node.inputs)
        elif node.path is None:
            dxs = _pull_back(pullbacks.pop(k), dy)
        else:
            grads[node.path], *dxs = _pull_back(pullbacks.pop(k), dy)
        for v, dx in zip(node.inputs, dxs):
            if v > 0:
                cotangents[v] = dx if v not in cotangents else _add_n_jit(cotangents[v], dx)
    flat = {}
    for path, tree in grads.items():
        for leaf_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            flat["/".join(path + tuple(p.key for p in leaf_path))] = leaf
    return losses, flat


_add_n_jit = xla_cpu.jit(add_n)


@functools.lru_cache(maxsize=None)
def _constant_jit(fn: Callable):
    return xla_cpu.jit(fn)
