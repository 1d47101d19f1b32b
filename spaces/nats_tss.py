"""NAS-Bench-201 = NATS-Bench topology search space (TSS), as Dong & Yang define it.

Genotype: one op per edge of a 4-node cell, written as the official string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: node j lists its incoming edges ``op~i`` from nodes i < j. Edge order
(the index of ``cells.{i}.layers.{j}`` in the official PyTorch code and of the code vector here):
1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2. Op codes: none=0, skip_connect=1, nor_conv_1x1=2, nor_conv_3x3=3,
avg_pool_3x3=4 (BRP-NAS / eagle use the same), so the space has 5**6 = 15,625 genotypes.

Network (`TinyNetwork` of the official code), C=16, N=5, NHWC:
  stem conv3x3(3->C)+BN; 5 cells (C); ResNet basic block (C->2C, stride 2); 5 cells (2C); basic block (2C->4C);
  5 cells (4C); BN+ReLU; global average pool; dense classifier.
  Cell node j = sum_{i<j} op_ji(node_i); output = node 3. Ops: none -> zeros, skip_connect -> identity,
  nor_conv_kxk -> ReLU-conv(k, pad k//2)-BN, avg_pool_3x3 -> 3x3 stride 1 pad 1, padding not counted.
  Basic block: conv_a = ReLU-conv3x3(stride 2)-BN, conv_b = ReLU-conv3x3-BN, downsample = avgpool2x2 -> conv1x1
  (no BN); out = conv_b(conv_a(x)) + downsample(x).
Init: PyTorch defaults (see `zico_jax.nn.layers`); BN in train mode.

Flax parameter paths mirror the PyTorch module indices: ``cells_{i}`` for i in 0..16, with 5 and 11 the basic
blocks, and ``cells_{i}/edge_{j}/{nor_conv_1x1|nor_conv_3x3}`` for the parametric ops of edge j.

Architecture as data: `NB201Network(genotype=None)` holds both conv ops on every edge and takes the code (6 ints)
as an input; each edge runs `nn.switch` on its code, and the N cells of a stage run as one `lax.scan` (one
cell body per stage in the program). One compiled program serves all 15,625 genotypes, and the
weights of genotype g are a slice of the supernet's (linen derives each weight's init from its module path, so
the standalone network of g initialised with the same key has exactly those weights).

Example:
    >>> space = NB201Space()
    >>> g = space.parse("|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|")
    >>> space.encode(g).tolist(), space.params(g)
    ([2, 0, 0, 3, 0, 3], 587386)
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
from zico_jax.nn.tape_nodes import TapeNode, add_n, zeros_like
from zico_jax.spaces.base import GenotypeError, LayerInfo, Space, register_space

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
# (target node, source node) of each edge, in the official layer order.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_EDGES = len(EDGES)


@dataclasses.dataclass(frozen=True)
class NB201Genotype:
    """Op name per edge, in EDGES order. `str()` gives the canonical official string."""

    ops: tuple[str, ...]

    def __str__(self) -> str:
        nodes = []
        for node in (1, 2, 3):
            nodes.append("|" + "|".join(f"{self.ops[e]}~{src}" for e, (dst, src) in enumerate(EDGES) if dst == node)
                         + "|")
        return "+".join(nodes)


def parse_genotype(text: str) -> NB201Genotype:
    """Parse and validate an official NB201 string; errors name the bad node, edge or op."""
    if not isinstance(text, str) or not text.strip():
        raise GenotypeError(f"NAS-Bench-201 genotype: expected a string like '|op~0|+|op~0|op~1|+|...|', got {text!r}")
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise GenotypeError(f"NAS-Bench-201 genotype {text!r}: expected 3 nodes separated by '+', got {len(nodes)}")
    ops: dict[tuple[int, int], str] = {}
    for node, chunk in enumerate(nodes, start=1):
        if not (chunk.startswith("|") and chunk.endswith("|")) or len(chunk) < 2:
            raise GenotypeError(f"NAS-Bench-201 genotype {text!r}: node {node} {chunk!r} must look like '|op~i|...|'")
        edges = [e for e in chunk[1:-1].split("|")]
        if len(edges) != node:
            raise GenotypeError(
                f"NAS-Bench-201 genotype {text!r}: node {node} must have {node} incoming edge(s), got {len(edges)}"
            )
        for edge in edges:
            op, sep, src = edge.partition("~")
            if not sep or not src.isdigit():
                raise GenotypeError(f"NAS-Bench-201 genotype {text!r}: "
                                    f"edge {edge!r} of node {node} must be 'op~source'")
            if op not in OPS:
                raise GenotypeError(f"NAS-Bench-201 genotype {text!r}: "
                                    f"unknown op {op!r}; expected one of {', '.join(OPS)}")
            src_i = int(src)
            if src_i >= node:
                raise GenotypeError(
                    f"NAS-Bench-201 genotype {text!r}: edge {edge!r} of node {node} has source {src_i}; "
                    f"expected a source in 0..{node - 1}"
                )
            if (node, src_i) in ops:
                raise GenotypeError(f"NAS-Bench-201 genotype {text!r}: node {node} has two edges from node {src_i}")
            ops[(node, src_i)] = op
    return NB201Genotype(tuple(ops[edge] for edge in EDGES))


def _as_genotype(g) -> NB201Genotype:
    if isinstance(g, NB201Genotype):
        return g
    if isinstance(g, str):
        return parse_genotype(g)
    return NB201Space().decode(g)


# ------------------------------------------------------------------------------------------------ Flax network


class NB201Edge(nn.Module):
    """One cell edge. `op` fixed: the standalone op. `op=None`: both conv ops exist, `__call__` switches on code."""

    features: int
    op: Optional[int] = None
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        for name, k in CONV_KERNEL.items():
            if self.op is None or OPS[self.op] == name:
                setattr(self, name, nn_layers.ReLUConvBN(self.features, k, dtype=self.dtype, name=name))

    def apply_op(self, op: int, x):
        name = OPS[op]
        if name == "none":
            # x * 0, as the official `Zero` op: a literal zeros array lets XLA constant-fold whole avg-pool
            # windows over it at compile time (seconds per cell).
            return x * 0.0
        if name == "skip_connect":
            return x
        if name == "avg_pool_3x3":
            return nn_layers.avg_pool_3x3(x)
        return getattr(self, name)(x)

    def __call__(self, x, op_index=None):
        if self.op is not None:
            return self.apply_op(self.op, x)
        branches = [lambda mdl, x, op=op: mdl.apply_op(op, x) for op in range(len(OPS))]
        if self.is_initializing():
            for branch in branches:  # create every branch's params outside the switch (flax's recipe)
                branch(self, x)
        return nn.switch(op_index, branches, self, x)


class NB201Cell(nn.Module):
    features: int
    genotype: Optional[tuple[int, ...]] = None
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, code=None):
        nodes = [x]
        for node in (1, 2, 3):
            total = None
            for e, (dst, src) in enumerate(EDGES):
                if dst != node:
                    continue
                op = None if self.genotype is None else self.genotype[e]
                out = NB201Edge(self.features, op, self.dtype, name=f"edge_{e}")(
                    nodes[src], None if code is None else code[e]
                )
                total = out if total is None else total + out
            nodes.append(total)
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    """NB201's reduction block: conv_a (stride 2) -> conv_b, plus avgpool2x2 -> conv1x1 shortcut."""

    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        y = nn_layers.ReLUConvBN(self.features, 3, 2, self.dtype, name="conv_a")(x)
        y = nn_layers.ReLUConvBN(self.features, 3, 1, self.dtype, name="conv_b")(y)
        return y + nn_layers.TorchConv(self.features, 1, dtype=self.dtype, name="downsample")(nn_layers.avg_pool_2x2(x))


