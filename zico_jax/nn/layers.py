"""Flax layers with PyTorch-default semantics, shared by every search space.

ZiCo reads gradients at initialisation, so the initial weights and the BatchNorm mode decide the score. These
layers reproduce what the official PyTorch code gets from `torch.nn` defaults:

* `TorchConv` / `TorchDense`: kernels ~ U(-1/sqrt(fan_in), +1/sqrt(fan_in)) (PyTorch's
  `kaiming_uniform_(a=sqrt(5))`), dense bias likewise; fan_in = in_channels / groups * kh * kw.
  Explicit symmetric padding (PyTorch's `padding=k//2`), never flax's 'SAME', which pads (0, 1) at stride 2.
* `TrainBatchNorm`: BatchNorm in train mode: each call normalises with its own batch statistics, biased variance
  (ddof=0, as PyTorch normalises), eps 1e-5, scale 1 and shift 0 at init. Applied with `params` only (every scoring
  path) it keeps no running statistics: ZiCo never reads them, and a stateless BN keeps `grad` pure. Training
  (`zico_jax.train`) makes `batch_stats` mutable to track PyTorch-style running statistics, and evaluates with them.
* `avg_pool_3x3`: 3x3, stride 1, padding 1, `count_include_pad=False`. The divisor comes from the shapes in NumPy
  (a constant), not from `reduce_window` over ones, which XLA constant-folds slowly at compile time.

Every Conv/Dense kernel lives in a leaf named ``kernel`` (HWIO for convolutions, (in, out) for dense layers):
that is the set of layers ZiCo counts.

Example:
    >>> import jax, jax.numpy as jnp
    >>> conv = TorchConv(features=8, kernel_size=3)
    >>> params = conv.init(jax.random.key(0), jnp.ones((1, 4, 4, 3)))["params"]
    >>> params["kernel"].shape
    (3, 3, 3, 8)
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zico_jax.errors import InputError

BN_EPS = 1e-5


def torch_uniform_init(fan_in: int):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for conv/linear weights and linear biases."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return uniform(key, shape, dtype, -bound, bound)

    return init


SIZE_CLASS_BASE = 4 ** 6  # the smallest size class (4,096 values); each next one is 4x larger


def uniform(key, shape, dtype=jnp.float32, minval=0.0, maxval=1.0) -> jax.Array:
    """`jax.random.uniform(key, shape, dtype, minval, maxval)`, bit for bit, from one sampler per size class.

    With threefry and `jax_threefry_partitionable` (JAX's default), value i of a draw is a function of the key and
    of its flat index i alone: the first n values of a draw of m >= n values are a draw of n values. So a shape
    of n values is drawn as the prefix of a flat draw of m = max(4^6, 4^ceil(log4 n)) values, reshaped:

        uniform(key, shape) = jax.random.uniform(key, (m,))[:n].reshape(shape)

    Why: a space's initialisation draws one array per parameter shape, and each distinct shape compiles its own
    threefry program when the initialisers run as separate executables (`zico_jax.engine`'s whole-space init):
    NAS-Bench-201's 13 weight shapes cost 3.7 s of compilation before the first score; 3 size classes cost
    0.4 s. Drawing up to 4x more values costs microseconds. Any other key type or threefry setting falls back
    to `jax.random.uniform` itself.

    Example:
        >>> import jax, numpy as np
        >>> key = jax.random.key(0)
        >>> a = uniform(key, (3, 3, 16, 32), minval=-0.1, maxval=0.1)
        >>> b = jax.random.uniform(key, (3, 3, 16, 32), minval=-0.1, maxval=0.1)
        >>> bool(np.array_equal(a, b))
        True
    """
    shape = tuple(shape)
    n = math.prod(shape)
    if str(jax.random.key_impl(key)) != "threefry2x32" or not jax.config.jax_threefry_partitionable:
        return jax.random.uniform(key, shape, dtype, minval, maxval)
    bits = (max(n, 1) - 1).bit_length()  # 2**bits >= n; rounded up to an even power: a power of 4
    size_class = max(SIZE_CLASS_BASE, 1 << (bits + bits % 2))
    return _prefix(jax.random.uniform(key, (size_class,), dtype, minval, maxval), shape)


@functools.partial(jax.jit, static_argnums=1)
def _prefix(flat, shape):
    """flat[:prod(shape)] as `shape`: one small program per shape (slicing and reshaping separately are two)."""
    return flat[: math.prod(shape)].reshape(shape)


class TorchConv(nn.Module):
    """2-D convolution, NHWC, bias-free (every conv in the supported spaces is followed by BN or is bias-free)."""

    features: int
    kernel_size: int
    stride: int = 1
    groups: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        in_ch = x.shape[-1]
        if in_ch % self.groups:
            raise InputError(f"TorchConv: input channels {in_ch} not divisible by groups={self.groups}")
        k = self.kernel_size
        fan_in = in_ch // self.groups * k * k
        kernel = self.param(
            "kernel", torch_uniform_init(fan_in), (k, k, in_ch // self.groups, self.features), self.dtype
        )
        pad = k // 2
        return jax.lax.conv_general_dilated(
            x,
            kernel.astype(x.dtype),
            window_strides=(self.stride, self.stride),
            padding=((pad, pad), (pad, pad)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=self.groups,
        )


class TorchDense(nn.Module):
    """Linear layer with PyTorch's default init for kernel and bias."""

    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        kernel = self.param("kernel", torch_uniform_init(fan_in), (fan_in, self.features), self.dtype)
        bias = self.param("bias", torch_uniform_init(fan_in), (self.features,), self.dtype)
        return x @ kernel.astype(x.dtype) + bias.astype(x.dtype)


class TrainBatchNorm(nn.Module):
    """BatchNorm2d over (N, H, W) with affine scale/shift (1 and 0 at init), eps (PyTorch's 1e-5 unless a space
    sets its own). Its mode is chosen by the variable collections it is applied with, so no flag is plumbed through
    the spaces' modules:

    * ``apply({"params": p}, x)`` (every scoring path): train mode, stateless:
      y = scale (x - mu_B) / sqrt(var_B + eps) + bias with the batch mean mu_B and biased variance var_B (ddof=0)
      over (N, H, W). No state is read or written, so `grad` stays pure: ZiCo never reads running statistics.
    * ``apply({"params": p[, "batch_stats": s]}, x, mutable=["batch_stats"])`` (training; any `mutable` that
      includes batch_stats): the same output, and the running statistics in ``batch_stats/{mean,var}`` are
      updated as PyTorch does (momentum m = 0.1):
      mean <- (1 - m) mean + m mu_B,  var <- (1 - m) var + m var_B * n / (n - 1)  (unbiased, n = N*H*W).
      Missing statistics are created at mean 0, var 1 on first use; `init` never creates them (params only).
    * ``apply({"params": p, "batch_stats": s}, x)`` (evaluation): eval mode with the running statistics,
      y = scale (x - mean) / sqrt(var + eps) + bias. (A BN with no statistics of its own, e.g. a branch never
      run in training, keeps normalising with its batch.)

    Example:
        >>> bn = TrainBatchNorm()
        >>> x = jnp.arange(24.0).reshape(2, 2, 2, 3)
        >>> params = bn.init(jax.random.key(0), x)["params"]
        >>> _, state = bn.apply({"params": params}, x, mutable=["batch_stats"])
        >>> [round(float(v), 4) for v in state["batch_stats"]["mean"]]
        [1.05, 1.15, 1.25]
    """

    dtype: jnp.dtype = jnp.float32
    eps: float = BN_EPS
    momentum: float = 0.1

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), self.dtype)
        bias = self.param("bias", nn.initializers.zeros, (c,), self.dtype)
        axes = tuple(range(x.ndim - 1))
        update = self.is_mutable_collection("batch_stats") and not self.is_initializing()
        if not update and self.has_variable("batch_stats", "mean"):
            mean = self.get_variable("batch_stats", "mean").astype(x.dtype)
            var = self.get_variable("batch_stats", "var").astype(x.dtype)
            return (x - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        if update:
            n = x.size // c
            running_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), self.dtype)
            running_var = self.variable("batch_stats", "var", jnp.ones, (c,), self.dtype)
            m = self.momentum
            # The statistics are state, not part of the loss: keep them out of any gradient.
            batch_mean, batch_var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var) * (n / max(n - 1, 1))
            running_mean.value = (1 - m) * running_mean.value + m * batch_mean.astype(self.dtype)
            running_var.value = (1 - m) * running_var.value + m * batch_var.astype(self.dtype)
        return (x - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias


class ReLUConvBN(nn.Module):
    """ReLU -> conv -> BN, the NAS-Bench-201 / DARTS operation (`nor_conv_kxk`)."""

    features: int
    kernel_size: int
    stride: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = TorchConv(self.features, self.kernel_size, self.stride, dtype=self.dtype, name="conv")(nn.relu(x))
        return TrainBatchNorm(dtype=self.dtype, name="bn")(x)


@functools.lru_cache(maxsize=None)
def _pool_counts(h: int, w: int, window: int) -> np.ndarray:
    """How many in-bounds pixels each output of a stride-1 'same' pool sees (count_include_pad=False)."""
    pad = window // 2
    rows = np.array([min(i + pad, h - 1) - max(i - pad, 0) + 1 for i in range(h)])
    cols = np.array([min(j + pad, w - 1) - max(j - pad, 0) + 1 for j in range(w)])
    return np.outer(rows, cols).astype(np.float64)[None, :, :, None]


def avg_pool_3x3(x):
    """AvgPool2d(3, stride=1, padding=1, count_include_pad=False) over the (H, W) axes of (..., H, W, C)."""
    lead = x.ndim - 3
    window, pad = (1,) * lead + (3, 3, 1), ((0, 0),) * lead + ((1, 1), (1, 1), (0, 0))
    # A Python-scalar init lets JAX recognise a windowed sum, which is differentiable.
    summed = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, (1,) * x.ndim, pad)
    return summed / _pool_counts(x.shape[-3], x.shape[-2], 3).astype(x.dtype)[0]


def avg_pool_2x2(x):
    """AvgPool2d(2, stride=2) on NHWC input (even sizes; odd trailing rows/cols dropped as PyTorch does)."""
    return nn.avg_pool(x, (2, 2), strides=(2, 2), padding="VALID")
