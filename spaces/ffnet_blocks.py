"""Flax building blocks of ZiCo-BC's FFNet-style segmentation space (`zico_jax.spaces.ffnet`), on the plan machinery of
`zico_jax.spaces.efficientnet_blocks` (a plan node's parameters are the network's subtree at the node's name).

Semantics as every zico-jax space: PyTorch-default init, bias-free convolutions with padding k // 2, BatchNorm in
train mode (eps 1e-5), ReLU (FFNet's ResNet activations). Group convolutions use `group_count` (group size 32).

Example:
    >>> import jax, jax.numpy as jnp
    >>> block = BasicBlock(features=64, stride=2, conv_type="gc")
    >>> params = block.init(jax.random.key(0), jnp.ones((2, 8, 8, 32)))["params"]
    >>> sorted(params), params["conv2"]["conv"]["kernel"].shape  # 64 -> 64 in 2 groups of 32
    (['conv1', 'conv2', 'shortcut'], (3, 3, 32, 64))
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from zico_jax.errors import InputError
from zico_jax.spaces import efficientnet_blocks

CONV_TYPES = ("conv", "gc")  # regular 3x3 convolutions | group convolutions with 32 channels per group


def block_groups(cin: int, cout: int, conv_type: str) -> int:
    """Groups of a basic block's 3x3 conv from cin to cout channels: 1 ("conv") or group size 32 ("gc")."""
    if conv_type == "conv":
        return 1
    if conv_type == "gc":
        return efficientnet_blocks.group_count(cin, cout)
    raise InputError(f"conv_type {conv_type!r}; expected one of {CONV_TYPES}")


class Stem(nn.Module):
    """Two 3x3 stride-2 conv + BN + ReLU (3 -> channels -> channels): the image at stride 4."""

    channels: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = efficientnet_blocks.ConvBN(self.channels, 3, 2, act="relu", dtype=self.dtype, name="conv0")(x)
        return efficientnet_blocks.ConvBN(self.channels, 3, 2, act="relu", dtype=self.dtype, name="conv1")(x)


class BasicBlock(nn.Module):
    """ResNet basic block (FFNet's backbones):

        conv1: 3x3 conv (cin -> features, stride; groups) + BN + ReLU
        conv2: 3x3 conv (features -> features; groups) + BN
        shortcut: identity, or 1x1 conv (stride) + BN when the stride is 2 or the width changes (ResNet's
                  downsample, never grouped)
        out = ReLU(conv2 + shortcut)
    """

    features: int
    stride: int = 1
    conv_type: str = "conv"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        cin, f = x.shape[-1], self.features
        y = efficientnet_blocks.ConvBN(f, 3, self.stride, block_groups(cin, f, self.conv_type), "relu", self.dtype,
                                       name="conv1")(x)
        y = efficientnet_blocks.ConvBN(f, 3, 1, block_groups(f, f, self.conv_type), "none", self.dtype, name="conv2")(y)
        if self.stride != 1 or cin != f:
            x = efficientnet_blocks.ConvBN(f, 1, self.stride, act="none", dtype=self.dtype, name="shortcut")(x)
        return nn.relu(y + x)


class SegmentationHead(nn.Module):
    """FFNet "up"-style simple head over the four stage outputs (fine to coarse, packed by `pack_maps`):

        proj_i:  1x1 conv (-> head_channels) + BN + ReLU on stage i's output
        sum:     proj_0 + sum_{i>0} bilinear_upsample(proj_i to stage 0's size)
        fuse:    3x3 conv + BN + ReLU
        classifier: 1x1 conv with bias (-> num_classes), then bilinear upsampling to the image size
    Output: (B, H, W, num_classes) logits. Bilinear resizes use half-pixel centres (`jax.image.resize`, PyTorch's
    `align_corners=False`).
    """

    level_shapes: tuple  # ((H, W, C), ...) of the four stage outputs
    image_hw: tuple
    num_classes: int = 19
    head_channels: int = 128
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, packed):
        maps = efficientnet_blocks.unpack_maps(packed, self.level_shapes)
        h0, w0, _ = self.level_shapes[0]
        total = None
        for i, m in enumerate(maps):
            y = efficientnet_blocks.ConvBN(self.head_channels, 1, act="relu", dtype=self.dtype, name=f"proj_{i}")(m)
            if y.shape[-3:-1] != (h0, w0):
                y = jax.image.resize(y, y.shape[:-3] + (h0, w0, y.shape[-1]), "bilinear")
            total = y if total is None else total + y
        y = efficientnet_blocks.ConvBN(self.head_channels, 3, act="relu", dtype=self.dtype, name="fuse")(total)
        y = efficientnet_blocks.BiasConv(self.num_classes, 1, dtype=self.dtype, name="classifier")(y)
        return jax.image.resize(y, y.shape[:-3] + (*self.image_hw, self.num_classes), "bilinear")


def _stem_layers(path, kw, shapes):
    (h, w, c), = shapes
    first = efficientnet_blocks.conv_info(f"{path}/conv0/conv", c, kw["channels"], 3, 2, (h, w))
    second = efficientnet_blocks.conv_info(f"{path}/conv1/conv", kw["channels"], kw["channels"], 3, 2, first.out_hw)
    return [first, second], (*second.out_hw, kw["channels"])


def _basic_block_layers(path, kw, shapes):
    (h, w, c), = shapes
    f, stride, kind = kw["features"], kw["stride"], kw["conv_type"]
    conv1 = efficientnet_blocks.conv_info(f"{path}/conv1/conv", c, f, 3, stride, (h, w), block_groups(c, f, kind))
    out = [conv1,
           efficientnet_blocks.conv_info(f"{path}/conv2/conv", f, f, 3, 1, conv1.out_hw, block_groups(f, f, kind))]
    if stride != 1 or c != f:
        out.append(efficientnet_blocks.conv_info(f"{path}/shortcut/conv", c, f, 1, stride, (h, w)))
    return out, (*conv1.out_hw, f)


def _segmentation_layers(path, kw, shapes):
    f, (h0, w0, _) = kw["head_channels"], kw["level_shapes"][0]
    out = [efficientnet_blocks.conv_info(f"{path}/proj_{i}/conv", c, f, 1, 1, (h, w))
           for i, (h, w, c) in enumerate(kw["level_shapes"])]
    out.append(efficientnet_blocks.conv_info(f"{path}/fuse/conv", f, f, 3, 1, (h0, w0)))
    out.append(efficientnet_blocks.conv_info(f"{path}/classifier", f, kw["num_classes"], 1, 1, (h0, w0),
                                             bn=False, bias=True))
    return out, (*kw["image_hw"], kw["num_classes"])


efficientnet_blocks.LAYER_TABLES.update({Stem: _stem_layers, BasicBlock: _basic_block_layers,
                                         SegmentationHead: _segmentation_layers})