class Stem(nn.Module):
    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        return nn_layers.TrainBatchNorm(self.dtype, name="bn")(
            nn_layers.TorchConv(self.features, 3, dtype=self.dtype, name="conv")(x))


class ClassifierHead(nn.Module):
    """`lastact` (BN + ReLU), global average pooling, `classifier` (dense): logits."""

    num_classes: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn_layers.TrainBatchNorm(self.dtype, name="lastact")(x))
        return nn_layers.TorchDense(self.num_classes, self.dtype, name="classifier")(jnp.mean(x, axis=(1, 2)))


def stage_layout(C: int, N: int) -> list[tuple[str, int]]:
    """[(kind, channels)] of `cells_0 ..`: N cells per stage with a basic block between stages."""
    return [("cell", C)] * N + [("block", 2 * C)] + [("cell", 2 * C)] * N + [("block", 4 * C)] + [("cell", 4 * C)] * N


class NB201Network(nn.Module):
    """The NAS-Bench-201 network. `genotype` (op codes) fixed: standalone; None: code is an input."""

    genotype: Optional[tuple[int, ...]] = None
    C: int = 16
    N: int = 5
    num_classes: int = 10
    dtype: jnp.dtype = jnp.float32
    scan_cells: bool = True  # whole-space network only: a stage's cells as one lax.scan

    @nn.compact
    def __call__(self, x, code=None):
        if self.genotype is None and code is None:
            raise InputError("NB201Network(genotype=None) is the whole space: pass the architecture code")
        x = Stem(self.C, self.dtype, name="stem")(x)
        scan = self.scan_cells and self.genotype is None and not self.is_initializing()
        layout = stage_layout(self.C, self.N)
        i = 0
        while i < len(layout):
            kind, ch = layout[i]
            if kind == "block":
                x = ResNetBasicBlock(ch, self.dtype, name=f"cells_{i}")(x)
                i += 1
            elif scan:
                stage = [j for j in range(i, len(layout)) if layout[j] == ("cell", ch)][: self.N]
                x = self._scan_cells(x, code, ch, [f"cells_{j}" for j in stage])
                i += len(stage)
            else:
                x = NB201Cell(ch, self.genotype, self.dtype, name=f"cells_{i}")(x, code)
                i += 1
        return ClassifierHead(self.num_classes, self.dtype, name="head")(x)

    def _scan_cells(self, x, code, features: int, names: list[str]):
        """The N cells of a stage as one `lax.scan` over their stacked weights: the program holds one cell body
        per stage, so compile time does not grow with N. The weights stay at their per-cell paths
        (`cells_{i}`), so init, slicing to a standalone network and weight import are unchanged; the stacking is
        differentiable, so each cell still gets its own gradient."""
        params = self.variables["params"]
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *(params[name] for name in names))
        cell = NB201Cell(features, None, self.dtype, parent=None)

        def step(h, cell_params):
            return cell.apply({"params": cell_params}, h, code), None

        return jax.lax.scan(step, x, stacked)[0]


