"""ZiCo-BC's FFNet-style semantic segmentation space ("ffnet_seg").

FFNet (Mehta et al., "Simple and Efficient Architectures for Semantic Segmentation", CVPR-W 2022) is a ResNet
backbone with a light upsampling head; ZiCo-BC (Bhardwaj et al., ICCV 2023 workshops) searches its backbone on
Cityscapes per stage over the depth, the width and regular vs group convolutions (group size 32). The paper gives
no table of choice lists; the defaults below are ours, around FFNet's ResNet widths (overridable by `stages`).

Genotype: one `c{channels}_b{blocks}_{type}` per stage, the 4 stages joined by '|', e.g.

    c64_b2_conv|c128_b2_gc|c256_b3_conv|c512_b2_gc

  channels and blocks from the stage's lists; type "conv" (regular 3x3 convolutions) or "gc" (3x3 group
  convolutions, 32 channels per group; `ffnet_blocks.block_groups`).

Network (`zico_jax.spaces.ffnet_blocks`): stem of two 3x3 stride-2 conv + BN + ReLU (-> stem_channels, stride 4); per
stage `blocks` ResNet basic blocks (the stage's stride on the first; 1x1 conv + BN shortcut when the shape changes);
the FFNet "up"-like head: each stage output projected by 1x1 conv + BN + ReLU to head_channels, bilinearly
upsampled to stage 0's size and summed, 3x3 conv + BN + ReLU, 1x1 classifier with bias, logits bilinearly
upsampled to the image size. Loss: pixel-wise softmax cross-entropy (`zico_jax.nn.losses.pixel_cross_entropy`, labels
outside 0..K-1 ignored as Cityscapes' 255).

Default stages (stride, channel choices, block choices), after the stem's 64 channels at stride 4:

    0: 1, (32, 64, 96),     (1, 2, 3)           -> stride 4
    1: 2, (64, 128, 192),   (1, 2, 3, 4)        -> stride 8
    2: 2, (128, 256, 384),  (1, 2, 3, 4, 5, 6)  -> stride 16
    3: 2, (256, 384, 512),  (1, 2, 3)           -> stride 32

Choices where the paper is silent (ours): the stage table; the two-conv stem (no max-pool); the head's 1x1
projections and single 3x3 fuse conv (head_channels 128); bilinear upsampling; PyTorch-default init and BN in
train mode as in all zico-jax spaces; image_size 512 (square) and 19 classes (Cityscapes) by default.

Synthetic targets (`targets`; the offline data are CIFAR images): a deterministic per-pixel label map from the
image's intensity: grey = mean over the colour channels, normalised per image to [0, 1] by its min and max, class
= min(K - 1, floor(K * grey)) (all class 0 for a constant image). ZiCo only needs a loss with a gradient.

Counts: `layers(g)` lists every Conv layer; FLOPs are their multiply-accumulates (BN, ReLU, additions and bilinear
resizes not counted); params are all weights, biases and BN affine parameters.

`default_beta` = 2.0: ZiCo-BC's bias-correction exponent for semantic segmentation (1.0 for classification and
detection, `zico_jax.spaces.efficientnet`).

Example:
    >>> space = FFNetSegSpace(image_size=64)
    >>> g = space.parse("c64_b2_conv|c128_b2_gc|c256_b3_conv|c512_b2_gc")
    >>> str(g), space.decode(space.encode(g)) == g
    ('c64_b2_conv|c128_b2_gc|c256_b3_conv|c512_b2_gc', True)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from zico_jax.errors import InputError
from zico_jax.nn.losses import pixel_cross_entropy
from zico_jax.spaces import efficientnet_blocks, ffnet_blocks
from zico_jax.spaces.base import GenotypeError, LayerInfo, Space, register_space
from zico_jax.spaces.stage_codec import StageChoiceCodec

_STAGE_RE = re.compile(r"c(\d+)_b(\d+)_([a-z]+)")
NUM_STAGES = 4


@dataclasses.dataclass(frozen=True)
class StageChoices:
    """One stage: fixed stride, searched channels and blocks (and conv type)."""

    stride: int
    channels: tuple[int, ...]
    blocks: tuple[int, ...]


DEFAULT_STAGES = (
    StageChoices(1, (32, 64, 96), (1, 2, 3)),
    StageChoices(2, (64, 128, 192), (1, 2, 3, 4)),
    StageChoices(2, (128, 256, 384), (1, 2, 3, 4, 5, 6)),
    StageChoices(2, (256, 384, 512), (1, 2, 3)),
)


@dataclasses.dataclass(frozen=True)
class StageGene:
    channels: int
    blocks: int
    conv_type: str

    def __str__(self) -> str:
        return f"c{self.channels}_b{self.blocks}_{self.conv_type}"


@dataclasses.dataclass(frozen=True)
class FFNetGenotype:
    """The per-stage choices; `str()` is the canonical string."""

    stages: tuple[StageGene, ...]

    def __str__(self) -> str:
        return "|".join(str(s) for s in self.stages)


def _fields(s: StageChoices):
    return (("channels", s.channels), ("blocks", s.blocks), ("type", ffnet_blocks.CONV_TYPES))


def _as_stages(stages) -> tuple[StageChoices, ...]:
    out = tuple(s if isinstance(s, StageChoices) else StageChoices(int(s[0]), tuple(s[1]), tuple(s[2]))
                for s in stages)
    if len(out) != NUM_STAGES:
        raise InputError(f"FFNet space: {len(out)} stages; expected {NUM_STAGES}")
    for i, s in enumerate(out):
        if s.stride not in (1, 2) or not s.channels or not s.blocks or min(s.blocks) < 1:
            raise InputError(f"FFNet space: stage {i} {s}; expected stride 1 or 2 and non-empty channel and block "
                             f"lists with blocks >= 1")
    return out


def parse_genotype(text: str, stages: Sequence[StageChoices] = DEFAULT_STAGES) -> FFNetGenotype:
    """Parse and validate a genotype string; errors name the stage, the bad field and the allowed values."""
    example = "c64_b2_conv|c128_b2_gc|c256_b3_conv|c512_b2_gc"
    if not isinstance(text, str) or not text.strip():
        raise GenotypeError(f"FFNet genotype: expected a string like {example!r}, got {text!r}")
    parts = text.strip().split("|")
    if len(parts) != len(stages):
        raise GenotypeError(f"FFNet genotype {text!r}: {len(parts)} stages; expected {len(stages)} separated by '|'")
    genes = []
    for i, (part, choices) in enumerate(zip(parts, stages)):
        m = _STAGE_RE.fullmatch(part.strip())
        if not m:
            raise GenotypeError(f"FFNet genotype {text!r}: stage {i} {part!r}; expected "
                                f"c{{channels}}_b{{blocks}}_{{conv|gc}}, e.g. 'c64_b2_conv'")
        values = (int(m.group(1)), int(m.group(2)), m.group(3))
        for (field, allowed), value in zip(_fields(choices), values):
            if value not in allowed:
                raise GenotypeError(f"FFNet genotype {text!r}: stage {i} {part!r}: {field} {value!r}; expected one "
                                    f"of {allowed}")
        genes.append(StageGene(*values))
    return FFNetGenotype(tuple(genes))


@register_space("ffnet_seg")
class FFNetSegSpace(StageChoiceCodec, Space):
    """FFNet-style segmentation space. Options: stages (DEFAULT_STAGES), stem_channels (64), head_channels (128),
    num_classes (19, Cityscapes), image_size (512). `default_beta` = 2.0 (ZiCo-BC, segmentation)."""

    gene_type, genotype_type, code_name = StageGene, FFNetGenotype, "FFNet"
    stage_fields = staticmethod(_fields)

    task_kind = "segmentation"
    default_beta = 2.0
    loss = staticmethod(pixel_cross_entropy)

    def __init__(self, stages=DEFAULT_STAGES, stem_channels: int = 64, head_channels: int = 128,
                 num_classes: int = 19, image_size: int = 512):
        self.stages, self.stem_channels, self.head_channels = _as_stages(stages), stem_channels, head_channels
        self.num_classes, self.image_size = num_classes, image_size

    def __repr__(self):
        return (f"FFNetSegSpace(stages={self.stages}, stem_channels={self.stem_channels}, head_channels="
                f"{self.head_channels}, num_classes={self.num_classes}, image_size={self.image_size})")

    # -- genotypes
    def parse(self, text: str) -> FFNetGenotype:
        return parse_genotype(text, self.stages)

    # -- data
    def targets(self, xs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(N, B, H, W) int32 label maps: per-image min-max normalised grey level quantised into num_classes bins
        (module docstring). `labels` are not used."""
        grey = np.asarray(xs, np.float64).mean(-1)
        lo, hi = grey.min(axis=(-2, -1), keepdims=True), grey.max(axis=(-2, -1), keepdims=True)
        unit = np.where(hi > lo, (grey - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
        return np.minimum(np.floor(unit * self.num_classes), self.num_classes - 1).astype(np.int32)

    # -- networks
    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.image_size, self.image_size, 3)

    def plan(self, genotype) -> tuple:
        """The network as plan nodes (`efficientnet_blocks`): `stem`, blocks `s{stage}_b{block}`, `pack_maps` of
        the four stage outputs, the segmentation head `head`."""
        g = self._as_genotype(genotype)
        image_hw = (self.image_size, self.image_size)
        plan = [("stem", ffnet_blocks.Stem, (("channels", self.stem_channels),), (0,))]
        h, w = (efficientnet_blocks.down(efficientnet_blocks.down(image_hw[0], 2), 2),
                efficientnet_blocks.down(efficientnet_blocks.down(image_hw[1], 2), 2))
        outputs = []
        for i, (s, gene) in enumerate(zip(self.stages, g.stages)):
            for j in range(gene.blocks):
                stride = s.stride if j == 0 else 1
                kw = (("features", gene.channels), ("stride", stride), ("conv_type", gene.conv_type))
                plan.append((f"s{i}_b{j}", ffnet_blocks.BasicBlock, kw, (len(plan),)))
                h, w = efficientnet_blocks.down(h, stride), efficientnet_blocks.down(w, stride)
            outputs.append((len(plan), (h, w, gene.channels)))
        plan.append((None, efficientnet_blocks.pack_maps, (), tuple(v for v, _ in outputs)))
        kw = (("level_shapes", tuple(shape for _, shape in outputs)), ("image_hw", image_hw),
              ("num_classes", self.num_classes), ("head_channels", self.head_channels))
        plan.append(("head", ffnet_blocks.SegmentationHead, kw, (len(plan),)))
        return tuple(plan)

    def model(self, genotype=None, dtype=jnp.float32) -> efficientnet_blocks.PlanNetwork:
        """The standalone network of `genotype` for image_size x image_size images."""
        if genotype is None:
            raise NotImplementedError("ffnet_seg has no whole-space network: widths and depths change with the "
                                      "genotype; use the standalone network (model(g)) or the tape backend")
        return efficientnet_blocks.PlanNetwork(self.plan(genotype), dtype)

    def tape(self, genotype, dtype=jnp.float32):
        """One node per stem / basic block, a packing node, then the head; executables are shared by every
        candidate with the same block configuration and input shape."""
        return efficientnet_blocks.plan_tape(self.plan(genotype), dtype)

    def layers(self, genotype) -> list[LayerInfo]:
        return efficientnet_blocks.plan_layers(self.plan(genotype), (self.image_size, self.image_size))
