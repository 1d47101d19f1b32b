"""NATS-Bench size search space (SSS), as Dong et al. define it (xautodl `DynamicShapeTinyNet`).

Genotype: the output width of 5 stages, each from {8, 16, 24, 32, 40, 48, 56, 64}, written as NATS-Bench writes it,
``'64:64:64:64:64'`` (8**5 = 32,768 candidates). Code: the 5 indices into the width list. `arch_id`: the code as a
base-8 number, position 0 most significant, i.e. the order in which xautodl's `traverse_net`
(exps/NATS-Bench/main-sss.py) lists the candidates ('8:8:8:8:8' = 0, '64:64:64:64:64' = 32767).

Network (`DynamicShapeTinyNet(channels, genotype, num_classes)` with N = 1), channels c0..c4, NHWC:
  stem conv3x3(3->c0)+BN; cells_0 = cell(c0->c0); cells_1 = ResNet basic block(c0->c1, stride 2);
  cells_2 = cell(c1->c2); cells_3 = basic block(c2->c3, stride 2); cells_4 = cell(c3->c4); BN+ReLU; global
  average pool; dense classifier (c4 -> classes).
  The cell is the best NAS-Bench-201 cell, fixed:
  |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|.
  As xautodl's `InferCell` builds it, the edges leaving node 0 map C_in -> C_out and the others C_out -> C_out;
  `skip_connect` is the identity when C_in == C_out and otherwise `FactorizedReduce` at stride 1, i.e.
  conv1x1(C_in->C_out) + BN with no ReLU. The basic block always has stride 2, so its shortcut is
  avgpool2x2 -> conv1x1(C_in->C_out) without BN (`ResNetBasicblock(c_prev, c, 2)`).
  Init: PyTorch defaults; BN in train mode (see `zico_jax.nn.layers`).
Parameter paths follow `zico_jax.spaces.nats_tss`: ``stem/{conv,bn}``, ``cells_{i}/edge_{e}/nor_conv_3x3/{conv,bn}``,
``cells_{i}/edge_3/skip_connect/{conv,bn}`` (only where the skip is a FactorizedReduce),
``cells_{i}/{conv_a,conv_b}/{conv,bn}``, ``cells_{i}/downsample``, ``head/{lastact,classifier}``.

Architecture as data: `model(None)` is the widest network (max width at every position) taking the code as an
input; the active width of each position is computed from the code inside the program, so one compiled program
scores every candidate. Candidate g's weights are the widest network's weights sliced to g's first active
channels and rescaled by sqrt(fan_in_widest / fan_in_g), which gives each weight PyTorch's U(+-1/sqrt(fan_in_g))
for g's own fan-in; inactive channels are exactly zero everywhere and their weights get exactly zero gradients,
so ZiCo skips them (details: `zico_jax.spaces.masked_layers`). A cell's skip is computed both ways and selected by
whether its two positions have equal active widths; the unused FactorizedReduce gets zero gradients.
`standalone_params(params, g)` gives the standalone `model(g)`'s weights, on which it computes the same function.

Example:
    >>> space = NATSSizeSpace()
    >>> g = space.parse("8:8:16:40:40")
    >>> space.encode(g).tolist(), space.arch_id(g), space.params(g)
    ([0, 0, 1, 4, 4], 100, 107826)
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zico_jax.errors import InputError
from zico_jax.nn import layers as nn_layers
from zico_jax.spaces import masked_layers
from zico_jax.spaces.base import GenotypeError, LayerInfo, Space, register_space
from zico_jax.spaces.nats_tss import EDGES, NB201_DATASETS, NB201_GROUNDTRUTH_COLUMNS

WIDTHS = (8, 16, 24, 32, 40, 48, 56, 64)
NUM_POSITIONS = 5
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SKIP_EDGE = 3  # 3<-0 is skip_connect; every other edge of CELL is nor_conv_3x3
# cells_0..cells_4 as (kind, position of the input width, position of the output width).
LAYOUT = (("cell", 0, 0), ("block", 0, 1), ("cell", 1, 2), ("block", 2, 3), ("cell", 3, 4))


@dataclasses.dataclass(frozen=True)
class SSSGenotype:
    """The 5 stage widths. `str()` gives the official string, e.g. '8:16:32:48:64'."""

    channels: tuple[int, ...]

    def __str__(self) -> str:
        return ":".join(str(c) for c in self.channels)


def parse_genotype(text: str, widths: Sequence[int] = WIDTHS) -> SSSGenotype:
    """Parse an official SSS string; errors name the bad field."""
    allowed = ", ".join(str(w) for w in widths)
    if not isinstance(text, str) or not text.strip():
        raise GenotypeError(f"NATS-Bench SSS genotype: expected a string like '64:64:64:64:64', got {text!r}")
    fields = text.strip().split(":")
    if len(fields) != NUM_POSITIONS:
        raise GenotypeError(f"NATS-Bench SSS genotype {text!r}: expected {NUM_POSITIONS} ':'-separated widths, "
                            f"got {len(fields)}")
    channels = []
    for pos, field in enumerate(fields):
        if not field.strip().isdigit():
            raise GenotypeError(f"NATS-Bench SSS genotype {text!r}: width {pos} {field!r} is not a positive integer")
        c = int(field)
        if c not in widths:
            raise GenotypeError(f"NATS-Bench SSS genotype {text!r}: width {pos} is {c}; expected one of {allowed}")
        channels.append(c)
    return SSSGenotype(tuple(channels))


# ------------------------------------------------------------------------------------------------ Flax network
# Every module takes the active width of its input and output (`active_in`, `active_out`: traced ints in the
# whole-space network, None in a standalone network, where the stored widths are the real ones).


class FactorizedReduce(nn.Module):
    """xautodl's FactorizedReduce at stride 1 (skip_connect with C_in != C_out): conv1x1 -> BN, no ReLU."""

    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, active_in=None, active_out=None):
        y = masked_layers.MaskedConv(self.features, 1, dtype=self.dtype, name="conv")(x, active_in, active_out)
        return masked_layers.MaskedBatchNorm(self.dtype, name="bn")(y, active_out)


