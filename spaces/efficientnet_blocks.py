"""Flax building blocks of ZiCo-BC's EfficientNet/DONNA-style spaces (`zico_jax.spaces.efficientnet`), and the plan
machinery shared with the FFNet space (`zico_jax.spaces.ffnet`).

A network of these spaces is a *plan*: a tuple of nodes `(name, fn, kwargs, inputs)`, value 0 being the image batch
and node k making value k + 1 (the tape's convention, `zico_jax.tape`). `name` is the node's key in the params
tree and `fn` a Flax module class built as `fn(**kwargs, dtype=dtype, name=name)`; a node with name None is a
parameter-free function of its inputs (`pack_maps`). The standalone network (`PlanNetwork`) and the engine's tape
(`plan_tape`) are built from the same plan, so a tape node's parameters are exactly the network's subtree at the
node's name, and the layer table (`plan_layers`) walks the same plan with analytic shapes.

Layer semantics (PyTorch defaults, as everywhere in zico-jax, `zico_jax.nn.layers`): bias-free convolutions with
U(+-1/sqrt(fan_in)) kernels and symmetric padding k // 2 (so stride 2 maps H to ceil(H / 2)); BatchNorm in train
mode, eps 1e-5; convolutions with a bias (`BiasConv`, the output layers of the heads) take PyTorch's default bias
init unless a `bias_value` is given (the focal-loss class prior).

Group convolution, "group size 32": `group_count(cin, cout)` splits the channels into groups of 32 where 32
divides gcd(cin, cout); otherwise into groups of the smallest divisor of the gcd that is >= 32 (one group, i.e. a
regular convolution, when gcd(cin, cout) <= 32). The default choice lists keep every grouped width a multiple of 32.

Example:
    >>> import jax, jax.numpy as jnp
    >>> block = MBConv(features=16, kernel_size=3, stride=2, expansion=4, conv_type="gc")
    >>> params = block.init(jax.random.key(0), jnp.ones((2, 8, 8, 16)))["params"]
    >>> params["spatial"]["conv"]["kernel"].shape  # 64 channels in 2 groups of 32
    (3, 3, 32, 64)
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from zico_jax.errors import InputError
from zico_jax.nn import layers as nn_layers
from zico_jax.nn.tape_nodes import TapeNode
from zico_jax.spaces.base import LayerInfo

GROUP_SIZE = 32
CONV_TYPES = ("dw", "gc")  # depthwise (the regular MBConv) | group convolution with 32 channels per group
ACTIVATIONS: dict[str, Callable] = {"relu": nn.relu, "silu": nn.silu, "none": lambda x: x}
FOCAL_PRIOR = 0.01  # RetinaNet / EfficientDet: class logits start at sigmoid^-1(0.01)


def group_count(cin: int, cout: int, group_size: int = GROUP_SIZE) -> int:
    """Groups of a 'group size 32' convolution from cin to cout channels (see the module docstring).

    >>> group_count(64, 64), group_count(96, 128), group_count(16, 16)
    (2, 1, 1)
    """
    common = math.gcd(cin, cout)
    size = next(s for s in range(min(group_size, common), common + 1) if common % s == 0)
    return common // size


def spatial_groups(channels: int, conv_type: str) -> int:
    """Groups of an MBConv's k x k convolution on `channels`: depthwise ("dw") or group size 32 ("gc")."""
    if conv_type == "dw":
        return channels
    if conv_type == "gc":
        return group_count(channels, channels)
    raise InputError(f"conv_type {conv_type!r}; expected one of {CONV_TYPES}")


