"""Flax building blocks of the Zen-NAS / ZiCo MobileNetV2-style ImageNet space (see `zico_jax.spaces.zennas`).

Each class is one application of the space's tape (`ZenNASSpace.tape`), and the standalone network is the same
modules in sequence, so a tape node's parameters are exactly the network's subtree at the node's name.

Semantics follow the official PyTorch code (idstcv/ZenNAS `PlainNet/`, reused unchanged by SLDGroup/ZiCo):
  * every BatchNorm is in train mode with eps 1e-3 (`MasterNet.__init__` sets `eps = 1e-3` on every
    `nn.BatchNorm2d`, including those of shortcuts and squeeze-excite), scale 1 / shift 0 at init;
  * convolutions are bias-free with PyTorch's default init (`zico_jax.nn.layers.TorchConv`), except the 1x1 shortcut
    projection of a residual unit, an `nn.Conv2d` with the default `bias=True` (`ProjConv`);
  * padding (k - 1) // 2 on every side, so a stride-2 layer maps H to ceil(H / 2) as PyTorch does.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from zico_jax.errors import InputError
from zico_jax.nn import layers as nn_layers

BN_EPS = 1e-3  # MasterNet's value, not PyTorch's 1e-5 default
SE_RATIO = 0.25


def se_channels(channels: int) -> int:
    """Squeeze-excite width of the official `SE` block: max(1, round(C * 0.25)) (Python rounding)."""
    return max(1, int(round(channels * SE_RATIO)))


# BatchNorm2d in train mode with the space's eps 1e-3 (biased variance as PyTorch).
BatchNorm = functools.partial(nn_layers.TrainBatchNorm, eps=BN_EPS)


class ConvBN(nn.Module):
    """conv (k x k, stride, groups) -> BN [-> ReLU]: the official `ConvKX/ConvDW` + `BN` [+ `RELU`]."""

    features: int
    kernel_size: int
    stride: int = 1
    groups: int = 1
    relu: bool = True
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = nn_layers.TorchConv(self.features, self.kernel_size, self.stride, self.groups, self.dtype, name="conv")(x)
        x = BatchNorm(self.dtype, name="bn")(x)
        return nn.relu(x) if self.relu else x


class ProjConv(nn.Module):
    """The residual shortcut's `nn.Conv2d(in, out, 1, stride)`: 1x1, no padding, WITH a bias (PyTorch default)."""

    features: int
    stride: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        kernel = self.param("kernel", nn_layers.torch_uniform_init(fan_in), (1, 1, fan_in, self.features), self.dtype)
        bias = self.param("bias", nn_layers.torch_uniform_init(fan_in), (self.features,), self.dtype)
        y = jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), (self.stride, self.stride), ((0, 0), (0, 0)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias.astype(x.dtype)


class SqueezeExcite(nn.Module):
    """The official `SE(C)`: global average pool -> 1x1 conv (C -> C/4, no bias) -> BN -> ReLU -> 1x1 conv
    (C/4 -> C, no bias) -> BN -> sigmoid, multiplied onto the input."""

    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = nn.relu(BatchNorm(self.dtype, name="reduce_bn")(
            nn_layers.TorchConv(se_channels(c), 1, dtype=self.dtype, name="reduce")(s)))
        s = BatchNorm(self.dtype, name="expand_bn")(nn_layers.TorchConv(c, 1, dtype=self.dtype, name="expand")(s))
        return x * jax.nn.sigmoid(s)


class IDWUnit(nn.Module):
    """One inverted-bottleneck unit of `SuperResIDWE{e}K{k}` (half of a sub-layer):

        expand: 1x1 conv (in -> dw) + BN + ReLU
        dw:     k x k depthwise conv (dw, stride) + BN + ReLU      [se: squeeze-excite on dw channels]
        project: 1x1 conv (dw -> out) + BN
        shortcut: "none" (the scored network), "identity" (`ResBlock` with stride 1 and in == out) or
                  "proj" (`ResBlockProj`, or `ResBlock` with stride 2 or in != out: 1x1 conv with bias + BN)
        then ReLU (after the sum when there is a shortcut).
    """

    features: int
    dw_channels: int
    kernel_size: int
    stride: int = 1
    shortcut: str = "none"
    se: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        d = self.dw_channels
        y = ConvBN(d, 1, dtype=self.dtype, name="expand")(x)
        y = ConvBN(d, self.kernel_size, self.stride, groups=d, dtype=self.dtype, name="dw")(y)
        if self.se:
            y = SqueezeExcite(self.dtype, name="se")(y)
        y = ConvBN(self.features, 1, relu=False, dtype=self.dtype, name="project")(y)
        if self.shortcut == "proj":
            y = y + BatchNorm(self.dtype, name="proj_bn")(
                ProjConv(self.features, self.stride, self.dtype, name="proj")(x))
        elif self.shortcut == "identity":
            y = y + x
        elif self.shortcut != "none":
            raise InputError(f"IDWUnit: shortcut {self.shortcut!r}; expected 'none', 'identity' or 'proj'")
        return nn.relu(y)


class ClassifierHead(nn.Module):
    """Global average pooling and the `fc_linear` dense layer (with bias): logits."""

    num_classes: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        return nn_layers.TorchDense(self.num_classes, self.dtype, name="classifier")(jnp.mean(x, axis=(1, 2)))


NODE_TYPES = {"conv": ConvBN, "unit": IDWUnit}  # a SuperConvK{k}BNRELU sub-layer is one ConvBN


class ZenNASNetwork(nn.Module):
    """The standalone network: `plan` is a tuple of (name, node type, keyword tuple) from `zico_jax.spaces.zennas.plan`,
    applied in sequence, then the classifier head (named `head`)."""

    plan: tuple
    num_classes: int = 1000
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        for name, kind, kwargs in self.plan:
            x = NODE_TYPES[kind](**dict(kwargs), dtype=self.dtype, name=name)(x)
        return ClassifierHead(self.num_classes, self.dtype, name="head")(x)