# ------------------------------------------------------------------------------------------------ the space


# NAS-Bench-201 trained its networks on three datasets; each fixes the head's classes and the input size, and has
# its accuracy columns (validation and test for CIFAR-10; the last column is the headline).
NB201_DATASETS = {
    "cifar10": {"num_classes": 10, "image_size": 32},
    "cifar100": {"num_classes": 100, "image_size": 32},
    "imagenet16_120": {"num_classes": 120, "image_size": 16},
}
NB201_GROUNDTRUTH_COLUMNS = {
    "cifar10": ("cifar10valid_valid", "cifar10_test"),
    "cifar100": ("cifar100_test",),
    "imagenet16_120": ("imagenet16_120_test",),
}


def cell_depth(space, genotype) -> int:
    """Conv layers on the longest path from the cell's input (node 0) to its output (node 3); 0 if unconnected."""
    weight = {"nor_conv_1x1": 1, "nor_conv_3x3": 1, "skip_connect": 0, "avg_pool_3x3": 0}
    longest = {0: 0}
    for node in (1, 2, 3):
        paths = [longest[src] + weight[op] for (dst, src), op in zip(EDGES, _as_genotype(genotype).ops)
                 if dst == node and op != "none" and src in longest]
        if paths:
            longest[node] = max(paths)
    return longest.get(3, 0)


