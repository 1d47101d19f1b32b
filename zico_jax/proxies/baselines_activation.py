"""Activation- and input-Jacobian-based baseline proxies: jacov, nwot (NASWOT), zen (Zen-score).

Pure JAX, `fn(net, params, x, y, key) -> scalar array` like `baselines_grad`; `net` is static (hashable).

Example:
    >>> net = baseline_network(space, genotype, jnp.float64)
    >>> float(nwot(net, params, x, y, None)), float(zen(net, params, x, y, jax.random.key(0)))
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zico_jax.errors import InputError
from zico_jax.proxies.baselines_network import BaselineNetwork

JACOV_K = 1e-5
ZEN_MIXUP_GAMMA = 1e-2
BN_MOMENTUM = 0.1  # PyTorch's default, which the Zen-NAS reference's BatchNorm2d layers use


def jacov(net: BaselineNetwork, params, x, y=None, key=None) -> jax.Array:
    """jacov = - sum_i [ log(v_i + k) + 1 / (v_i + k) ],  k = 1e-5   (Mellor et al., NASWOT v1, 2020).

    J_n = d/dx_n sum_{n', c} f(x)_{n'c}: the gradient of the SUM of all logits w.r.t. each input image (PyTorch's
    `y.backward(ones_like(y))`; with train-mode BN the images of a batch interact, and that is kept), flattened
    to rows J (B, H*W*C); v are the eigenvalues of the B x B correlation matrix of the rows (`np.corrcoef`).
    BN: train. Inputs: the data batch x (y unused). Parameters: none read directly (input gradients).
    Sign: as the reference (higher is better; always <= 0 up to the log term). Reduction: sum over eigenvalues.
    The row order of the flattening does not matter (correlations are invariant to permuting features).
    Reference: NASLib `jacov.py` / zero-cost-nas `jacob_cov.py` (`eval_score`), one split.
    """
    jac = jax.grad(lambda x: jnp.sum(net.apply(params, x)))(x).reshape(x.shape[0], -1)
    centred = jac - jnp.mean(jac, axis=1, keepdims=True)
    cov = centred @ centred.T
    d = jnp.sqrt(jnp.diag(cov))
    corr = cov / d[:, None] / d[None, :]
    v = jnp.linalg.eigvalsh(corr)  # symmetric: real eigenvalues (np.linalg.eig's, in another order)
    return -jnp.sum(jnp.log(v + JACOV_K) + 1.0 / (v + JACOV_K))


def nwot_kernel(net: BaselineNetwork, params, x) -> jax.Array:
    """K = sum over ReLUs of  c c^T + (1 - c)(1 - c)^T,  c (B, units) the binary codes `pre-activation > 0`.

    K_ij = number of units on which images i and j agree (units minus Hamming distance).
    """
    k = jnp.zeros((x.shape[0], x.shape[0]), x.dtype)
    for a in net.relu_pre_activations(params, x):
        c = (a.reshape(a.shape[0], -1) > 0).astype(x.dtype)
        k = k + c @ c.T + (1 - c) @ (1 - c).T
    return k


def nwot(net: BaselineNetwork, params, x, y=None, key=None) -> jax.Array:
    """nwot = log |det K|,  K = sum over ReLUs of c c^T + (1 - c)(1 - c)^T   (Mellor et al., ICML 2021).

    c: the binary activation code (input > 0) of every ReLU of the network for each image of the batch, flattened
    over (H, W, C); see `nwot_kernel`. ReLU sites: every `ReLUConvBN`'s ReLU and the space's `relu_after` modules
    (NAS-Bench-201: the head's BN-ReLU `lastact`), i.e. every `nn.ReLU` module of the official network.
    BN: train (the network is never put in eval mode there). Inputs: the data batch x (y unused). Parameters:
    none directly. Sign: log-determinant as `np.linalg.slogdet(K)[1]` (log of |det|). Reduction: K summed over
    ReLUs, then one log-determinant. Reference: BayesWatch/nas-without-training `score_networks.py`
    (`counting_forward_hook`) + `scores.py` (`hooklogdet`); NASLib `nwot.py`.
    """
    return jnp.linalg.slogdet(nwot_kernel(net, params, x))[1]


def zen_draws(net: BaselineNetwork, params, x, key):
    """(Gaussian params, input, perturbation) that Zen-score draws from `key`, with params' structure and x's shape.

    Conv/Dense weights ~ N(0, 1); BN scale 1, BN shift 0, dense bias 0 (Zen-NAS `network_weight_gaussian_init`);
    input and perturbation ~ N(0, 1) of x's shape and dtype.
    """
    k_w, k_x1, k_x2 = jax.random.split(key, 3)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    sizes = [leaf.size for path, leaf in leaves if getattr(path[-1], "key", None) == "kernel"]
    # One draw for all weights, cut in leaf order: one sampler program instead of one per weight shape.
    flat = jax.random.normal(k_w, (sum(sizes),), leaves[0][1].dtype)
    new, offset = [], 0
    for path, leaf in leaves:
        name = getattr(path[-1], "key", None)
        if name == "kernel":
            new.append(flat[offset:offset + leaf.size].reshape(leaf.shape).astype(leaf.dtype))
            offset += leaf.size
        elif name == "scale":
            new.append(jnp.ones_like(leaf))
        elif name == "bias":
            new.append(jnp.zeros_like(leaf))
        else:
            raise InputError(f"zen: parameter {jax.tree_util.keystr(path)} is neither kernel, scale nor bias; "
                             "its Gaussian init is not defined")
    gparams = jax.tree_util.tree_unflatten(treedef, new)
    return gparams, jax.random.normal(k_x1, x.shape, x.dtype), jax.random.normal(k_x2, x.shape, x.dtype)


def _channel_var(a, ddof: int):
    axes = tuple(range(a.ndim - 1))
    n = a.size // a.shape[-1]
    return jnp.sum(jnp.square(a - jnp.mean(a, axis=axes)), axis=axes) / (n - ddof)


def zen_score(net: BaselineNetwork, gparams, x1, x2, mixup_gamma=ZEN_MIXUP_GAMMA, bn_var="running") -> jax.Array:
    """Zen-score of the network at `gparams` for input x1 and perturbation x2 (see `zen`)."""
    f1, rec1 = net.features_pre_gap(gparams, x1)
    f2, rec2 = net.features_pre_gap(gparams, x1 + mixup_gamma * x2)
    main = jnp.mean(jnp.sum(jnp.abs(f1 - f2), axis=tuple(range(1, f1.ndim))))
    log_bn = jnp.zeros((), f1.dtype)
    for path, a1 in rec1.bn_inputs.items():
        if bn_var == "running":
            # PyTorch's running variance after the two train-mode passes, from its initial 1 (momentum m,
            # unbiased batch variances): (1 - m)^2 + m (1 - m) v1 + m v2.
            m = BN_MOMENTUM
            var = (1 - m) ** 2 + m * (1 - m) * _channel_var(a1, 1) + m * _channel_var(rec2.bn_inputs[path], 1)
        elif bn_var == "batch":
            var = _channel_var(a1, 0)  # the biased batch variance BN normalises x1 with
        else:
            raise InputError(f"zen: bn_var {bn_var!r}; expected 'running' or 'batch'")
        log_bn = log_bn + 0.5 * jnp.log(jnp.mean(var))
    return jnp.log(main) + log_bn


def zen(net: BaselineNetwork, params, x, y=None, key=None, *, mixup_gamma=ZEN_MIXUP_GAMMA, bn_var="running"):
    """zen = log E_n || f(x1)_n - f(x1 + gamma x2)_n ||_1  +  sum_BN log sqrt(mean_c sigma^2_c)
    (Lin et al., "Zen-NAS", ICCV 2021), one repeat.

    f: the pre-global-average-pooling feature map (`forward_pre_GAP`; NAS-Bench-201: lastact's BN-ReLU output, as
    AZ-NAS' NB201 port of the Zen code), BN in TRAIN mode. The network is RE-INITIALISED with Gaussian weights
    (`zen_draws`: Conv/Dense weights N(0, 1), BN scale 1 / shift 0, biases 0): `params` gives only the structure.
    Inputs: GAUSSIAN x1, x2 ~ N(0, 1) of x's shape, drawn from `key` (x's values and y are unused); gamma = 1e-2.
    ||.||_1: sum of |differences| over (H, W, C) per image, mean over the batch.
    BN term, over every BatchNorm run by the forward pass: sigma^2_c is
      * bn_var="running" (default, the Zen-NAS code `compute_zen_score.py`): the BN's `running_var` after the two
        forward passes of a fresh network, (1 - m)^2 + m (1 - m) v1 + m v2 with v1, v2 the unbiased batch variances
        of the two passes and m = 0.1;
      * bn_var="batch" (the paper's wording, "mini-batch standard deviation"): the biased batch variance of x1's pass.
    Parameters: all, redrawn. Sign: higher is better. Reduction: natural log. One repeat (the Zen code averages
    `repeat` of these; the AZ-NAS NB201 port uses 1). Reference: idstcv/ZenNAS `ZeroShotProxy/compute_zen_score.py`.
    """
    if key is None:
        raise InputError("zen: needs a PRNG key for its Gaussian weights and inputs; got key=None")
    gparams, x1, x2 = zen_draws(net, params, x, key)
    return zen_score(net, gparams, x1, x2, mixup_gamma, bn_var)


__all__ = ["jacov", "nwot", "nwot_kernel", "zen", "zen_draws", "zen_score"]
