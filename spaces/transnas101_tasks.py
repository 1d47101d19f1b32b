"""TransNAS-Bench-101's seven tasks: decoders (heads), training losses and synthetic targets; shared layers.

Source: the official code (yawen-d/TransNASBench: `configs/train_from_scratch/<task>/config.py`,
`lib/models/task_models/decoder.py`, `lib/losses/all.py`, `lib/data/load_ops.py`), as NASLib's
`search_spaces/transbench101/tnb101/model_builder.py` rebuilds it. Encoder output: (C_enc, h, w).

  task            decoder (head)                          outputs              loss (what ZiCo differentiates)
  class_scene     avgpool + fc                            47 classes (a)       soft-label CE (b)
  class_object    avgpool + fc                            75 classes (a)       soft-label CE (b)
  jigsaw          encoder per tile (x9, shared weights),  1000 permutations    softmax CE (integer labels)
                  avgpool, concat, fc(9*C_enc -> 1000)
  room_layout     avgpool + fc                            9 values             MSE (mean)
  autoencoder     GenerativeDecoder, tanh                 3 x H x W            L1 (mean) (c)
  normal          GenerativeDecoder, tanh                 3 x H x W            L1 (mean) (c)
  segmentsemantic SegmentationDecoder                     17 x H x W           pixel-wise CE, no ignored label (d)

(a) `load_ops.load_class_{scene,object}_logits`: "transnas-bench data: 63 cls -> 47 cls" / "100 cls -> 75 cls"
    (configs: target_dim 47 / 75). NASLib's model_builder (and its zero-cost tables) use the Taskonomy subsets
    63 / 100: pass num_classes= to reproduce those networks.
(b) `SoftmaxCrossEntropyWithLogits`: -sum(t * log(softmax(z) + 1e-5)), mean over the batch; targets are Taskonomy's
    soft label distributions, renormalised over the kept classes.
(c) The official generator loss is 0.99 * L1 + 0.01 * GAN loss of a separate discriminator; only the L1 term
    involves the evaluated network alone (NASLib's `get_loss_fn` uses `nn.L1Loss` too). ZiCo is invariant to
    the 0.99 scale.
(d) `load_ops.semantic_segment_label` maps label 0 to 1 and subtracts 1: 17 classes 0..16, none ignored.

Decoders: GenerativeDecoder = 14 layers (conv3x3 + BN + LeakyReLU(0.2), some as stride-2 transposed convs), from
1024 channels down to 16, then conv3x3 -> 3 + tanh; SegmentationDecoder = conv 1024, (6 - n) halving convs,
(n - 1) halving deconvs, one deconv, conv3x3 -> 17; n = log2(image size / h) upsamplings (2..6, as official).
Decoder widths are the official ones times `base_channels / 64` (exact at the default 64; tests shrink them).

Initialisation as official: encoder convs kaiming-normal (fan_out, relu) (`MacroNet._kaiming_init`), BN scale 1
shift 0; decoder convs, transposed convs and linear layers keep PyTorch defaults (with bias). BN in train mode.

Synthetic targets (`make_targets`; Taskonomy is not available offline) from CIFAR images xs (N, B, H, W, C),
normalised, and labels (N, B):
  class_scene / class_object: the CIFAR class (modulo the 47 / 75 outputs; CIFAR-10 uses classes 0..9) as a
    one-hot distribution: Taskonomy's soft labels are not available.
  jigsaw: a permutation index per image, drawn by a fixed seed (0) from the image's position (n, b) only. The
    network tiles the image in raster order; the space's `inputs(xs)` is `jigsaw_puzzle(xs)`, which moves the
    tiles by that permutation, so label and input agree (the correlation run applies it before the targets).
    The permutation set is a seeded stand-in for the official `permutations_hamming_max_1000.npy`.
  room_layout: a fixed random projection (seed 0) of the 3x3 average-pooled image (27 -> 9 values).
  autoencoder: the input image itself (real: officially input and target are the same normalised image).
  normal: a normal map from the grey image's central-difference gradients, n = (-gx, -gy, 1)/|.|, mapped to
    [0, 1] as Taskonomy stores normals.
  segmentsemantic: colour quantisation: each pixel's class is its nearest of 17 fixed random colours (seed 0).

Example:
    >>> ys = make_targets("normal", xs, labels)      # (N, B, H, W, 3) in [0, 1]
    >>> float(LOSSES["normal"](outputs, ys[0]))
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from zico_jax.errors import DataNotFoundError, InputError
from zico_jax.nn.layers import uniform
from zico_jax.nn.losses import cross_entropy
from zico_jax.spaces.base import LayerInfo

BN_EPS = 1e-5


# ------------------------------------------------------------------------------------------------ losses


def soft_cross_entropy(logits, targets):
    """TransNAS's SoftmaxCrossEntropyWithLogits: -sum(t * log(softmax(z) + 1e-5)), mean over the batch."""
    return -(targets * jnp.log(jax.nn.softmax(logits, axis=-1) + 1e-5)).sum(-1).mean()