class SSSEdge(nn.Module):
    """One cell edge: nor_conv_3x3, or skip_connect as 'identity', 'reduce' (FactorizedReduce) or 'dynamic'
    (both, selected by whether the active widths agree: the whole-space network)."""

    features: int
    op: str
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, active_in=None, active_out=None):
        if self.op == "nor_conv_3x3":
            return masked_layers.MaskedReLUConvBN(self.features, 3, dtype=self.dtype, name="nor_conv_3x3")(
                x, active_in, active_out)
        if self.op == "identity":
            return x
        reduced = FactorizedReduce(self.features, self.dtype, name="skip_connect")(x, active_in, active_out)
        if self.op == "reduce":
            return reduced
        # A select: the branch not taken gets an exactly zero gradient.
        return jnp.where(active_in == active_out, x, reduced)


class SSSCell(nn.Module):
    """The fixed cell (module docstring); `skip` is the op of edge 3 ('identity', 'reduce' or 'dynamic')."""

    features: int
    skip: str
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, active_in=None, active_out=None):
        nodes = [x]
        for node in (1, 2, 3):
            total = None
            for e, (dst, src) in enumerate(EDGES):
                if dst != node:
                    continue
                op = self.skip if e == SKIP_EDGE else "nor_conv_3x3"
                out = SSSEdge(self.features, op, self.dtype, name=f"edge_{e}")(
                    nodes[src], active_in if src == 0 else active_out, active_out)
                total = out if total is None else total + out
            nodes.append(total)
        return nodes[3]


