"""ZiCo-BC's EfficientNet / DONNA-style backbone spaces: classification ("efficientnet_cls") and EfficientDet-style
detection ("efficientnet_det").

ZiCo-BC (Bhardwaj et al., "ZiCo-BC: A Bias Corrected Zero-Shot NAS for Vision Tasks", ICCV 2023 workshops) searches
an EfficientNet/DONNA-like backbone per stage over the kernel size, the width, the depth and the convolution type
(depthwise MBConv or group convolution with group size 32). The paper gives no table of choice lists; the defaults
below are ours, chosen around EfficientNet-B0 (documented, overridable by the `stages` option).

Genotype: one `k{kernel}_c{channels}_r{repeats}_{type}` per stage, stages joined by '|', e.g. for the 5 default
stages

    k3_c16_r1_dw|k3_c24_r2_dw|k5_c40_r2_gc|k3_c112_r3_dw|k5_c320_r4_gc

  kernel in (3, 5); channels from the stage's list; repeats (MBConv blocks) from the stage's list; type "dw"
  (depthwise k x k, the regular MBConv) or "gc" (k x k group convolution, 32 channels per group).

Network (`zico_jax.spaces.efficientnet_blocks`): stem 3x3 conv stride 2 (-> stem_channels) + BN + SiLU; per stage
`repeats` MBConv blocks (expand 1x1 by the stage's fixed expansion, k x k spatial conv with the stage's stride on the
first block, project 1x1, BN after each, SiLU after the first two, identity shortcut when the shape is kept, no
squeeze-excite); then the task head:
  * cls: 1x1 conv (-> head_channels, 1280) + BN + SiLU, global average pooling, dense with bias; loss: softmax
    cross-entropy on the class labels;
  * det: `DetectionHead` over the outputs of the last three stages (strides 8, 16, 32 with the default stages):
    FPN-lite top-down neck (1x1 laterals, nearest upsampling and addition, one 3x3 conv per level) and, per level,
    head_depth x 3x3 conv towers for classes and boxes, with num_anchors (9) anchors per cell; loss: EfficientDet's
    `zico_jax.nn.losses.detection_loss` = sigmoid focal loss (alpha 0.25, gamma 2) / #positives + 50 x Huber(delta 0.1)
    box loss over positive anchors / (4 #positives).

Default stages (stride, expansion, channel choices, repeat choices), after the stem's 32 channels at stride 2:

    0: 1, 1, (16, 24),              (1, 2)          -> stride 2
    1: 2, 4, (24, 32, 40),          (1, 2, 3)       -> stride 4
    2: 2, 4, (40, 48, 64),          (1, 2, 3, 4)    -> stride 8   (P3 of the detection head)
    3: 2, 4, (80, 96, 112, 128),    (1, 2, 3, 4)    -> stride 16  (P4)
    4: 2, 4, (160, 192, 256, 320),  (1, 2, 3, 4)    -> stride 32  (P5)

Widths are multiples of 8 and expansions 4 (or 1 on the 32-channel stem), so every grouped width is a multiple of
32 and "gc" has exactly 32 channels per group (`efficientnet_blocks.group_count`).

Choices where the paper is silent (ours): the stage table above; SiLU activations and PyTorch-default init, BN in
train mode (eps 1e-5) as in all zico-jax spaces; no squeeze-excite; head weights not shared across pyramid levels;
class-output bias initialised to the focal-loss prior -log(99); detection images 512 and 90 classes by default.

Synthetic detection targets (`targets`; the offline data are CIFAR images with one label each): at every level the
num_anchors anchors of the centre cell (row H_l // 2, column W_l // 2) hold the image's class (label mod
num_classes, one-hot) with box offsets 0 (the object is the anchor itself); every other anchor is background (all
zeros). ZiCo only needs a loss with a gradient.

Counts: `layers(g)` lists every Conv/Dense layer; FLOPs are multiply-accumulates of those layers (BN, activations,
pooling, upsampling and additions not counted); params are all weights, biases and BN affine parameters.

`default_beta`: ZiCo-BC's bias-correction exponent beta recommended by the paper for the task: 1.0 for image
classification and object detection (2.0 for semantic segmentation, `zico_jax.spaces.ffnet`).

Example:
    >>> space = EfficientNetClsSpace(num_classes=10, image_size=32)
    >>> g = space.parse("k3_c16_r1_dw|k3_c24_r2_dw|k5_c40_r2_gc|k3_c112_r3_dw|k5_c320_r4_gc")
    >>> str(g)
    'k3_c16_r1_dw|k3_c24_r2_dw|k5_c40_r2_gc|k3_c112_r3_dw|k5_c320_r4_gc'
    >>> space.decode(space.encode(g)) == g
    True
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from zico_jax.errors import InputError
from zico_jax.nn.losses import cross_entropy, detection_loss
from zico_jax.spaces import efficientnet_blocks
from zico_jax.spaces.base import GenotypeError, LayerInfo, Space, register_space
from zico_jax.spaces.stage_codec import StageChoiceCodec

KERNELS = (3, 5)
_STAGE_RE = re.compile(r"k(\d+)_c(\d+)_r(\d+)_([a-z]+)")


@dataclasses.dataclass(frozen=True)
class StageChoices:
    """One stage of the space: fixed stride and expansion, searched channels and repeats (kernel, type too)."""

    stride: int
    expansion: int
    channels: tuple[int, ...]
    repeats: tuple[int, ...]


DEFAULT_STAGES = (
    StageChoices(1, 1, (16, 24), (1, 2)),
    StageChoices(2, 4, (24, 32, 40), (1, 2, 3)),
    StageChoices(2, 4, (40, 48, 64), (1, 2, 3, 4)),
    StageChoices(2, 4, (80, 96, 112, 128), (1, 2, 3, 4)),
    StageChoices(2, 4, (160, 192, 256, 320), (1, 2, 3, 4)),
)


@dataclasses.dataclass(frozen=True)
class StageGene:
    kernel: int
    channels: int
    repeats: int
    conv_type: str

    def __str__(self) -> str:
        return f"k{self.kernel}_c{self.channels}_r{self.repeats}_{self.conv_type}"


@dataclasses.dataclass(frozen=True)
class EfficientNetGenotype:
    """The per-stage choices; `str()` is the canonical string."""

    stages: tuple[StageGene, ...]

    def __str__(self) -> str:
        return "|".join(str(s) for s in self.stages)


def _as_stages(stages) -> tuple[StageChoices, ...]:
    """StageChoices from the option (StageChoices or (stride, expansion, channels, repeats) tuples)."""
    out = tuple(s if isinstance(s, StageChoices) else StageChoices(int(s[0]), int(s[1]), tuple(s[2]), tuple(s[3]))
                for s in stages)
    if len(out) < 3:
        raise InputError(f"EfficientNet space: {len(out)} stages; expected at least 3 (the detection head reads "
                         f"the last three)")
    for i, s in enumerate(out):
        if s.stride not in (1, 2) or s.expansion < 1 or not s.channels or not s.repeats or min(s.repeats) < 1:
            raise InputError(f"EfficientNet space: stage {i} {s}; expected stride 1 or 2, expansion >= 1 and "
                             f"non-empty channel and repeat lists with repeats >= 1")
    return out


# The stage fields in code order: (name, choices of stage s).
def _fields(s: StageChoices):
    return (("kernel", KERNELS), ("channels", s.channels), ("repeats", s.repeats),
            ("type", efficientnet_blocks.CONV_TYPES))


def parse_genotype(text: str, stages: Sequence[StageChoices] = DEFAULT_STAGES) -> EfficientNetGenotype:
    """Parse and validate a genotype string; errors name the stage, the bad field and the allowed values."""
    example = "k3_c16_r1_dw|k5_c24_r2_gc|..."
    if not isinstance(text, str) or not text.strip():
        raise GenotypeError(f"EfficientNet genotype: expected a string like {example!r}, got {text!r}")
    parts = text.strip().split("|")
    if len(parts) != len(stages):
        raise GenotypeError(f"EfficientNet genotype {text!r}: {len(parts)} stages; expected {len(stages)} "
                            f"separated by '|'")
    genes = []
    for i, (part, choices) in enumerate(zip(parts, stages)):
        m = _STAGE_RE.fullmatch(part.strip())
        if not m:
            raise GenotypeError(f"EfficientNet genotype {text!r}: stage {i} {part!r}; expected "
                                f"k{{kernel}}_c{{channels}}_r{{repeats}}_{{dw|gc}}, e.g. 'k3_c24_r2_dw'")
        values = (int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4))
        for (field, allowed), value in zip(_fields(choices), values):
            if value not in allowed:
                raise GenotypeError(f"EfficientNet genotype {text!r}: stage {i} {part!r}: {field} {value!r}; "
                                    f"expected one of {allowed}")
        genes.append(StageGene(*values))
    return EfficientNetGenotype(tuple(genes))


class _EfficientNetSpace(StageChoiceCodec, Space):
    """The shared backbone: genotypes, codes, sampling, mutation, the plan of the network and its tape."""

    gene_type, genotype_type, code_name = StageGene, EfficientNetGenotype, "EfficientNet"
    stage_fields = staticmethod(_fields)

    default_beta = 1.0

    def __init__(self, stages=DEFAULT_STAGES, stem_channels: int = 32, num_classes: int = 1000,
                 image_size: int = 224, residual: bool = True):
        self.stages, self.stem_channels = _as_stages(stages), stem_channels
        self.num_classes, self.image_size, self.residual = num_classes, image_size, residual

    def __repr__(self):
        return (f"{type(self).__name__}(stages={self.stages}, stem_channels={self.stem_channels}, "
                f"num_classes={self.num_classes}, image_size={self.image_size}, residual={self.residual})")

    # -- genotypes
    def parse(self, text: str) -> EfficientNetGenotype:
        return parse_genotype(text, self.stages)

    # -- networks
    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.image_size, self.image_size, 3)

    def backbone_plan(self, g: EfficientNetGenotype, image_hw: tuple[int, int]):
        """(plan nodes, [(value index, (H, W, C)) of each stage's output]); block names `s{stage}_b{block}`."""
        plan = [("stem", efficientnet_blocks.ConvBN,
                 (("features", self.stem_channels), ("kernel_size", 3), ("stride", 2)), (0,))]
        h, w, c = efficientnet_blocks.down(image_hw[0], 2), efficientnet_blocks.down(image_hw[1], 2), self.stem_channels
        outputs = []
        for i, (s, gene) in enumerate(zip(self.stages, g.stages)):
            for j in range(gene.repeats):
                stride = s.stride if j == 0 else 1
                kw = (("features", gene.channels), ("kernel_size", gene.kernel), ("stride", stride),
                      ("expansion", s.expansion), ("conv_type", gene.conv_type), ("residual", self.residual))
                plan.append((f"s{i}_b{j}", efficientnet_blocks.MBConv, kw, (len(plan),)))
                h, w, c = efficientnet_blocks.down(h, stride), efficientnet_blocks.down(w, stride), gene.channels
            outputs.append((len(plan), (h, w, c)))
        return plan, outputs

    def plan(self, genotype, image_hw=None) -> tuple:
        raise NotImplementedError

    def model(self, genotype=None, dtype=jnp.float32) -> efficientnet_blocks.PlanNetwork:
        if genotype is None:
            raise NotImplementedError(f"{self.name} has no whole-space network: widths and depths change with the "
                                      f"genotype; use the standalone network (model(g)) or the tape backend")
        return efficientnet_blocks.PlanNetwork(self.plan(genotype), dtype)

    def tape(self, genotype, dtype=jnp.float32):
        """One node per stem / MBConv block, then the head (detection: a packing node first); the executables are
        shared by every candidate with the same block configuration and input shape."""
        return efficientnet_blocks.plan_tape(self.plan(genotype), dtype)

    def layers(self, genotype) -> list[LayerInfo]:
        return efficientnet_blocks.plan_layers(self.plan(genotype), (self.image_size, self.image_size))


@register_space("efficientnet_cls")
class EfficientNetClsSpace(_EfficientNetSpace):
    """EfficientNet/DONNA-style classification space. Options: stages (DEFAULT_STAGES), stem_channels (32),
    head_channels (1280; 0 drops the 1x1 head conv), num_classes (1000), image_size (224), residual (True).
    `default_beta` = 1.0 (ZiCo-BC, classification). Loss: softmax cross-entropy."""

    default_beta = 1.0
    loss = staticmethod(cross_entropy)

    def __init__(self, stages=DEFAULT_STAGES, stem_channels: int = 32, head_channels: int = 1280,
                 num_classes: int = 1000, image_size: int = 224, residual: bool = True):
        super().__init__(stages, stem_channels, num_classes, image_size, residual)
        self.head_channels = head_channels

    def plan(self, genotype, image_hw=None) -> tuple:
        """The network as plan nodes (`efficientnet_blocks`): stem, blocks, classifier head `head`."""
        image_hw = image_hw or (self.image_size, self.image_size)
        plan, _ = self.backbone_plan(self._as_genotype(genotype), image_hw)
        kw = (("num_classes", self.num_classes), ("head_channels", self.head_channels))
        plan.append(("head", efficientnet_blocks.ClassifierHead, kw, (len(plan),)))
        return tuple(plan)


@register_space("efficientnet_det")
class EfficientNetDetSpace(_EfficientNetSpace):
    """EfficientDet-style detection on the EfficientNet/DONNA backbone. Options: stages, stem_channels (32),
    num_classes (90, COCO), image_size (512), fpn_channels (64), head_depth (3), num_anchors (9), residual (True).
    `default_beta` = 1.0 (ZiCo-BC, detection). Loss: `zico_jax.nn.losses.detection_loss` (focal + box Huber); targets:
    the synthetic centre-cell rule of the module docstring."""

    task_kind = "detection"
    default_beta = 1.0
    loss = staticmethod(detection_loss)

    def __init__(self, stages=DEFAULT_STAGES, stem_channels: int = 32, num_classes: int = 90, image_size: int = 512,
                 fpn_channels: int = 64, head_depth: int = 3, num_anchors: int = 9, residual: bool = True):
        super().__init__(stages, stem_channels, num_classes, image_size, residual)
        self.fpn_channels, self.head_depth, self.num_anchors = fpn_channels, head_depth, num_anchors

    def plan(self, genotype, image_hw=None) -> tuple:
        """Stem, blocks, `pack_maps` of the last three stage outputs, the detection head `head`."""
        image_hw = image_hw or (self.image_size, self.image_size)
        plan, outputs = self.backbone_plan(self._as_genotype(genotype), image_hw)
        levels = outputs[-3:]
        plan.append((None, efficientnet_blocks.pack_maps, (), tuple(v for v, _ in levels)))
        kw = (("level_shapes", tuple(shape for _, shape in levels)), ("num_classes", self.num_classes),
              ("fpn_channels", self.fpn_channels), ("head_depth", self.head_depth),
              ("num_anchors", self.num_anchors))
        plan.append(("head", efficientnet_blocks.DetectionHead, kw, (len(plan),)))
        return tuple(plan)

    def level_sizes(self, image_hw: tuple[int, int]) -> list[tuple[int, int]]:
        """(H_l, W_l) of the three pyramid levels for an image size (the strides are fixed by the space)."""
        h, w = efficientnet_blocks.down(image_hw[0], 2), efficientnet_blocks.down(image_hw[1], 2)
        sizes = []
        for s in self.stages:
            h, w = efficientnet_blocks.down(h, s.stride), efficientnet_blocks.down(w, s.stride)
            sizes.append((h, w))
        return sizes[-3:]

    def targets(self, xs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(N, B, anchors, K + 4) synthetic targets (module docstring): the image's class one-hot at the
        num_anchors anchors of each level's centre cell, box offsets 0, background elsewhere. dtype of xs."""
        xs, labels = np.asarray(xs), np.asarray(labels)
        a, k = self.num_anchors, self.num_classes
        sizes = self.level_sizes(xs.shape[2:4])
        out = np.zeros(labels.shape + (sum(h * w * a for h, w in sizes), k + 4), xs.dtype)
        start = 0
        for h, w in sizes:
            centre = start + ((h // 2) * w + w // 2) * a
            for anchor in range(a):
                np.put_along_axis(out[..., centre + anchor, :], (labels % k)[..., None].astype(np.int64), 1.0, -1)
            start += h * w * a
        return out
