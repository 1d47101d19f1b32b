"""Layers whose channel count is data: the widest layer with the inactive channels masked to exact zeros.

A width search space (NATS-Bench SSS) runs every candidate as ONE program: the network is built at the widest
width and each layer receives its active channel counts (traced integers) at call time. With `active_* = None`
the layers are the plain standalone layers of `zico_jax.nn.layers` (same parameters, same init, same maths), so one
set of module classes defines both the standalone network of a genotype and the whole-space network.

Semantics of a masked layer with `in_ch` stored and `active_in` active input channels (the first ones):
  * weights: the stored kernel is drawn at the widest fan-in, U(-1/sqrt(k*k*in_ch), +1/sqrt(k*k*in_ch)); the
    layer uses `kernel[..., :active_in, :active_out] * sqrt(in_ch / active_in)` and zeros elsewhere, which is
    U(-1/sqrt(fan_in_g), +1/sqrt(fan_in_g)) for the candidate's own fan-in k*k*active_in: PyTorch's default
    init of the candidate's standalone layer. A dense layer's bias is rescaled by the same factor (PyTorch draws
    it with the same bound).
  * BatchNorm (train mode) is per channel, so the inactive channels never enter the statistics of the active
    ones; its output is multiplied by the channel mask, so inactive channels stay exactly zero whatever the
    affine parameters hold.
  * Every tensor between layers is therefore exactly zero on its inactive channels, and the gradient of every
    inactive weight is exactly zero (it is multiplied by a 0 mask): ZiCo drops zero-variance weights, so the
    masked network's ZiCo equals the standalone network's.
`standalone_params` turns the wide parameters into the standalone network's (slice + the same rescale).

Example:
    >>> conv = MaskedConv(features=8, kernel_size=3)
    >>> v = conv.init(jax.random.key(0), jnp.ones((1, 4, 4, 8)), jnp.int32(4), jnp.int32(2))
    >>> y = conv.apply(v, jnp.ones((1, 4, 4, 8)), jnp.int32(4), jnp.int32(2))   # y[..., 2:] == 0
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zico_jax.errors import InputError, UnknownNameError
from zico_jax.nn import layers as nn_layers

Active = Optional[jax.Array]  # a traced int: how many leading channels are active; None: all (standalone)


def channel_mask(total: int, active, dtype) -> jax.Array:
    """1.0 for the first `active` of `total` channels, 0.0 for the rest."""
    return (jnp.arange(total) < active).astype(dtype)


def fan_in_rescale(stored_in: int, active_in, dtype):
    """sqrt(stored_in / active_in): maps U(+-1/sqrt(k*k*stored_in)) onto U(+-1/sqrt(k*k*active_in))."""
    return jnp.sqrt(jnp.asarray(stored_in, dtype) / jnp.asarray(active_in).astype(dtype))


def masked_kernel(kernel: jax.Array, active_in: Active, active_out: Active) -> jax.Array:
    """The kernel (..., in, out) a candidate uses: active block rescaled to its fan-in, zeros elsewhere."""
    in_ch, out_ch = kernel.shape[-2:]
    factor = jnp.ones((in_ch, out_ch), kernel.dtype)
    if active_in is not None:
        factor = factor * (channel_mask(in_ch, active_in, kernel.dtype) * fan_in_rescale(in_ch, active_in,
                                                                                         kernel.dtype))[:, None]
    if active_out is not None:
        factor = factor * channel_mask(out_ch, active_out, kernel.dtype)[None, :]
    # 0/1 masks times one scale: the active entries are kernel * scale exactly, as `standalone_params` computes.
    return kernel * factor


class MaskedConv(nn.Module):
    """`zico_jax.nn.layers.TorchConv` (bias-free, explicit symmetric padding) with optional channel masks."""

    features: int
    kernel_size: int
    stride: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, active_in: Active = None, active_out: Active = None):
        in_ch, k = x.shape[-1], self.kernel_size
        kernel = self.param("kernel", nn_layers.torch_uniform_init(in_ch * k * k), (k, k, in_ch, self.features),
                            self.dtype)
        kernel = masked_kernel(kernel, active_in, active_out)
        pad = k // 2
        return jax.lax.conv_general_dilated(
            x, kernel.astype(x.dtype), window_strides=(self.stride, self.stride), padding=((pad, pad), (pad, pad)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"))


class MaskedBatchNorm(nn.Module):
    """`zico_jax.nn.layers.TrainBatchNorm` whose output is zero on the inactive channels."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, active: Active = None):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), self.dtype)
        bias = self.param("bias", nn.initializers.zeros, (c,), self.dtype)
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        y = (x - mean) * jax.lax.rsqrt(var + nn_layers.BN_EPS) * scale + bias
        return y if active is None else y * channel_mask(c, active, y.dtype)