def mse(outputs, targets):
    """nn.MSELoss(): mean squared error over every element."""
    return jnp.mean(jnp.square(outputs - targets))


def l1(outputs, targets):
    """nn.L1Loss(): mean absolute error over every element."""
    return jnp.mean(jnp.abs(outputs - targets))


def pixel_cross_entropy(logits, labels):
    """nn.CrossEntropyLoss() on (B, H, W, K) logits and (B, H, W) labels: mean over every pixel."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@dataclasses.dataclass(frozen=True)
class Task:
    head: str  # "ff" | "siamese" | "generative" | "segmentation"
    outputs: int  # classes, values or output channels
    loss: Callable
    image_size: int  # the official input size


TASKS = {
    "class_scene": Task("ff", 47, soft_cross_entropy, 256),
    "class_object": Task("ff", 75, soft_cross_entropy, 256),
    "jigsaw": Task("siamese", 1000, cross_entropy, 255),  # 255 -> 3x3 cells of 85 -> 64-pixel tiles
    "room_layout": Task("ff", 9, mse, 256),
    "autoencoder": Task("generative", 3, l1, 256),
    "normal": Task("generative", 3, l1, 256),
    "segmentsemantic": Task("segmentation", 17, pixel_cross_entropy, 256),
}
LOSSES = {name: t.loss for name, t in TASKS.items()}


def get_task(task: str) -> Task:
    if task not in TASKS:
        raise InputError(f"TransNAS-Bench-101: unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return TASKS[task]


# ------------------------------------------------------------------------------------------------ layers


def _uniform(bound):
    return lambda key, shape, dtype=jnp.float32: uniform(key, shape, dtype, -bound, bound)


def _flat(x):
    """(..., H, W, C) -> (prod(...), H, W, C): jigsaw features carry a tile axis (B, 9, H, W, C)."""
    return x.reshape((-1,) + x.shape[-3:])


class Conv(nn.Module):
    """Conv2d, padding k//2. weight_init "kaiming": normal(0, sqrt(2 / (out * k * k))), the encoder's official init;
    "torch": PyTorch's default U(+-1/sqrt(fan_in)) for kernel and bias (decoders)."""

    features: int
    kernel_size: int = 3
    stride: int = 1
    bias: bool = False
    weight_init: str = "kaiming"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, cin = self.kernel_size, x.shape[-1]
        if self.weight_init == "kaiming":
            w_init = lambda key, s, d: jax.random.normal(key, s, d) * math.sqrt(2.0 / (self.features * k * k))  # noqa
        else:
            w_init = _uniform(1.0 / math.sqrt(cin * k * k))
        kernel = self.param("kernel", w_init, (k, k, cin, self.features), self.dtype)
        p = k // 2
        y = jax.lax.conv_general_dilated(_flat(x), kernel.astype(x.dtype), (self.stride, self.stride),
                                         ((p, p), (p, p)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.bias:
            y = y + self.param("bias", _uniform(1.0 / math.sqrt(cin * k * k)), (self.features,), self.dtype)
        return y.reshape(x.shape[:-3] + y.shape[1:])


class Deconv(nn.Module):
    """ConvTranspose2d(k=3, stride 2, padding 1, output_padding 1, bias): doubles H and W. Kernel (3, 3, in, out);
    PyTorch's default init computes fan_in from weight.size(1) = out channels. `transposed_conv = True` marks it
    for `zico_jax.proxies.zico` (not counted by ZiCo by default, as the official code)."""

    transposed_conv = True  # a class attribute, not a module field
    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        bound = 1.0 / math.sqrt(self.features * 9)
        kernel = self.param("kernel", _uniform(bound), (3, 3, x.shape[-1], self.features), self.dtype)
        # = conv of the 2x-dilated input, padded (k-1-p, k-1-p+output_padding), with the flipped kernel
        y = jax.lax.conv_general_dilated(_flat(x), kernel[::-1, ::-1].astype(x.dtype), (1, 1), ((1, 2), (1, 2)),
                                         lhs_dilation=(2, 2), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = y + self.param("bias", _uniform(bound), (self.features,), self.dtype)
        return y.reshape(x.shape[:-3] + y.shape[1:])


class BN(nn.Module):
    """BatchNorm2d in train mode (biased variance, eps 1e-5 unless `eps` says otherwise). With a tile axis
    (B, 9, H, W, C) each tile position has its own statistics, as the official SiameseNet calls the encoder once
    per tile."""

    dtype: jnp.dtype = jnp.float32
    eps: float = BN_EPS

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), self.dtype)
        bias = self.param("bias", nn.initializers.zeros, (c,), self.dtype)
        axes = (0, 2, 3) if x.ndim == 5 else tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias


class ConvLayer(nn.Module):
    """Decoder block: conv3x3 (bias) [+ BN] + LeakyReLU(0.2) | tanh | nothing; `up` makes it a Deconv."""

    features: int
    norm: bool = True
    act: str = "leaky"
    up: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        if self.up:
            x = Deconv(self.features, self.dtype, name="conv")(x)
        else:
            x = Conv(self.features, 3, 1, True, "torch", self.dtype, name="conv")(x)
        if self.norm:
            x = BN(self.dtype, name="bn")(x)
        return {"leaky": lambda v: nn.leaky_relu(v, 0.2), "tanh": jnp.tanh, "none": lambda v: v}[self.act](x)


# ------------------------------------------------------------------------------------------------ decoders


def width(channels: int, base: int) -> int:
    """An official decoder width at base channels `base` (exact at 64)."""
    return max(1, channels * base // 64)


def num_upsample(head: str, in_hw: int, image_size: int) -> int:
    n = int(math.log2(image_size / max(in_hw, 1))) if in_hw else 0
    if in_hw * 2**n != image_size or not 2 <= n <= 6:
        raise InputError(f"TransNAS-Bench-101 {head} decoder: it upsamples the {in_hw}x{in_hw} encoder output "
                         f"by 2**n with n in 2..6, which cannot give the {image_size}x{image_size} target; choose an "
                         f"image size equal to {in_hw} * 2**n")
    return n


def decoder_plan(head: str, outputs: int, base: int, n_up: int) -> list[tuple[int, bool, bool, str]]:
    """[(out channels, upsample, BN, activation)] of the pixel decoders, in order (official `decoder.py`)."""
    w = lambda c: width(c, base)  # noqa: E731
    if head == "generative":
        plan = [(w(1024), False), (w(1024), False), (w(512), n_up == 6), (w(512), False), (w(256), n_up >= 5),
                (w(128), False), (w(64), n_up >= 4), (w(64), False), (w(32), n_up >= 3), (w(32), False),
                (w(16), True), (w(32), False), (w(16), True)]
        return [(c, up, True, "leaky") for c, up in plan] + [(outputs, False, False, "tanh")]
    ch, plan = 1024, [(w(1024), False)]
    for _ in range(6 - n_up):
        ch //= 2
        plan.append((w(ch), False))
    for _ in range(n_up - 1):
        ch //= 2
        plan.append((w(ch), True))
    plan.append((w(ch), True))
    return [(c, up, True, "leaky") for c, up in plan] + [(outputs, False, False, "none")]


class Decoder(nn.Module):
    """A task head (`Task.head`: ff | siamese | generative | segmentation) on encoder features (B, h, w, C) (siamese:
    (B, 9, h, w, C)); see the module docstring. Keyed by the head, not the task, so that tasks with the same head
    (autoencoder and normal) share compiled programs."""

    head: str
    outputs: int
    base: int = 64
    image_size: int = 256
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        head = self.head
        if head in ("ff", "siamese"):
            # siamese: torch.cat of the 9 tile encodings on channels, then avgpool: feature index = tile * C + c
            x = jnp.mean(x, axis=(-3, -2)).reshape(x.shape[0], -1)
            return _Dense(self.outputs, self.dtype, name="fc")(x)
        n_up = num_upsample(head, x.shape[-2], self.image_size)
        for i, (c, up, norm, act) in enumerate(decoder_plan(head, self.outputs, self.base, n_up)):
            name = f"conv{i + 1}" if head == "generative" else f"model_{i}"
            x = ConvLayer(c, norm, act, up, self.dtype, name=name)(x)
        return x


class _Dense(nn.Module):
    """nn.Linear with PyTorch's default init (kernel and bias U(+-1/sqrt(fan_in)))."""

    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        bound = 1.0 / math.sqrt(x.shape[-1])
        kernel = self.param("kernel", _uniform(bound), (x.shape[-1], self.features), self.dtype)
        return x @ kernel.astype(x.dtype) + self.param("bias", _uniform(bound), (self.features,), self.dtype)


@dataclasses.dataclass(frozen=True)
class TransposedConvInfo(LayerInfo):
    """A stride-2 transposed convolution: each input pixel meets the whole kernel once. Not counted by ZiCo by
    default (`LayerInfo.transposed`)."""

    transposed: bool = True

    @property
    def macs(self) -> int:
        return self.weight_count * self.in_hw[0] * self.in_hw[1]


def decoder_layers(head: str, outputs: int, channels: int, hw: int, base: int, image_size: int,
                   prefix: str = "decoder") -> list[LayerInfo]:
    """The decoder's Conv/Dense layers on a (channels, hw, hw) encoding (siamese: 9 of them)."""
    if head in ("ff", "siamese"):
        cin = channels * (9 if head == "siamese" else 1)
        return [LayerInfo(f"{prefix}/fc", "dense", cin, outputs, 1, 1, (1, 1), (1, 1), bias=True)]
    out, n_up = [], num_upsample(head, hw, image_size)
    for i, (c, up, norm, _) in enumerate(decoder_plan(head, outputs, base, n_up)):
        name = f"{prefix}/conv{i + 1}/conv" if head == "generative" else f"{prefix}/model_{i}/conv"
        new = hw * 2 if up else hw
        cls = TransposedConvInfo if up else LayerInfo
        out.append(cls(name, "conv", channels, c, 3, 1, (hw, hw), (new, new), bn=norm, bias=True))
        channels, hw = c, new
    return out


# ------------------------------------------------------------------------------------------------ jigsaw


def tile_size(image_size: int) -> int:
    """Official: a 255-pixel image, 3x3 cells of 85, a 64-pixel crop per cell; scaled to other sizes."""
    return max(1, (image_size // 3) * 64 // 85)


def jigsaw_tiles(x):
    """(..., H, W, C) -> (..., 9, t, t, C): the centred t-pixel crop of each of the 3x3 cells, raster order.
    (Official training crops at a random offset inside each cell; the centre keeps inputs deterministic.)"""
    cell = x.shape[-3] // 3
    t = tile_size(x.shape[-3])
    off = (cell - t) // 2
    tiles = [x[..., r * cell + off: r * cell + off + t, c * cell + off: c * cell + off + t, :]
             for r in range(3) for c in range(3)]
    return jnp.stack(tiles, axis=-4)


def permutations(count: int = 1000, seed: int = 0) -> np.ndarray:
    """`count` distinct permutations of the 9 tiles, the identity first (seeded stand-in for the official set)."""
    rng, perms, seen = np.random.default_rng(seed), [tuple(range(9))], {tuple(range(9))}
    while len(perms) < count:
        p = tuple(int(v) for v in rng.permutation(9))
        if p not in seen:
            seen.add(p)
            perms.append(p)
    return np.array(perms, np.int32)


def jigsaw_labels(shape: tuple[int, int], classes: int = 1000, seed: int = 0) -> np.ndarray:
    """The permutation index of each image position (n, b): depends on the shape and seed only."""
    return np.random.default_rng(seed).integers(0, classes, shape).astype(np.int32)


def jigsaw_puzzle(xs: np.ndarray, classes: int = 1000, seed: int = 0) -> np.ndarray:
    """xs (N, B, H, W, C) with the 3x3 cells moved so that tile k of the result is cell perm[k] of the input
    (perm = the permutation that `make_targets('jigsaw', ...)` names): inputs consistent with those labels."""
    xs = np.array(xs, copy=True)
    perms, labels = permutations(classes, seed), jigsaw_labels(xs.shape[:2], classes, seed)
    cell = xs.shape[2] // 3
    src = xs.copy()
    for n, b in np.ndindex(*labels.shape):
        for k, pos in enumerate(perms[labels[n, b]]):
            (r, c), (pr, pc) = divmod(k, 3), divmod(int(pos), 3)
            xs[n, b, r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = \
                src[n, b, pr * cell:(pr + 1) * cell, pc * cell:(pc + 1) * cell]
    return xs


# ------------------------------------------------------------------------------------------------ targets


def make_targets(task: str, xs, labels, outputs: int | None = None) -> np.ndarray:
    """Synthetic targets of `task` for CIFAR mini-batches (see the module docstring for what each one is)."""
    t = get_task(task)
    outputs = t.outputs if outputs is None else outputs
    xs, labels = np.asarray(xs), np.asarray(labels)
    if xs.ndim != 5 or labels.shape != xs.shape[:2]:
        raise InputError(f"TransNAS-Bench-101 targets: expected xs (N, B, H, W, C) and labels (N, B); got {xs.shape} "
                         f"and {labels.shape}")
    dtype = xs.dtype if np.issubdtype(xs.dtype, np.floating) else np.float32
    if t.head == "ff" and task != "room_layout":
        return np.eye(outputs, dtype=dtype)[labels % outputs]
    if task == "jigsaw":
        return jigsaw_labels(labels.shape, outputs)
    if task == "room_layout":
        n, b, h, w, c = xs.shape
        pooled = xs[:, :, : h // 3 * 3, : w // 3 * 3].reshape(n, b, 3, h // 3, 3, w // 3, c).mean((3, 5))
        proj = np.random.default_rng(0).normal(size=(9 * c, outputs)) / math.sqrt(9 * c)
        return (pooled.reshape(n, b, -1) @ proj).astype(dtype)
    if task == "autoencoder":
        return xs.astype(dtype)
    if task == "normal":
        grey = xs.mean(-1)
        gy, gx = np.gradient(grey, axis=(2, 3))
        n = np.stack([-gx, -gy, np.ones_like(grey)], -1)
        return ((n / np.linalg.norm(n, axis=-1, keepdims=True) + 1) / 2).astype(dtype)
    palette = np.random.default_rng(0).normal(size=(outputs, xs.shape[-1]))
    return np.argmin(((xs[..., None, :] - palette) ** 2).sum(-1), axis=-1).astype(np.int32)


# ------------------------------------------------------------------------------------------------ real data


def taskonomy_files(root: str | os.PathLike, task: str, buildings=None) -> list[tuple[pathlib.Path, pathlib.Path]]:
    """(rgb image, label) file pairs of a Taskonomy folder laid out as TransNAS-Bench-101 reads it:

        <root>/<building>/rgb/point_<i>_view_<j>_domain_rgb.png
        <root>/<building>/<domain>/point_<i>_view_<j>_domain_<domain>.<ext>

    with (domain, ext) = class_object/class_scene/room_layout: npy, normal/segmentsemantic: png, and the rgb image
    itself for autoencoder and jigsaw (`taskonomy_dataset.DOMAIN_DATA_SOURCE`). `buildings`: names, or a
    TransNAS split file (`{"filename_list": [...]}` of '<building>/...' entries); default every building.
    Raises DataNotFoundError when the folder or the files are missing.
    """
    get_task(task)
    domain, ext = {"class_object": ("class_object", "npy"), "class_scene": ("class_scene", "npy"),
                   "room_layout": ("room_layout", "npy"), "normal": ("normal", "png"),
                   "segmentsemantic": ("segmentsemantic", "png")}.get(task, ("rgb", "png"))
    root = pathlib.Path(root).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(f"Taskonomy folder {root} not found (TransNAS-Bench-101 real data; see "
                                f"taskonomy_files for the layout)")
    if isinstance(buildings, (str, os.PathLike)):
        buildings = [str(e).split("/")[0] for e in json.loads(pathlib.Path(buildings).read_text())["filename_list"]]
    names = sorted(buildings) if buildings else sorted(p.name for p in root.iterdir() if (p / "rgb").is_dir())
    pairs = []
    for name in names:
        for rgb in sorted((root / name / "rgb").glob("*_domain_rgb.png")):
            label = root / name / domain / rgb.name.replace("_domain_rgb.png", f"_domain_{domain}.{ext}")
            if label.exists():
                pairs.append((rgb, label))
    if not pairs:
        raise DataNotFoundError(f"no Taskonomy rgb/{domain} file pairs under {root} for task {task!r}")
    return pairs