def down(hw: int, stride: int) -> int:
    """Output size of a k x k convolution (odd k, padding k // 2): floor((H + 2(k//2) - k) / s) + 1 = ceil(H / s)."""
    return -(-hw // stride)


# ------------------------------------------------------------------------------------------------ layers


class ConvBN(nn.Module):
    """k x k conv (stride, groups, bias-free) -> BN (train mode) -> activation ("relu", "silu" or "none")."""

    features: int
    kernel_size: int
    stride: int = 1
    groups: int = 1
    act: str = "silu"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = nn_layers.TorchConv(self.features, self.kernel_size, self.stride, self.groups, self.dtype, name="conv")(x)
        return ACTIVATIONS[self.act](nn_layers.TrainBatchNorm(self.dtype, name="bn")(x))


class BiasConv(nn.Module):
    """k x k conv (stride 1, padding k // 2) with a bias: the heads' output layers (`nn.Conv2d(..., bias=True)`).
    The bias is PyTorch's default U(+-1/sqrt(fan_in)), or the constant `bias_value` when given."""

    features: int
    kernel_size: int = 1
    bias_value: Optional[float] = None
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, fan_in = self.kernel_size, x.shape[-1] * self.kernel_size**2
        kernel = self.param("kernel", nn_layers.torch_uniform_init(fan_in), (k, k, x.shape[-1], self.features),
                            self.dtype)
        bias_init = (nn_layers.torch_uniform_init(fan_in) if self.bias_value is None
                     else nn.initializers.constant(self.bias_value))
        bias = self.param("bias", bias_init, (self.features,), self.dtype)
        y = jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), (1, 1), ((k // 2, k // 2),) * 2,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias.astype(x.dtype)


class MBConv(nn.Module):
    """MBConv inverted residual block without squeeze-excite (EfficientNet / DONNA):

        expand:  1x1 conv (cin -> cin * expansion) + BN + SiLU      (absent when expansion == 1, as EfficientNet)
        spatial: k x k conv (stride; depthwise "dw" or group size 32 "gc") + BN + SiLU
        project: 1x1 conv (-> features) + BN                        (linear bottleneck)
        + identity shortcut when `residual`, stride 1 and cin == features.
    """

    features: int
    kernel_size: int
    stride: int = 1
    expansion: int = 4
    conv_type: str = "dw"
    residual: bool = True
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        mid = x.shape[-1] * self.expansion
        y = ConvBN(mid, 1, dtype=self.dtype, name="expand")(x) if self.expansion != 1 else x
        groups = spatial_groups(mid, self.conv_type)
        y = ConvBN(mid, self.kernel_size, self.stride, groups, dtype=self.dtype, name="spatial")(y)
        y = ConvBN(self.features, 1, act="none", dtype=self.dtype, name="project")(y)
        if self.residual and self.stride == 1 and x.shape[-1] == self.features:
            y = y + x
        return y


class ClassifierHead(nn.Module):
    """EfficientNet's head: 1x1 conv (-> head_channels) + BN + SiLU (skipped when head_channels is 0), global
    average pooling, dense layer (with bias) to the logits."""

    num_classes: int
    head_channels: int = 1280
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        if self.head_channels:
            x = ConvBN(self.head_channels, 1, dtype=self.dtype, name="conv")(x)
        return nn_layers.TorchDense(self.num_classes, self.dtype, name="classifier")(jnp.mean(x, axis=(-3, -2)))


# ------------------------------------------------------------------------------------------------ pyramids


def pack_maps(*maps):
    """Flatten (..., H, W, C) feature maps and concatenate them along the last axis: the tape's loss head takes
    ONE value, so multi-scale heads receive their inputs packed (and `unpack_maps` them with static shapes)."""
    return jnp.concatenate([m.reshape(m.shape[:-3] + (-1,)) for m in maps], axis=-1)


def unpack_maps(packed, shapes):
    """Inverse of `pack_maps` for maps of (H, W, C) `shapes`."""
    expected = sum(h * w * c for h, w, c in shapes)
    if packed.shape[-1] != expected:
        raise InputError(f"unpack_maps: {packed.shape[-1]} packed values; expected {expected} for feature maps "
                         f"{shapes} (do the images match the space's image_size?)")
    maps, start = [], 0
    for h, w, c in shapes:
        maps.append(packed[..., start:start + h * w * c].reshape(packed.shape[:-1] + (h, w, c)))
        start += h * w * c
    return maps


def upsample_nearest(x, hw):
    """Nearest-neighbour upsampling of (..., h, w, C) to (..., H, W, C) with h = ceil(H / f), w = ceil(W / f):
    each pixel repeated f times, then cropped (EfficientDet's BiFPN upsamples by nearest neighbour)."""
    fh, fw = -(-hw[0] // x.shape[-3]), -(-hw[1] // x.shape[-2])
    x = jnp.repeat(jnp.repeat(x, fh, axis=-3), fw, axis=-2)
    return x[..., :hw[0], :hw[1], :]


class DetectionHead(nn.Module):
    """EfficientDet-style head over three backbone maps (fine to coarse, packed): an FPN-lite neck and class / box
    conv heads per level.

        lateral_l: 1x1 conv (-> fpn_channels) + BN                             (l = 0, 1, 2: P3, P4, P5)
        top-down:  f_2 = lateral_2;  f_l = lateral_l + upsample_nearest(f_{l+1})
        fuse_l:    3x3 conv + BN + SiLU on f_l
        class_l:   head_depth x [3x3 conv + BN + SiLU], 3x3 conv with bias (-> A * K), bias -log((1 - 0.01) / 0.01)
        box_l:     head_depth x [3x3 conv + BN + SiLU], 3x3 conv with bias (-> A * 4)
    Output (B, sum_l H_l W_l A, K + 4): per anchor K class logits then 4 box offsets, anchors ordered by level,
    row, column, anchor. Unlike EfficientDet the head weights are not shared across levels (each layer then has
    one feature-map size, which ZiCo-BC's per-layer penalty needs); the neck is top-down only (no bottom-up path).
    """

    level_shapes: tuple  # ((H, W, C), ...) of the three backbone maps
    num_classes: int
    fpn_channels: int = 64
    head_depth: int = 3
    num_anchors: int = 9
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, packed):
        f, dtype = self.fpn_channels, self.dtype
        maps = unpack_maps(packed, self.level_shapes)
        lateral = [ConvBN(f, 1, act="none", dtype=dtype, name=f"lateral_{l}")(m) for l, m in enumerate(maps)]
        fused = [lateral[-1]]
        for l in range(len(maps) - 2, -1, -1):
            fused.insert(0, lateral[l] + upsample_nearest(fused[0], lateral[l].shape[-3:-1]))
        classes, boxes = [], []
        for l, x in enumerate(fused):
            x = ConvBN(f, 3, dtype=dtype, name=f"fuse_{l}")(x)
            c = b = x
            for d in range(self.head_depth):
                c = ConvBN(f, 3, dtype=dtype, name=f"class_{l}_{d}")(c)
                b = ConvBN(f, 3, dtype=dtype, name=f"box_{l}_{d}")(b)
            prior = -math.log((1 - FOCAL_PRIOR) / FOCAL_PRIOR)
            c = BiasConv(self.num_anchors * self.num_classes, 3, prior, dtype, name=f"class_{l}_out")(c)
            b = BiasConv(self.num_anchors * 4, 3, None, dtype, name=f"box_{l}_out")(b)
            classes.append(c.reshape(c.shape[:-3] + (-1, self.num_classes)))
            boxes.append(b.reshape(b.shape[:-3] + (-1, 4)))
        return jnp.concatenate([jnp.concatenate(classes, -2), jnp.concatenate(boxes, -2)], axis=-1)


# ------------------------------------------------------------------------------------------------ plans


class PlanNetwork(nn.Module):
    """The standalone network of a plan (see the module docstring); returns the last node's value."""

    plan: tuple
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        values = [x]
        for name, fn, kwargs, inputs in self.plan:
            args = [values[i] for i in inputs]
            values.append(fn(*args) if name is None else fn(**dict(kwargs), dtype=self.dtype, name=name)(*args))
        return values[-1]


def plan_tape(plan: tuple, dtype=jnp.float32) -> list:
    """The plan as `zico_jax.tape.TapeNode`s (the last node, the head, must be a module with one input)."""

    return [TapeNode(fn, tuple(inputs)) if name is None
            else TapeNode(fn(**dict(kwargs), dtype=dtype), tuple(inputs), (name,))
            for name, fn, kwargs, inputs in plan]


def conv_info(path, cin, cout, k, stride, hw, groups=1, bn=True, bias=False) -> LayerInfo:
    out = (down(hw[0], stride), down(hw[1], stride))
    return LayerInfo(path, "conv", cin, cout, k, stride, tuple(hw), out, groups, bn, bias)


def _conv_bn_layers(path, kw, shapes):
    (h, w, c), = shapes
    info = conv_info(f"{path}/conv", c, kw["features"], kw["kernel_size"], kw.get("stride", 1), (h, w),
                     kw.get("groups", 1))
    return [info], (*info.out_hw, kw["features"])


def _mbconv_layers(path, kw, shapes):
    (h, w, c), = shapes
    mid, k, stride = c * kw["expansion"], kw["kernel_size"], kw["stride"]
    out = [conv_info(f"{path}/expand/conv", c, mid, 1, 1, (h, w))] if kw["expansion"] != 1 else []
    out.append(conv_info(f"{path}/spatial/conv", mid, mid, k, stride, (h, w), spatial_groups(mid, kw["conv_type"])))
    out.append(conv_info(f"{path}/project/conv", mid, kw["features"], 1, 1, out[-1].out_hw))
    return out, (*out[-1].out_hw, kw["features"])


def _classifier_layers(path, kw, shapes):
    (h, w, c), = shapes
    out = []
    if kw["head_channels"]:
        out.append(conv_info(f"{path}/conv/conv", c, kw["head_channels"], 1, 1, (h, w)))
        c = kw["head_channels"]
    out.append(LayerInfo(f"{path}/classifier", "dense", c, kw["num_classes"], 1, 1, (1, 1), (1, 1), bias=True))
    return out, (1, 1, kw["num_classes"])


def _detection_layers(path, kw, shapes):
    f, a, k = kw["fpn_channels"], kw["num_anchors"], kw["num_classes"]
    out = []
    for l, (h, w, c) in enumerate(kw["level_shapes"]):
        out.append(conv_info(f"{path}/lateral_{l}/conv", c, f, 1, 1, (h, w)))
    for l, (h, w, _) in enumerate(kw["level_shapes"]):
        out.append(conv_info(f"{path}/fuse_{l}/conv", f, f, 3, 1, (h, w)))
        for d in range(kw["head_depth"]):
            out.append(conv_info(f"{path}/class_{l}_{d}/conv", f, f, 3, 1, (h, w)))
            out.append(conv_info(f"{path}/box_{l}_{d}/conv", f, f, 3, 1, (h, w)))
        out.append(conv_info(f"{path}/class_{l}_out", f, a * k, 3, 1, (h, w), bn=False, bias=True))
        out.append(conv_info(f"{path}/box_{l}_out", f, a * 4, 3, 1, (h, w), bn=False, bias=True))
    anchors = sum(h * w * a for h, w, _ in kw["level_shapes"])
    return out, (1, anchors, k + 4)


# Layer-table functions per module class: (path, kwargs, input (H, W, C) shapes) -> (LayerInfos, output shape).
# Other spaces (zico_jax.spaces.ffnet_blocks) add theirs.
LAYER_TABLES: dict[type, Callable] = {
    ConvBN: _conv_bn_layers, MBConv: _mbconv_layers, ClassifierHead: _classifier_layers,
    DetectionHead: _detection_layers,
}


def plan_layers(plan: tuple, image_hw: tuple[int, int]) -> list[LayerInfo]:
    """Every Conv/Dense layer of a plan's network for (H, W, 3) images, in forward order, with in/out sizes."""
    shapes, out = [(*image_hw, 3)], []
    for name, fn, kwargs, inputs in plan:
        if name is None:  # a packing function: the heads read their level shapes from their own kwargs
            shapes.append(tuple(shapes[i] for i in inputs))
            continue
        infos, shape = LAYER_TABLES[fn](name, dict(kwargs), [shapes[i] for i in inputs])
        out += infos
        shapes.append(shape)
    return out