class MaskedReLUConvBN(nn.Module):
    """ReLU -> conv -> BN (`nor_conv_kxk`), parameters at `conv/kernel`, `bn/scale`, `bn/bias`."""

    features: int
    kernel_size: int
    stride: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, active_in: Active = None, active_out: Active = None):
        y = MaskedConv(self.features, self.kernel_size, self.stride, self.dtype, name="conv")(
            nn.relu(x), active_in, active_out)
        return MaskedBatchNorm(self.dtype, name="bn")(y, active_out)


class MaskedDense(nn.Module):
    """`zico_jax.nn.layers.TorchDense` with a mask on its inputs; kernel and bias rescaled to the active fan-in."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, active_in: Active = None):
        fan_in = x.shape[-1]
        kernel = self.param("kernel", nn_layers.torch_uniform_init(fan_in), (fan_in, self.features), self.dtype)
        bias = self.param("bias", nn_layers.torch_uniform_init(fan_in), (self.features,), self.dtype)
        if active_in is not None:
            kernel = masked_kernel(kernel, active_in, None)
            bias = bias * fan_in_rescale(fan_in, active_in, bias.dtype)
        return x @ kernel.astype(x.dtype) + bias.astype(x.dtype)


def standalone_params(wide_params, standalone_shapes):
    """The standalone network's weights from the wide (masked) network's: each leaf sliced to the standalone
    shape (leading channels), kernels and dense biases multiplied by sqrt(stored_in / standalone_in).

    `standalone_shapes`: the standalone params tree, or its shapes (`jax.eval_shape` of its init). Every path of
    the standalone tree must exist in `wide_params`; the wide tree may hold more (other candidates' layers).
    """

    def walk(wide, like, path):
        if not isinstance(like, dict) and not hasattr(like, "keys"):
            raise TypeError(f"standalone_params: {'/'.join(path)} is a leaf in the standalone tree, not a module")
        missing = sorted(set(like) - set(wide))
        if missing:
            raise UnknownNameError(f"standalone_params: {'/'.join(path + (missing[0],))} "
                                   "is not in the wide network's params")
        out = {}
        scale = None
        if "kernel" in like and not hasattr(like["kernel"], "keys"):
            wide_in, own_in = np.shape(wide["kernel"])[-2], like["kernel"].shape[-2]
            dtype = np.asarray(wide["kernel"]).dtype
            # Same arithmetic as `fan_in_rescale` in the program, so the weights agree bit for bit.
            scale = np.sqrt(np.asarray(wide_in, dtype) / np.asarray(own_in, dtype))
        for name, leaf in like.items():
            if hasattr(leaf, "keys"):
                out[name] = walk(wide[name], leaf, path + (name,))
                continue
            full = np.asarray(wide[name])  # NumPy slicing: no per-leaf XLA compilations
            if full.ndim != len(leaf.shape) or any(s > f for s, f in zip(leaf.shape, full.shape)):
                raise InputError(f"standalone_params: {'/'.join(path + (name,))} has shape {tuple(leaf.shape)}, "
                                 f"which does not fit in the wide network's {tuple(full.shape)}")
            sliced = full[tuple(slice(0, s) for s in leaf.shape)]
            out[name] = sliced * scale.astype(sliced.dtype) if scale is not None else sliced
        return out

    return walk(wide_params, standalone_shapes, ())