@register_space("nats_tss")
class NB201Space(Space):
    """NAS-Bench-201 / NATS-Bench TSS. Options: C (16), N (5 cells per stage), num_classes (10), image size (32)."""

    ops = OPS
    datasets = NB201_DATASETS
    groundtruth_columns = NB201_GROUNDTRUTH_COLUMNS
    descriptors = {"depth": cell_depth}
    # The classifier's ReLU is functional (`head/lastact` is its BN): NASWOT codes and Zen's pre-GAP map read it.
    activation_sites = {"relu_after": ("head/lastact",), "pre_gap": "head/lastact"}
    network_latency_tables = True  # BRP-NAS's and HELP's device tables cover all 15,625 cells
    naslib_name = "nasbench201"

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10, image_size: int = 32):
        self.C, self.N, self.num_classes, self.image_size = C, N, num_classes, image_size

    def __repr__(self):
        return f"NB201Space(C={self.C}, N={self.N}, num_classes={self.num_classes}, image_size={self.image_size})"

    # -- genotypes
    def parse(self, text: str) -> NB201Genotype:
        return parse_genotype(text)

    def encode(self, genotype) -> np.ndarray:
        g = _as_genotype(genotype)
        return np.array([OPS.index(op) for op in g.ops], dtype=np.int32)

    def decode(self, code: Sequence[int]) -> NB201Genotype:
        code = np.asarray(code)
        if code.shape != (NUM_EDGES,) or not np.issubdtype(code.dtype, np.integer):
            raise GenotypeError(f"NAS-Bench-201 code: expected {NUM_EDGES} integers, got {code!r}")
        if code.min() < 0 or code.max() >= len(OPS):
            raise GenotypeError(f"NAS-Bench-201 code {code.tolist()}: op codes must lie in 0..{len(OPS) - 1}")
        return NB201Genotype(tuple(OPS[int(c)] for c in code))

    def enumerate(self) -> Iterator[NB201Genotype]:
        for ops in itertools.product(OPS, repeat=NUM_EDGES):
            yield NB201Genotype(ops)

    def sample(self, rng: np.random.Generator) -> NB201Genotype:
        return self.decode(rng.integers(0, len(OPS), NUM_EDGES))

    def mutate(self, genotype, rng: np.random.Generator, num_mutations: int = 1) -> NB201Genotype:
        """Change the ops of `num_mutations` distinct, uniformly chosen edges, each to a different op
        (uniform over the other 4). `num_mutations=1` draws exactly as before (one edge, then one offset)."""
        if not 1 <= num_mutations <= NUM_EDGES:
            raise InputError(f"NAS-Bench-201 mutate: num_mutations must lie in 1..{NUM_EDGES}, got {num_mutations}")
        code = self.encode(genotype)
        edges = [rng.integers(NUM_EDGES)] if num_mutations == 1 else rng.choice(NUM_EDGES, num_mutations, replace=False)
        for e in edges:
            code[e] = (code[e] + rng.integers(1, len(OPS))) % len(OPS)
        return self.decode(code)

    def canonical(self, genotype) -> str:
        """The cell's isomorphism class, as NAS-Bench-201's own code defines it: `CellStructure.to_unique_str(
        consider_zero=True)` (D-X-Y/AutoDL-Projects, xautodl/models/cell_searchs/genotypes.py), which gives 6,466
        classes among the 15,625 cells, the count the benchmark reports.

        A node is the sorted '+'-join of its incoming terms: `none`, or any op reading a zero node, is the zero
        term '#'; `skip_connect` passes its input's string on; any other op wraps it, `(input)@op`. Sorting makes
        the sum's order irrelevant (isomorphic cells). Every op of a type has the same shape on every edge, so
        equal strings mean the same function up to which weights sit where; a conv reading zeros, or feeding
        only `none` edges, gets exactly zero gradient and adds no ZiCo term. The form is finer than functional
        equality in one place (a '#' term is kept in a sum), which costs only a few extra scores."""
        ops = _as_genotype(genotype).ops
        nodes = {0: "0"}
        for node in (1, 2, 3):
            terms = []
            for e, (dst, src) in enumerate(EDGES):
                if dst != node:
                    continue
                op, source = ops[e], nodes[src]
                if op == "none" or source == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(source)
                else:
                    terms.append(f"({source})@{op}")
            nodes[node] = "+".join(sorted(terms))
        return nodes[3]

    def arch_id(self, genotype) -> int:
        """Base-5 number of the code (edge 0 least significant): 0..15624, not the benchmark's index."""
        return int(sum(int(c) * 5**i for i, c in enumerate(self.encode(genotype))))

    # -- networks
    def model(self, genotype=None, dtype=jnp.float32) -> NB201Network:
        code = None if genotype is None else tuple(int(c) for c in self.encode(genotype))
        return NB201Network(code, self.C, self.N, self.num_classes, dtype)

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.image_size, self.image_size, 3)

    def layers(self, genotype=None) -> list[LayerInfo]:
        """Conv/Dense layers of `genotype`; with None, every layer of the supernet (both convs on each edge)."""
        g = None if genotype is None else _as_genotype(genotype)
        hw = self.image_size
        out = [LayerInfo("stem/conv", "conv", 3, self.C, 3, 1, (hw, hw), (hw, hw), bn=True)]
        for i, (kind, ch) in enumerate(stage_layout(self.C, self.N)):
            if kind == "block":
                cin, half = ch // 2, (hw + 1) // 2
                out += [
                    LayerInfo(f"cells_{i}/conv_a/conv", "conv", cin, ch, 3, 2, (hw, hw), (half, half), bn=True),
                    LayerInfo(f"cells_{i}/conv_b/conv", "conv", ch, ch, 3, 1, (half, half), (half, half), bn=True),
                    LayerInfo(f"cells_{i}/downsample", "conv", cin, ch, 1, 1, (hw // 2, hw // 2), (hw // 2, hw // 2)),
                ]
                hw = half
                continue
            for e in range(NUM_EDGES):
                for name, k in CONV_KERNEL.items():
                    if g is None or g.ops[e] == name:
                        out.append(LayerInfo(f"cells_{i}/edge_{e}/{name}/conv", "conv", ch, ch, k, 1, (hw, hw),
                                             (hw, hw), bn=True))
        c_last = 4 * self.C
        out.append(LayerInfo("head/classifier", "dense", c_last, self.num_classes, 1, 1, (1, 1), (1, 1), bias=True))
        return out

    def extra_params(self, genotype) -> int:
        return 2 * 4 * self.C  # lastact BN scale and shift

    # -- PyTorch interop
    def torch_names(self, genotype) -> dict[str, tuple[str, str]]:
        """Official state-dict name -> (Flax path, layout) for the standalone network of `genotype`."""
        g = _as_genotype(genotype)

        def conv_bn(torch_prefix, flax_prefix, conv_idx, bn_idx):
            return {
                f"{torch_prefix}.{conv_idx}.weight": (f"{flax_prefix}/conv/kernel", "conv"),
                f"{torch_prefix}.{bn_idx}.weight": (f"{flax_prefix}/bn/scale", "vector"),
                f"{torch_prefix}.{bn_idx}.bias": (f"{flax_prefix}/bn/bias", "vector"),
            }

        names = conv_bn("stem", "stem", 0, 1)
        for i, (kind, _) in enumerate(stage_layout(self.C, self.N)):
            if kind == "block":
                names.update(conv_bn(f"cells.{i}.conv_a.op", f"cells_{i}/conv_a", 1, 2))
                names.update(conv_bn(f"cells.{i}.conv_b.op", f"cells_{i}/conv_b", 1, 2))
                names[f"cells.{i}.downsample.1.weight"] = (f"cells_{i}/downsample/kernel", "conv")
                continue
            for e, op in enumerate(g.ops):
                if op in CONV_KERNEL:
                    names.update(conv_bn(f"cells.{i}.layers.{e}.op", f"cells_{i}/edge_{e}/{op}", 1, 2))
        names["lastact.0.weight"] = ("head/lastact/scale", "vector")
        names["lastact.0.bias"] = ("head/lastact/bias", "vector")
        names["classifier.weight"] = ("head/classifier/kernel", "linear")
        names["classifier.bias"] = ("head/classifier/bias", "vector")
        return names

    # -- the network as a tape of module applications (the CPU backend of the engine)
    def tape(self, genotype, dtype=jnp.float32):
        """The standalone network of `genotype` as a list of `TapeNode`s (see `zico_jax.tape`).

        Value 0 is the input image batch; node k produces value k + 1. `none` edges produce nothing, a node
        whose every incoming edge is `none` is zeros, `skip_connect` reuses the source value.
        """

        g = _as_genotype(genotype)
        nodes: list[TapeNode] = []

        def emit(fn, inputs, path=None, differentiable=True):
            nodes.append(TapeNode(fn, tuple(inputs), path, differentiable))
            return len(nodes)

        x = emit(Stem(self.C, dtype), [0], ("stem",))
        for i, (kind, ch) in enumerate(stage_layout(self.C, self.N)):
            if kind == "block":
                x = emit(ResNetBasicBlock(ch, dtype), [x], (f"cells_{i}",))
                continue
            cell_nodes = [x]
            for node in (1, 2, 3):
                terms = []
                for e, (dst, src) in enumerate(EDGES):
                    op = g.ops[e]
                    if dst != node or op == "none":
                        continue
                    v = cell_nodes[src]
                    if op == "skip_connect":
                        terms.append(v)
                    elif op == "avg_pool_3x3":
                        terms.append(emit(nn_layers.avg_pool_3x3, [v]))
                    else:
                        conv = nn_layers.ReLUConvBN(ch, CONV_KERNEL[op], dtype=dtype)
                        terms.append(emit(conv, [v], (f"cells_{i}", f"edge_{e}", op)))
                if not terms:
                    cell_nodes.append(emit(zeros_like, [x], differentiable=False))
                elif len(terms) == 1:
                    cell_nodes.append(terms[0])
                else:
                    cell_nodes.append(emit(add_n, terms))
            x = cell_nodes[3]
        emit(ClassifierHead(self.num_classes, dtype), [x], ("head",))
        return nodes