class SSSBasicBlock(nn.Module):
    """ResNetBasicblock(C_in, C_out, stride 2): conv_a (stride 2) -> conv_b, plus avgpool2x2 -> conv1x1."""

    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, active_in=None, active_out=None):
        y = masked_layers.MaskedReLUConvBN(self.features, 3, 2, self.dtype, name="conv_a")(x, active_in, active_out)
        y = masked_layers.MaskedReLUConvBN(self.features, 3, 1, self.dtype, name="conv_b")(y, active_out, active_out)
        shortcut = masked_layers.MaskedConv(self.features, 1, dtype=self.dtype, name="downsample")(
            nn_layers.avg_pool_2x2(x), active_in, active_out)
        return y + shortcut


class SSSStem(nn.Module):
    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, active_out=None):
        y = masked_layers.MaskedConv(self.features, 3, dtype=self.dtype, name="conv")(x, None, active_out)
        return masked_layers.MaskedBatchNorm(self.dtype, name="bn")(y, active_out)


class SSSHead(nn.Module):
    """`lastact` (BN + ReLU), global average pooling, `classifier` (dense): logits."""

    num_classes: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, active_in=None):
        x = nn.relu(masked_layers.MaskedBatchNorm(self.dtype, name="lastact")(x, active_in))
        return masked_layers.MaskedDense(self.num_classes, self.dtype, name="classifier")(
            jnp.mean(x, axis=(1, 2)), active_in)


def cell_skip(channels: Optional[Sequence[int]], pos_in: int, pos_out: int) -> str:
    """Edge 3 of the cell between two positions: standalone by its widths, whole-space 'dynamic' where they vary."""
    if pos_in == pos_out:
        return "identity"
    if channels is None:
        return "dynamic"
    return "identity" if channels[pos_in] == channels[pos_out] else "reduce"


class SSSNetwork(nn.Module):
    """The SSS network: `channels` fixed (standalone), or None (whole space, widest, code as input)."""

    channels: Optional[tuple[int, ...]] = None
    widths: tuple[int, ...] = WIDTHS
    num_classes: int = 10
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, code=None):
        if self.channels is None:
            if code is None:
                raise InputError("SSSNetwork(channels=None) is the whole space: pass the architecture code")
            features = (max(self.widths),) * NUM_POSITIONS
            active_widths = jnp.asarray(self.widths, jnp.int32)[jnp.asarray(code)]
            active = [active_widths[p] for p in range(NUM_POSITIONS)]
        else:
            features, active = tuple(self.channels), [None] * NUM_POSITIONS
        x = SSSStem(features[0], self.dtype, name="stem")(x, active[0])
        for i, (kind, p_in, p_out) in enumerate(LAYOUT):
            if kind == "block":
                block = SSSBasicBlock(features[p_out], self.dtype, name=f"cells_{i}")
            else:
                block = SSSCell(features[p_out], cell_skip(self.channels, p_in, p_out), self.dtype, name=f"cells_{i}")
            x = block(x, active[p_in], active[p_out])
        return SSSHead(self.num_classes, self.dtype, name="head")(x, active[NUM_POSITIONS - 1])


# ------------------------------------------------------------------------------------------------ the space


