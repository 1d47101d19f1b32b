"""The baseline zero-cost proxies ZiCo is compared with, as pure JAX functions, by name.

    name       BN        inputs               parameters read           sign / reduction        reference
    grad_norm  train     data batch           Conv/Dense weights        >= 0, sum of layer norms zero-cost-nas
    snip       train     data batch           Conv/Dense weights        >= 0, sum |W dL/dW|      zero-cost-nas
    grasp      train     data batch           Conv/Dense weights        signed, -sum W (H g)     zero-cost-nas
    fisher     train     data batch           Conv/Dense outputs        >= 0, channel sums x fan zero-cost-nas
    jacov      train     data batch           input Jacobian            <= 0-ish, eigen sum      NASLib / NASWOT v1
    synflow    removed   all-ones, batch 1    Conv/Dense weights (abs)  >= 0, sum |W dR/dW|      zero-cost-nas
    plain      train     data batch           Conv/Dense weights        signed, sum W dL/dW      zero-cost-nas
    l2_norm    -         none                 Conv/Dense weights        >= 0, sum of norms       zero-cost-nas
    nwot       train     data batch           ReLU codes                log|det K|               nas-without-training
    zen        train     Gaussian (from key)  all, redrawn N(0, 1)      log, + BN log-std terms  ZenNAS

(#params and FLOPs are analytic: `zico_jax.proxies.registry`.) synflow runs in float64 whatever the run's
precision, as zero-cost-nas does (`net.double()`).

Reference network: every proxy reads the network ZiCo scores (on NAS-Bench-201 xautodl's: affine BatchNorm,
convolutions without bias), at the candidate's seeded weights. zero-cost-nas computes its NAS-Bench-201 tables on
its own port (`foresight/models/nasbench2.py`), whose cells use `BatchNorm2d(affine=False)` and convolutions WITH a
bias (`bias=not affine`); we keep one network for all proxies so that they rank the same functions (a documented
choice: docs/semantics.md). Each function's docstring has its formula and
semantics; `baselines_network` explains how activations, BN removal and Conv/Dense weights are reached.

A proxy is `fn(net: BaselineNetwork, params, x, y, key) -> 0-d array`: x (B, H, W, C) one batch in the space's
input layout, y (B,) integer labels, key a `jax.random` key (only zen uses it). `score_baseline` is the one call.

Example:
    >>> space = get_space("nats_tss")
    >>> g = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    ...                 "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    >>> params = baseline_network(space, g).init(jax.random.key(0))
    >>> score_baseline("snip", space, g, params, x, y, jax.random.key(1))
"""

from __future__ import annotations

import functools
from typing import Callable

import jax

from zico_jax.errors import UnknownNameError
from zico_jax.proxies.baselines_activation import jacov, nwot, zen
from zico_jax.proxies.baselines_grad import fisher, grad_norm, grasp, l2_norm, plain, snip, synflow
from zico_jax.proxies.baselines_network import BaselineNetwork, baseline_network

# The baseline proxies, by name: the one list of them (`zico_jax.proxies.registry` registers each name as a proxy).
BASELINES: dict[str, Callable] = {
    "grad_norm": grad_norm,
    "snip": snip,
    "grasp": grasp,
    "fisher": fisher,
    "jacov": jacov,
    "synflow": synflow,
    "plain": plain,
    "l2_norm": l2_norm,
    "nwot": nwot,
    "zen": zen,
}


def get_baseline(name: str) -> Callable:
    """The proxy function registered as `name`; KeyError naming the registered ones otherwise."""
    if name not in BASELINES:
        raise UnknownNameError(f"unknown baseline proxy {name!r}; registered baselines: {', '.join(sorted(BASELINES))}")
    return BASELINES[name]


@functools.lru_cache(maxsize=None)
def jitted_baseline(name: str) -> Callable:
    """`jax.jit(get_baseline(name), static_argnums=0)`: one program per (network, shapes), cached by jax."""
    return jax.jit(get_baseline(name), static_argnums=0)


def score_baseline(name: str, space, genotype, params, x, y, key=None) -> float:
    """One baseline proxy of `genotype`'s standalone network at `params` on the batch (x, y): a float.

    The network is built in params' dtype (float64 params need `jax_enable_x64`); the proxy runs jitted.
    """
    get_baseline(name)  # the error names the registered baselines
    dtype = jax.tree.leaves(params)[0].dtype
    net = baseline_network(space, genotype, dtype)
    return float(jitted_baseline(name)(net, params, x, y, key))


__all__ = ["BASELINES", "BaselineNetwork", "baseline_network", "get_baseline", "jitted_baseline", "score_baseline",
           *BASELINES]
