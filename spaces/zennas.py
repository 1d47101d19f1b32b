"""The Zen-NAS / ZiCo MobileNetV2-style ImageNet search space ("zennas_imagenet").

Genotype: a sequence of blocks written exactly as the official code (idstcv/ZenNAS `PlainNet/`, used unchanged
by SLDGroup/ZiCo) writes them, e.g. ZiCo's 600M network:

    SuperConvK3BNRELU(3,16,2,1)SuperResIDWE1K7(16,40,2,40,1)SuperResIDWE2K7(40,80,2,64,1)
    SuperResIDWE4K7(80,96,2,96,5)SuperResIDWE2K7(96,224,2,224,5)SuperConvK1BNRELU(224,2048,1,1)

  * `SuperConvK{k}BNRELU(in, out, stride, sub_layers)`, k in {1, 3, 5, 7}: sub_layers x [conv k x k + BN + ReLU]
    (stride on the first);
  * `SuperResIDWE{e}K{k}(in, out, stride, bottleneck, sub_layers)`, e in {1, 2, 4, 6}, k in {3, 5, 7}: each
    sub-layer is TWO inverted-bottleneck units (`PlainNet/SuperResIDWEXKX.py`, "first DW" / "second DW"):
      unit 0: in -> bottleneck, dw = smart_round(bottleneck * e, 8), stride on the first sub-layer only;
      unit 1: bottleneck -> out, dw = smart_round(out * e, 8), stride 1
    where a unit is 1x1 expand + BN + ReLU, k x k depthwise + BN + ReLU, [SE], 1x1 project + BN, [+ shortcut],
    ReLU, and smart_round(x, 8) = max(8, 8 * round(x / 8)) (Python rounding). Later sub-layers take `out`
    channels in.
Network: the blocks in order (the last is the fixed `SuperConvK1BNRELU(C, 2048, 1, 1)` of the string), global
average pooling, a dense layer to `num_classes` (with bias). Init: PyTorch defaults (the search scores untrained,
un-reinitialised networks); BatchNorm in train mode with eps 1e-3 (MasterNet's). See `zico_jax.spaces.zennas_blocks`.

Options: `residual` (default False) - the official search scores candidates with `no_reslink=True` and without
squeeze-excite, so the default network has neither. `residual=True` is the network as trained and as the FLOPs
budget is checked: unit 0 of the first sub-layer always has a projection shortcut (`ResBlockProj`), any other
unit a projection when its stride is 2 or its channels change, else an identity. `se=True` adds the official
squeeze-excite after each depthwise ReLU (the trained ZiCo models use `--use_se`). num_classes (1000),
image_size (224).

Counts (`layers(g)`, `flops(g)`, `params(g)`): every Conv/Dense layer of the network with these options,
multiply-accumulates k*k*Cin/groups*Cout*Hout*Wout (dense: in*out), BN not counted in FLOPs; params are all
weights, biases and BN affine parameters. The paper's FLOPs (448M / 603M / 1005M for ZiCo's released
networks, 451M for the #Params search) are `official_flops(g)` of the space with `residual=True`: what
`analyze_model.py` reports, i.e. ptflops (0.6) on MasterNet with residual links and without SE, which counts
conv MACs + conv bias (one per output) + BN (2 per output: affine) + dense (in*out + out), and no ReLU, pooling
or additions (the network applies them functionally). This gives 448.84M, 603.17M, 1002.97M and 451.79M for the
four released genotypes: the first, second and fourth are the paper's numbers truncated; the 1G network comes out
2M below the paper's 1005M under every convention tried (the official `get_FLOPs` of the search, `search_flops(g)`
- which also counts shortcut FLOPs at a quarter, a bug - gives 438.39M / 590.29M / 979.22M / 450.0M).

Search (`zico_jax.spaces.zennas_mutation`): `mutate(g, rng, num_mutations)` is the official evolutionary-search mutation
(replace random blocks by candidates of SearchSpace/search_space_IDW_fixfc.py, re-chain the channels, split blocks
of >= 6 sub-layers); `initial_genotype()` is the official starting network; `num_layers(g)` and `search_flops(g)`
are what the official search checks against its `max_layers` and FLOPs budgets (`zico_jax.search.budgets` uses
them); `sample(rng)` is a short random walk of official mutations from the initial network (there is no official
independent sampler).

Example:
    >>> space = ZenNASSpace(num_classes=10, image_size=32)
    >>> g = space.parse("SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)")
    >>> str(g) == "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)"
    True
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from zico_jax.nn.tape_nodes import TapeNode
from zico_jax.spaces import zennas_blocks
from zico_jax.spaces import zennas_mutation as mutation
from zico_jax.spaces.base import GenotypeError, LayerInfo, Space, register_space
from zico_jax.spaces.zennas_genotype import (  # noqa: F401  (re-exported)
    _CONV_RE,
    _RES_RE,
    _TOKEN_RE,
    CODE_WIDTH,
    CONV_KERNELS,
    INITIAL_GENOTYPE,
    MAX_BLOCKS,
    RES_EXPANSIONS,
    RES_KERNELS,
    SAMPLE_MAX_STEPS,
    Block,
    ZenNASGenotype,
    _block,
    as_genotype,
    parse_genotype,
    smart_round,
)


def _as_genotype(g) -> ZenNASGenotype:
    if isinstance(g, (ZenNASGenotype, str)):
        return as_genotype(g)
    return ZenNASSpace().decode(g)


def _down(hw: int, stride: int) -> int:
    return -(-hw // stride)  # PyTorch: floor((H + 2 * (k // 2) - k) / s) + 1 = ceil(H / s) for odd k


def plan(g: ZenNASGenotype, residual: bool = False, se: bool = False) -> tuple:
    """The network as (name, node type, keyword tuple) applications; names are the params-tree keys
    `b{block}_s{sub_layer}` (conv layers) and `b{block}_s{sub_layer}_u{unit}` (inverted-bottleneck units)."""
    nodes = []
    for i, b in enumerate(_as_genotype(g).blocks):
        cin = b.in_channels
        for j in range(b.sub_layers):
            stride = b.stride if j == 0 else 1
            if not b.is_res:
                kw = (("features", b.out_channels), ("kernel_size", b.kernel), ("stride", stride))
                nodes.append((f"b{i}_s{j}", "conv", kw))
                cin = b.out_channels
                continue
            units = ((cin, b.bottleneck, smart_round(b.bottleneck * b.expansion), stride),
                     (b.bottleneck, b.out_channels, smart_round(b.out_channels * b.expansion), 1))
            for u, (ci, co, dw, st) in enumerate(units):
                shortcut = "none"
                if residual:  # ResBlockProj for the very first unit; ResBlock projects on stride or width change
                    shortcut = "proj" if (j == 0 and u == 0) or st > 1 or ci != co else "identity"
                kw = (("features", co), ("dw_channels", dw), ("kernel_size", b.kernel), ("stride", st),
                      ("shortcut", shortcut), ("se", se))
                nodes.append((f"b{i}_s{j}_u{u}", "unit", kw))
            cin = b.out_channels
    return tuple(nodes)


def layer_table(g: ZenNASGenotype, residual: bool, se: bool, image_size: int, num_classes: int) -> list[LayerInfo]:
    """Conv/Dense layers of the network of `plan(g, residual, se)`, in forward order."""
    hw, c, out = image_size, 3, []

    def conv(path, cin, cout, k, stride, hw_in, groups=1, bn=True, bias=False):
        hw_out = _down(hw_in, stride)
        out.append(LayerInfo(path, "conv", cin, cout, k, stride, (hw_in, hw_in), (hw_out, hw_out), groups, bn, bias))
        return hw_out

    for name, kind, kw in plan(g, residual, se):
        kw = dict(kw)
        if kind == "conv":
            hw_next = conv(f"{name}/conv", c, kw["features"], kw["kernel_size"], kw["stride"], hw)
        else:
            d, st = kw["dw_channels"], kw["stride"]
            conv(f"{name}/expand/conv", c, d, 1, 1, hw)
            hw_next = conv(f"{name}/dw/conv", d, d, kw["kernel_size"], st, hw, groups=d)
            if se:
                conv(f"{name}/se/reduce", d, zennas_blocks.se_channels(d), 1, 1, 1)
                conv(f"{name}/se/expand", zennas_blocks.se_channels(d), d, 1, 1, 1)
            conv(f"{name}/project/conv", d, kw["features"], 1, 1, hw_next)
            if kw["shortcut"] == "proj":
                conv(f"{name}/proj", c, kw["features"], 1, st, hw, bias=True)
        hw, c = hw_next, kw["features"]
    out.append(LayerInfo("head/classifier", "dense", c, num_classes, 1, 1, (1, 1), (1, 1), bias=True))
    return out


@register_space("zennas_imagenet")
class ZenNASSpace(Space):
    """Zen-NAS / ZiCo MobileNetV2-style space. Options: residual (False: the scored network), se (False),
    num_classes (1000), image_size (224)."""

    datasets = {"cifar10": {}, "imagenet2012": {}}
    descriptors = {"depth": lambda space, g: float(space.num_layers(g)),
                   "width": lambda space, g: float(np.mean([b.out_channels for b in g.blocks]))}
    held_without_accuracy = "flops"  # no accuracy table: the bias study holds FLOPs fixed instead

    def __init__(self, residual: bool = False, se: bool = False, num_classes: int = 1000, image_size: int = 224):
        self.residual, self.se, self.num_classes, self.image_size = residual, se, num_classes, image_size

    def __repr__(self):
        return (f"ZenNASSpace(residual={self.residual}, se={self.se}, num_classes={self.num_classes}, "
                f"image_size={self.image_size})")

    # -- genotypes
    def parse(self, text: str) -> ZenNASGenotype:
        return parse_genotype(text)

    def encode(self, genotype) -> np.ndarray:
        """(MAX_BLOCKS * CODE_WIDTH,) int32: per block [kind (1 conv, 2 res), kernel, expansion, in, out, stride,
        bottleneck, sub_layers], unused rows zero."""
        g = _as_genotype(genotype)
        if len(g.blocks) > MAX_BLOCKS:
            raise GenotypeError(f"Zen-NAS genotype {g}: {len(g.blocks)} blocks; encode holds at most {MAX_BLOCKS}")
        code = np.zeros((MAX_BLOCKS, CODE_WIDTH), np.int32)
        for i, b in enumerate(g.blocks):
            code[i] = (2 if b.is_res else 1, b.kernel, b.expansion or 0, b.in_channels, b.out_channels, b.stride,
                       b.bottleneck or 0, b.sub_layers)
        return code.reshape(-1)

    def decode(self, code: Sequence[int]) -> ZenNASGenotype:
        code = np.asarray(code)
        if code.shape != (MAX_BLOCKS * CODE_WIDTH,) or not np.issubdtype(code.dtype, np.integer):
            raise GenotypeError(f"Zen-NAS code: expected {MAX_BLOCKS * CODE_WIDTH} integers, got shape {code.shape} "
                                f"of {code.dtype}")
        text = ""
        for i, row in enumerate(code.reshape(MAX_BLOCKS, CODE_WIDTH).tolist()):
            kind, k, e, cin, cout, stride, btl, subs = row
            if kind == 0:
                if any(row[i2] for i2 in range(CODE_WIDTH)) or code.reshape(MAX_BLOCKS, CODE_WIDTH)[i:].any():
                    raise GenotypeError(f"Zen-NAS code: row {i} has kind 0 (end) but non-zero entries follow")
                break
            if kind == 1:
                text += f"SuperConvK{k}BNRELU({cin},{cout},{stride},{subs})"
            elif kind == 2:
                text += f"SuperResIDWE{e}K{k}({cin},{cout},{stride},{btl},{subs})"
            else:
                raise GenotypeError(f"Zen-NAS code: row {i} has kind {kind}; expected 0 (end), 1 (conv) or 2 (res)")
        return parse_genotype(text)

    def initial_genotype(self) -> ZenNASGenotype:
        """The official search's starting network (`INITIAL_GENOTYPE`); `zico_jax.search` mutates it while the
        population is small, as the official evolution_search.py does."""
        return parse_genotype(INITIAL_GENOTYPE)

    def sample(self, rng: np.random.Generator) -> ZenNASGenotype:
        """A random walk from the official initial network: k ~ uniform{1, ..., SAMPLE_MAX_STEPS} successive single
        official mutations (`mutate(g, rng, 1)`). The official search has no independent sampler: its population
        starts as single mutations of `INITIAL_GENOTYPE` and grows by mutating members, which this imitates. Not
        uniform over the space and not budget-aware (apply budgets afterwards); deterministic for a seeded rng."""
        mutation.check_rng(rng)
        g = parse_genotype(INITIAL_GENOTYPE)
        for _ in range(1 + int(rng.integers(SAMPLE_MAX_STEPS))):
            g = mutation.mutate(g, rng, 1)
        return g

    def mutate(self, genotype, rng: np.random.Generator, num_mutations: int = 1) -> ZenNASGenotype:
        """The official evolutionary-search mutation (evolution_search.get_new_random_structure_str with
        num_replaces=num_mutations, the block candidates of SearchSpace/search_space_IDW_fixfc.py, then the split of
        blocks with >= 6 sub-layers): see `zico_jax.spaces.zennas_mutation`."""
        return mutation.mutate(genotype, rng, num_mutations)

    def num_layers(self, genotype) -> int:
        """The official `get_num_layers` (sum of sub_layers; what the search's `max_layers` bounds)."""
        return mutation.num_layers(genotype)

    def search_flops(self, genotype) -> float:
        """The official `get_FLOPs(image_size)` the search checks against its FLOPs budget (residual links, BN, no SE,
        whatever this space's `residual` / `se`; shortcuts quarter-counted, an official bug): see
        `zico_jax.spaces.zennas_mutation.search_flops`."""
        return mutation.search_flops(genotype, self.image_size, self.num_classes)

    def search_params(self, genotype) -> int:
        """The official `get_model_size()` the search checks against its params budget: the network WITH residual
        links (BN, no SE), whatever this space's `residual` / `se`: see
        `zico_jax.spaces.zennas_mutation.search_params`."""
        return mutation.search_params(genotype, self.num_classes)

    def arch_id(self, genotype) -> int:
        """sha1 of the canonical string, mod 2**31: stable across runs and machines."""
        return int(hashlib.sha1(str(_as_genotype(genotype)).encode()).hexdigest(), 16) % 2**31

    # -- networks
    def model(self, genotype=None, dtype=jnp.float32) -> zennas_blocks.ZenNASNetwork:
        if genotype is None:
            raise NotImplementedError("zennas_imagenet has no whole-space network: genotypes have variable length "
                                      "and widths; use the standalone network (model(g)) or the tape backend")
        return zennas_blocks.ZenNASNetwork(plan(_as_genotype(genotype), self.residual, self.se), self.num_classes,
                                           dtype)

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.image_size, self.image_size, 3)

    def layers(self, genotype) -> list[LayerInfo]:
        return layer_table(_as_genotype(genotype), self.residual, self.se, self.image_size, self.num_classes)

    def official_flops(self, genotype) -> int:
        """FLOPs as the official `analyze_model.py` reports them (ptflops 0.6 hooks on nn modules): conv MACs, +1
        per output of a conv with bias, +2 per output of each BN, dense in*out + out; with SE also its pooling
        (one per input element) and its nn.ReLU (one per element). The paper's numbers: `residual=True`."""
        total = 0
        for layer in self.layers(genotype):
            outputs = layer.out_hw[0] * layer.out_hw[1] * layer.out_channels
            total += layer.macs + (outputs if layer.bias else 0) + (2 * outputs if layer.bn else 0)
            if layer.path.endswith("/se/reduce"):
                total += layer.out_channels  # nn.ReLU
            if layer.path.endswith("/dw/conv") and self.se:
                total += layer.out_hw[0] * layer.out_hw[1] * layer.out_channels  # SE's AdaptiveAvgPool2d
        return total

    # -- the network as a tape (the engine's CPU backend)
    def tape(self, genotype, dtype=jnp.float32):
        """One node per conv layer / inverted-bottleneck unit, then the head: the executables are shared by every
        candidate with the same unit configuration and input shape."""

        nodes = []
        for k, (name, kind, kw) in enumerate(plan(_as_genotype(genotype), self.residual, self.se)):
            nodes.append(TapeNode(zennas_blocks.NODE_TYPES[kind](**dict(kw), dtype=dtype), (k,), (name,)))
        nodes.append(TapeNode(zennas_blocks.ClassifierHead(self.num_classes, dtype), (len(nodes),), ("head",)))
        return nodes