@register_space("nats_sss")
class NATSSizeSpace(Space):
    """NATS-Bench SSS. Options: widths (the official 8..64; tests use tiny lists), num_classes (10), image size
    (32). Widths must be strictly increasing positive integers (the whole-space network stores the largest)."""

    datasets = NB201_DATASETS  # the skeleton and accuracy tables of NAS-Bench-201
    groundtruth_columns = NB201_GROUNDTRUTH_COLUMNS
    descriptors = {"width": lambda space, g: float(np.mean(g.channels))}

    def __init__(self, widths: Sequence[int] = WIDTHS, num_classes: int = 10, image_size: int = 32):
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1 or any(a >= b for a, b in zip(widths, widths[1:])):
            raise InputError(f"NATS-Bench SSS: widths must be strictly increasing positive integers, got {widths}")
        self.widths, self.num_classes, self.image_size = widths, num_classes, image_size

    def __repr__(self):
        return f"NATSSizeSpace(widths={self.widths}, num_classes={self.num_classes}, image_size={self.image_size})"

    def _genotype(self, g) -> SSSGenotype:
        if isinstance(g, SSSGenotype):
            bad = [c for c in g.channels if c not in self.widths]
            if len(g.channels) != NUM_POSITIONS or bad:
                raise GenotypeError(f"NATS-Bench SSS genotype {g}: expected {NUM_POSITIONS} widths from "
                                    f"{', '.join(map(str, self.widths))}")
            return g
        return self.parse(g) if isinstance(g, str) else self.decode(g)

    # -- genotypes
    def parse(self, text: str) -> SSSGenotype:
        return parse_genotype(text, self.widths)

    def encode(self, genotype) -> np.ndarray:
        return np.array([self.widths.index(c) for c in self._genotype(genotype).channels], dtype=np.int32)

    def decode(self, code: Sequence[int]) -> SSSGenotype:
        code = np.asarray(code)
        if code.shape != (NUM_POSITIONS,) or not np.issubdtype(code.dtype, np.integer):
            raise GenotypeError(f"NATS-Bench SSS code: expected {NUM_POSITIONS} integers, got {code!r}")
        if code.min() < 0 or code.max() >= len(self.widths):
            raise GenotypeError(f"NATS-Bench SSS code {code.tolist()}: width indices must lie in "
                                f"0..{len(self.widths) - 1}")
        return SSSGenotype(tuple(self.widths[int(i)] for i in code))

    def enumerate(self) -> Iterator[SSSGenotype]:
        """Every genotype, in `arch_id` order (xautodl's `traverse_net` order)."""
        for channels in itertools.product(self.widths, repeat=NUM_POSITIONS):
            yield SSSGenotype(channels)

    def sample(self, rng: np.random.Generator) -> SSSGenotype:
        return self.decode(rng.integers(0, len(self.widths), NUM_POSITIONS))

    def mutate(self, genotype, rng: np.random.Generator) -> SSSGenotype:
        """Change the width of one uniformly chosen position to a different width."""
        code = self.encode(genotype)
        if len(self.widths) < 2:
            raise InputError("NATS-Bench SSS: a space with one width has nothing to mutate")
        p = rng.integers(NUM_POSITIONS)
        code[p] = (code[p] + rng.integers(1, len(self.widths))) % len(self.widths)
        return self.decode(code)

    def arch_id(self, genotype) -> int:
        """The code as a base-len(widths) number, position 0 most significant: 0 .. len(widths)**5 - 1."""
        n = len(self.widths)
        return int(sum(int(c) * n ** (NUM_POSITIONS - 1 - p) for p, c in enumerate(self.encode(genotype))))

    # -- networks
    def model(self, genotype=None, dtype=jnp.float32) -> SSSNetwork:
        channels = None if genotype is None else self._genotype(genotype).channels
        return SSSNetwork(channels, self.widths, self.num_classes, dtype)

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.image_size, self.image_size, 3)

    def standalone_params(self, params, genotype):
        """The standalone `model(g)`'s weights from the whole-space network's `params`: each leaf sliced to g's
        widths, kernels and the classifier bias rescaled by sqrt(fan_in_widest / fan_in_g)."""
        g = self._genotype(genotype)
        dtype = jax.tree.leaves(params)[0].dtype
        shapes = jax.eval_shape(self.model(g, dtype).init, jax.random.key(0), jnp.zeros(self.input_shape(1), dtype))
        return masked_layers.standalone_params(params, shapes["params"])

    def layers(self, genotype=None) -> list[LayerInfo]:
        """Conv/Dense layers of `genotype`'s standalone network; with None, every layer of the whole-space network
        (widest, with the FactorizedReduce skips of cells_2 and cells_4)."""
        channels = None if genotype is None else self._genotype(genotype).channels
        c = (max(self.widths),) * NUM_POSITIONS if channels is None else channels
        hw = self.image_size
        out = [LayerInfo("stem/conv", "conv", 3, c[0], 3, 1, (hw, hw), (hw, hw), bn=True)]
        for i, (kind, p_in, p_out) in enumerate(LAYOUT):
            cin, cout = c[p_in], c[p_out]
            if kind == "block":
                half = (hw + 1) // 2
                out += [
                    LayerInfo(f"cells_{i}/conv_a/conv", "conv", cin, cout, 3, 2, (hw, hw), (half, half), bn=True),
                    LayerInfo(f"cells_{i}/conv_b/conv", "conv", cout, cout, 3, 1, (half, half), (half, half), bn=True),
                    LayerInfo(f"cells_{i}/downsample", "conv", cin, cout, 1, 1, (hw // 2, hw // 2), (hw // 2, hw // 2)),
                ]
                hw = half
                continue
            for e, (_dst, src) in enumerate(EDGES):
                if e != SKIP_EDGE:
                    ein = cin if src == 0 else cout
                    out.append(LayerInfo(f"cells_{i}/edge_{e}/nor_conv_3x3/conv", "conv", ein, cout, 3, 1, (hw, hw),
                                         (hw, hw), bn=True))
                elif cell_skip(channels, p_in, p_out) != "identity":
                    out.append(LayerInfo(f"cells_{i}/edge_{e}/skip_connect/conv", "conv", cin, cout, 1, 1, (hw, hw),
                                         (hw, hw), bn=True))
        out.append(LayerInfo("head/classifier", "dense", c[-1], self.num_classes, 1, 1, (1, 1), (1, 1), bias=True))
        return out

    def extra_params(self, genotype) -> int:
        return 2 * self._genotype(genotype).channels[-1]  # lastact BN scale and shift

    # -- PyTorch interop (xautodl's DynamicShapeTinyNet state-dict names)
    def torch_names(self, genotype) -> dict[str, tuple[str, str]]:
        """Official state-dict name -> (Flax path, layout) for the standalone network of `genotype`."""
        g = self._genotype(genotype)

        def conv_bn(torch_conv, torch_bn, flax_prefix):
            return {f"{torch_conv}.weight": (f"{flax_prefix}/conv/kernel", "conv"),
                    f"{torch_bn}.weight": (f"{flax_prefix}/bn/scale", "vector"),
                    f"{torch_bn}.bias": (f"{flax_prefix}/bn/bias", "vector")}

        names = conv_bn("stem.0", "stem.1", "stem")
        for i, (kind, p_in, p_out) in enumerate(LAYOUT):
            if kind == "block":
                for part in ("conv_a", "conv_b"):
                    names.update(conv_bn(f"cells.{i}.{part}.op.1", f"cells.{i}.{part}.op.2", f"cells_{i}/{part}"))
                names[f"cells.{i}.downsample.1.weight"] = (f"cells_{i}/downsample/kernel", "conv")
                continue
            for e in range(len(EDGES)):
                if e != SKIP_EDGE:
                    prefix = f"cells.{i}.layers.{e}.op"
                    names.update(conv_bn(f"{prefix}.1", f"{prefix}.2", f"cells_{i}/edge_{e}/nor_conv_3x3"))
                elif cell_skip(g.channels, p_in, p_out) == "reduce":
                    prefix = f"cells.{i}.layers.{e}"
                    names.update(conv_bn(f"{prefix}.conv", f"{prefix}.bn", f"cells_{i}/edge_{e}/skip_connect"))
        names["lastact.0.weight"] = ("head/lastact/scale", "vector")
        names["lastact.0.bias"] = ("head/lastact/bias", "vector")
        names["classifier.weight"] = ("head/classifier/kernel", "linear")
        names["classifier.bias"] = ("head/classifier/bias", "vector")
        return names
