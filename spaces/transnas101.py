"""TransNAS-Bench-101 (Duan et al., CVPR 2021): the micro (cell) and macro (skeleton) search spaces.

Encoder = the official `MacroNet` (yawen-d/TransNASBench `lib/models/net_infer/net_macro.py`, `cell_micro.py`,
`net_ops/cell_ops.py`), base channels C = 64, input 256x256 (jigsaw: 9 tiles of 64 from a 255 image), NHWC:
  stem: conv3x3(3 -> C/2, stride 2) + BN, ReLU-conv3x3(C/2 -> C, stride 2)-BN        (H/4)
  a module per skeleton digit d, each of 2 cells/blocks: channels x2 if d in {2, 4}, stride 2 (first cell or
  block) if d in {3, 4}; then the task decoder (`zico_jax.spaces.transnas101_tasks`).
Micro: skeleton 41414 (5 modules, 10 cells, output 8C at H/32); genotype string `64-41414-a_bc_def`, one digit
  per edge (node 1 <- 0; node 2 <- 0, 1; node 3 <- 0, 1, 2): 0 none, 1 skip_connect, 2 nor_conv_1x1,
  3 nor_conv_3x3; 4**6 = 4096 cells. Node j = sum of its edges, output = node 3. Edges from node 0 take the cell's
  stride and C_in -> C_out; where that changes the shape, skip_connect is FactorizedReduce (ReLU, two 1x1 convs at
  the edge's stride, one on the input shifted by a pixel, concatenated, BN; stride 1 when only the channels
  change, as the official op takes the stride) and none gives zeros of the output shape.
  Code = the six digits (= NAS-Bench-Suite-Zero's `naslib_op_indices`).
Macro: cells are ResNet basic blocks (ReLU-conv3x3(stride)-BN, ReLU-conv3x3-BN, plus the input or a conv1x1(stride)
  + BN shortcut when the shape changes); genotype string `64-<digits>-basic`, 4..6 digits in 1..4 with 1..4
  downsamplings and 1..3 channel doublings: 3256 skeletons. Code = the digits padded with zeros to 6.
  Shortcut BN quirk, reproduced by default: the official block builds its shortcut BN as
  `nn.BatchNorm2d(planes, affine, track_running_stats)` (`cell_micro.py`, `ResNetBasicblock`), positionally, so
  eps = affine = True = 1.0 (and momentum = 1.0, which train-mode statistics never read). Only that BN is affected:
  the stem, ReLUConvBN, FactorizedReduce and decoder BNs pass keywords or nothing (eps 1e-5). The option
  `shortcut_bn_eps=1e-5` of the macro space builds the clean network instead (ZiCo moves by about 1%).
The "64" of the strings names the benchmark; `base_channels` shrinks the network (tests), not the string.

Architecture as data: `model(None)` of the micro space holds every op of every edge and takes the code as input
(`nn.switch` per edge, one program for all 4096 cells; weights are sliced from it by path as in `nats_tss`).
Macro shapes change with the genotype, so it has no such supernet: `model(None)` raises NotImplementedError and
the engine uses the tape backend (`tape(g)`: stem, edges or blocks and the decoder as separately compiled
nodes, shared across candidates).

Example:
    >>> space = TransNAS101Micro(task="class_scene", num_classes=63)   # NASLib's 63-class scene head
    >>> g = space.parse("64-41414-1_00_210")
    >>> space.encode(g).tolist(), space.params(g)
    ([1, 0, 0, 2, 1, 0], 910687)
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Iterator, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from zico_jax.errors import InputError
from zico_jax.nn.tape_nodes import TapeNode, add_n
from zico_jax.spaces import transnas101_tasks as T
from zico_jax.spaces.base import GenotypeError, LayerInfo, Space, register_space
from zico_jax.spaces.transnas101_encoders import (  # noqa: F401  (TASKS re-exported)
    BENCH_CHANNELS,
    CONV_KERNEL,
    EDGES,
    MICRO_SKELETON,
    OPS,
    SHORTCUT_BN_EPS,
    TASKS,
    BasicBlock,
    FactorizedReduce,
    ReducedZeros,
    ReLUConvBN,
    Stem,
    TNBNetwork,
    _down,
    _edge_args,
    skeleton_plan,
)

# ------------------------------------------------------------------------------------------------ genotypes


@dataclasses.dataclass(frozen=True)
class MicroGenotype:
    ops: tuple[int, ...]  # op code per edge, EDGES order

    def __str__(self) -> str:
        d = "".join(str(o) for o in self.ops)
        return f"{BENCH_CHANNELS}-{MICRO_SKELETON}-{d[0]}_{d[1:3]}_{d[3:]}"


@dataclasses.dataclass(frozen=True)
class MacroGenotype:
    layers: tuple[int, ...]  # skeleton digits 1..4

    def __str__(self) -> str:
        return f"{BENCH_CHANNELS}-{''.join(str(d) for d in self.layers)}-basic"


@functools.lru_cache(maxsize=None)
def macro_skeletons() -> tuple[tuple[int, ...], ...]:
    """Every valid macro skeleton: 4..6 modules, 1..4 downsamplings, 1..3 doublings (3256), by length then digits."""
    return tuple(layers for n in (4, 5, 6) for layers in itertools.product((1, 2, 3, 4), repeat=n)
                 if 1 <= sum(d > 2 for d in layers) <= 4 and 1 <= sum(d % 2 == 0 for d in layers) <= 3)


def _split(text, space: str, example: str) -> list[str]:
    if not isinstance(text, str) or text.strip().count("-") != 2:
        raise GenotypeError(f"TransNAS-Bench-101 {space} genotype: expected a string like {example!r}, got {text!r}")
    parts = text.strip().split("-")
    if parts[0] != BENCH_CHANNELS:
        raise GenotypeError(f"TransNAS-Bench-101 {space} genotype {text!r}: base channels {parts[0]!r}, expected "
                            f"'64' (the benchmark's; shrink networks with base_channels=)")
    return parts


def parse_micro(text: str) -> MicroGenotype:
    _, skeleton, cell = _split(text, "micro", "64-41414-1_02_333")
    if skeleton != MICRO_SKELETON:
        raise GenotypeError(f"TransNAS-Bench-101 micro genotype {text!r}: skeleton {skeleton!r}, expected "
                            f"{MICRO_SKELETON!r}" + (" ('basic' cells are the macro space)" if cell == "basic" else ""))
    nodes = cell.split("_")
    if [len(n) for n in nodes] != [1, 2, 3]:
        raise GenotypeError(f"TransNAS-Bench-101 micro genotype {text!r}: cell {cell!r} must be 'a_bc_def' (one digit "
                            f"per incoming edge of nodes 1, 2, 3)")
    bad = [c for c in "".join(nodes) if c not in "0123"]
    if bad:
        raise GenotypeError(f"TransNAS-Bench-101 micro genotype {text!r}: op {bad[0]!r} in cell {cell!r}; expected "
                            f"0 (none), 1 (skip_connect), 2 (nor_conv_1x1) or 3 (nor_conv_3x3)")
    return MicroGenotype(tuple(int(c) for c in "".join(nodes)))


def check_macro(layers: Sequence[int], text) -> MacroGenotype:
    layers = tuple(int(d) for d in layers)
    what = f"TransNAS-Bench-101 macro genotype {text!r}"
    if not 4 <= len(layers) <= 6:
        raise GenotypeError(f"{what}: {len(layers)} modules, expected 4 to 6")
    if any(d not in (1, 2, 3, 4) for d in layers):
        raise GenotypeError(f"{what}: module codes must be 1 (keep), 2 (channels x2), 3 (resolution /2) or 4 (both)")
    downs, doubles = sum(d > 2 for d in layers), sum(d % 2 == 0 for d in layers)
    if not 1 <= downs <= 4:
        raise GenotypeError(f"{what}: {downs} downsampling modules (3 or 4), expected 1 to 4")
    if not 1 <= doubles <= 3:
        raise GenotypeError(f"{what}: {doubles} channel-doubling modules (2 or 4), expected 1 to 3")
    return MacroGenotype(layers)


def parse_macro(text: str) -> MacroGenotype:
    _, skeleton, cell = _split(text, "macro", "64-1234-basic")
    if cell != "basic":
        raise GenotypeError(f"TransNAS-Bench-101 macro genotype {text!r}: cell {cell!r}, expected 'basic'"
                            + (" (cells 'a_bc_def' are the micro space)" if "_" in cell else ""))
    if not skeleton.isdigit():
        raise GenotypeError(f"TransNAS-Bench-101 macro genotype {text!r}: skeleton {skeleton!r} must be digits 1..4")
    return check_macro([int(c) for c in skeleton], text)


# ------------------------------------------------------------------------------------------------ the spaces


class _TransNAS101(Space):
    kind = ""
    task_kind = "dense"  # seven tasks: scene/object classification, jigsaw, layout, autoencoder, normals, segmentation
    benchmark_tasks = TASKS
    skeleton = MICRO_SKELETON
    shortcut_bn_eps = SHORTCUT_BN_EPS  # macro only (micro cells have no basic-block shortcut)

    def __init__(self, task: str = "class_scene", base_channels: int = 64, image_size: Optional[int] = None,
                 num_classes: Optional[int] = None):
        spec = T.get_task(task)
        if base_channels < 2 or base_channels % 2:
            raise InputError(f"TransNAS-Bench-101: base_channels must be an even number >= 2, got {base_channels}")
        if num_classes is not None and spec.head == "generative":
            raise InputError(f"TransNAS-Bench-101 task {task!r} outputs an RGB image: num_classes does not apply")
        self.task, self.base_channels = task, int(base_channels)
        self.image_size = int(image_size or spec.image_size)
        self.num_outputs = int(num_classes or spec.outputs)
        self.loss = spec.loss  # a plain module-level function (hashable, stable)

    def __repr__(self):
        return (f"{type(self).__name__}(task={self.task!r}, base_channels={self.base_channels}, "
                f"image_size={self.image_size}, num_classes={self.num_outputs})")

    def inputs(self, xs) -> np.ndarray:
        """Jigsaw: the 3x3 tiles of each image moved by the permutation its target names; other tasks: xs."""
        return T.jigsaw_puzzle(xs, self.num_outputs) if self.task == "jigsaw" else xs

    def targets(self, xs, labels) -> np.ndarray:
        """Synthetic targets of the task from CIFAR images (see `zico_jax.spaces.transnas101_tasks`)."""
        return T.make_targets(self.task, xs, labels, self.num_outputs)

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.image_size, self.image_size, 3)

    def _as_genotype(self, g):
        return self.parse(g) if isinstance(g, str) else (g if isinstance(g, self.genotype_type) else self.decode(g))

    def _skeleton(self, g) -> tuple[int, ...]:
        raise NotImplementedError

    def _network(self, g, dtype) -> TNBNetwork:
        code = None if g is None else tuple(int(c) for c in (g.ops if self.kind == "micro" else g.layers))
        return TNBNetwork(self.kind, code, self.task, self.num_outputs, self.base_channels, self.image_size,
                          self.skeleton, dtype, self.shortcut_bn_eps)

    # -- layer table
    def _cell_layers(self, g, name, cin, cout, stride, hw) -> list[LayerInfo]:
        raise NotImplementedError

    def layers(self, genotype) -> list[LayerInfo]:
        g = None if genotype is None else self._as_genotype(genotype)
        C, hw = self.base_channels, self.image_size
        if self.task == "jigsaw":
            hw = T.tile_size(hw)
        h1 = _down(hw, 2)
        out = [LayerInfo("stem/conv0", "conv", 3, C // 2, 3, 2, (hw, hw), (h1, h1), bn=True),
               LayerInfo("stem/conv1/conv", "conv", C // 2, C, 3, 2, (h1, h1), (_down(h1, 2),) * 2, bn=True)]
        hw, ch = _down(h1, 2), C
        for name, cin, cout, stride in skeleton_plan(self._skeleton(g), C):
            out += self._cell_layers(g, name, cin, cout, stride, hw)
            hw, ch = _down(hw, stride), cout
        return out + T.decoder_layers(T.TASKS[self.task].head, self.num_outputs, ch, hw, C, self.image_size)

    def flops(self, genotype) -> int:
        """MACs for one input image; jigsaw runs the encoder on each of its 9 tiles."""
        reps = 9 if self.task == "jigsaw" else 1
        return sum(l.macs * (1 if l.path.startswith("decoder/") else reps) for l in self.layers(genotype))

    # -- the network as a tape (the engine's CPU backend)
    def tape(self, genotype, dtype=jnp.float32):
        """The standalone network of `genotype` as `TapeNode`s: value 0 is the image batch, node k makes value k+1;
        the last node is the decoder. Parameter paths are those of `model(genotype)`."""

        g = self._as_genotype(genotype)
        nodes: list[TapeNode] = []

        def emit(fn, inputs, path=None, differentiable=True):
            nodes.append(TapeNode(fn, tuple(inputs), path, differentiable))
            return len(nodes)

        x = emit(T.jigsaw_tiles, [0], differentiable=False) if self.task == "jigsaw" else 0
        x = emit(Stem(self.base_channels, dtype), [x], ("stem",))
        for name, cin, cout, stride in skeleton_plan(self._skeleton(g), self.base_channels):
            x = self._tape_cell(g, emit, x, name, cin, cout, stride, dtype)
        head = T.Decoder(T.TASKS[self.task].head, self.num_outputs, self.base_channels, self.image_size, dtype)
        emit(head, [x], ("decoder",))
        return nodes


@register_space("transnas101_micro")
class TransNAS101Micro(_TransNAS101):
    """TransNAS-Bench-101 cell space (4096 cells). Options: task, base_channels (64), image_size (the task's),
    num_classes (the task's), skeleton (41414, the benchmark's module layout; tests shrink it)."""

    kind, genotype_type, ops = "micro", MicroGenotype, OPS

    def parse(self, text: str) -> MicroGenotype:
        return parse_micro(text)

    def encode(self, genotype) -> np.ndarray:
        return np.array(self._as_genotype(genotype).ops, dtype=np.int32)

    def decode(self, code) -> MicroGenotype:
        code = np.asarray(code)
        if code.shape != (6,) or not np.issubdtype(code.dtype, np.integer):
            raise GenotypeError(f"TransNAS-Bench-101 micro code: expected 6 integers, got {code!r}")
        if code.min() < 0 or code.max() > 3:
            raise GenotypeError(f"TransNAS-Bench-101 micro code {code.tolist()}: op codes must lie in 0..3")
        return MicroGenotype(tuple(int(c) for c in code))

    def enumerate(self) -> Iterator[MicroGenotype]:
        return (MicroGenotype(ops) for ops in itertools.product(range(4), repeat=6))

    def sample(self, rng: np.random.Generator) -> MicroGenotype:
        return self.decode(rng.integers(0, 4, 6))

    def mutate(self, genotype, rng: np.random.Generator) -> MicroGenotype:
        """Change the op of one uniformly chosen edge to a different op."""
        code = self.encode(genotype)
        e = rng.integers(6)
        code[e] = (code[e] + rng.integers(1, 4)) % 4
        return self.decode(code)

    def arch_id(self, genotype) -> int:
        """Base-4 number of the code (edge 0 least significant): 0..4095, not the benchmark's index."""
        return int(sum(int(c) * 4**i for i, c in enumerate(self.encode(genotype))))

    def model(self, genotype=None, dtype=jnp.float32) -> TNBNetwork:
        return self._network(None if genotype is None else self._as_genotype(genotype), dtype)

    def __init__(self, task: str = "class_scene", base_channels: int = 64, image_size: Optional[int] = None,
                 num_classes: Optional[int] = None, skeleton: str = MICRO_SKELETON):
        super().__init__(task, base_channels, image_size, num_classes)
        if not (isinstance(skeleton, str) and skeleton and set(skeleton) <= set("1234")):
            raise InputError(f"TransNAS-Bench-101 micro: skeleton {skeleton!r} must be digits 1..4 (benchmark: 41414)")
        self.skeleton = skeleton

    def __repr__(self):
        return super().__repr__()[:-1] + f", skeleton={self.skeleton!r})"

    def _skeleton(self, g):
        return tuple(int(d) for d in self.skeleton)

    def _cell_layers(self, g, name, cin, cout, stride, hw):
        out, hw_out = [], _down(hw, stride)
        for e, (_dst, src) in enumerate(EDGES):
            s, red = _edge_args(e, cin, cout, stride)
            c_in, h_in = (cin, hw) if src == 0 else (cout, hw_out)
            for op in (range(1, 4) if g is None else [g.ops[e]]):
                p = f"{name}/edge_{e}/{OPS[op]}"
                if OPS[op] in CONV_KERNEL:
                    out.append(LayerInfo(f"{p}/conv", "conv", c_in, cout, CONV_KERNEL[OPS[op]], s, (h_in, h_in),
                                         (hw_out, hw_out), bn=True))
                elif op == 1 and red:
                    for i, c in enumerate((cout // 2, cout - cout // 2)):
                        out.append(LayerInfo(f"{p}/conv_{i}", "conv", c_in, c, 1, s, (h_in, h_in), (hw_out, hw_out),
                                             bn=True))
        return out

    def _tape_cell(self, g, emit, x, name, cin, cout, stride, dtype):

        nodes = [x]
        for node in (1, 2, 3):
            terms = []
            for e, (dst, src) in enumerate(EDGES):
                op = OPS[g.ops[e]]
                if dst != node or op == "none":
                    continue
                s, red = _edge_args(e, cin, cout, stride)
                path = (name, f"edge_{e}", op)
                if op in CONV_KERNEL:
                    terms.append(emit(ReLUConvBN(cout, CONV_KERNEL[op], s, dtype), [nodes[src]], path))
                elif red:
                    terms.append(emit(FactorizedReduce(cout, s, dtype), [nodes[src]], path))
                else:
                    terms.append(nodes[src])
            if not terms:  # every incoming edge is `none`: zeros of the cell's output shape
                nodes.append(emit(ReducedZeros(cout, stride), [x], differentiable=False))
            else:
                nodes.append(terms[0] if len(terms) == 1 else emit(add_n, terms))
        return nodes[3]


@register_space("transnas101_macro")
class TransNAS101Macro(_TransNAS101):
    """TransNAS-Bench-101 skeleton space (3256 ResNet skeletons). Options: task, base_channels, image_size,
    num_classes as the micro space; shortcut_bn_eps (1.0, the official code's; 1e-5 gives the clean PyTorch
    default BN on the shortcut: see the module docstring)."""

    kind, genotype_type = "macro", MacroGenotype

    def __init__(self, task: str = "class_scene", base_channels: int = 64, image_size: Optional[int] = None,
                 num_classes: Optional[int] = None, shortcut_bn_eps: float = SHORTCUT_BN_EPS):
        super().__init__(task, base_channels, image_size, num_classes)
        if not (isinstance(shortcut_bn_eps, (int, float)) and not isinstance(shortcut_bn_eps, bool)
                and shortcut_bn_eps > 0):
            raise InputError(f"TransNAS-Bench-101 macro: shortcut_bn_eps must be a positive number (official 1.0, "
                             f"clean 1e-5), got {shortcut_bn_eps!r}")
        self.shortcut_bn_eps = float(shortcut_bn_eps)

    def __repr__(self):
        return super().__repr__()[:-1] + f", shortcut_bn_eps={self.shortcut_bn_eps!r})"

    def parse(self, text: str) -> MacroGenotype:
        return parse_macro(text)

    def encode(self, genotype) -> np.ndarray:
        layers = self._as_genotype(genotype).layers
        return np.array(layers + (0,) * (6 - len(layers)), dtype=np.int32)

    def decode(self, code) -> MacroGenotype:
        code = np.asarray(code)
        if code.shape != (6,) or not np.issubdtype(code.dtype, np.integer):
            raise GenotypeError(f"TransNAS-Bench-101 macro code: expected 6 integers (zero-padded), got {code!r}")
        digits = [int(c) for c in code]
        n = len(digits) - len(list(itertools.takewhile(lambda c: c == 0, reversed(digits))))
        if 0 in digits[:n]:
            raise GenotypeError(f"TransNAS-Bench-101 macro code {digits}: zeros may only pad the end")
        return check_macro(digits[:n], digits)

    def enumerate(self) -> Iterator[MacroGenotype]:
        return (MacroGenotype(layers) for layers in macro_skeletons())

    def sample(self, rng: np.random.Generator) -> MacroGenotype:
        archs = macro_skeletons()
        return MacroGenotype(archs[int(rng.integers(len(archs)))])

    def mutate(self, genotype, rng: np.random.Generator) -> MacroGenotype:
        """A uniformly chosen valid skeleton one edit away (change, insert or delete one module)."""
        d = self._as_genotype(genotype).layers
        cands = {d[:i] + (v,) + d[i + 1:] for i in range(len(d)) for v in (1, 2, 3, 4) if v != d[i]}
        cands |= {d[:i] + (v,) + d[i:] for i in range(len(d) + 1) for v in (1, 2, 3, 4)}
        cands |= {d[:i] + d[i + 1:] for i in range(len(d))}
        valid = sorted(cands & set(macro_skeletons()))
        return MacroGenotype(valid[int(rng.integers(len(valid)))])

    def arch_id(self, genotype) -> int:
        """Base-5 number of the zero-padded code (module 0 least significant): < 5**6, not the benchmark's index."""
        return int(sum(int(c) * 5**i for i, c in enumerate(self.encode(genotype))))

    def model(self, genotype=None, dtype=jnp.float32) -> TNBNetwork:
        if genotype is None:
            raise NotImplementedError("TransNAS-Bench-101 macro: feature shapes change with the skeleton, so there is "
                                      "no exact single-program supernet; the engine scores this space with the tape "
                                      "backend (space.tape(g)) and model(g) is the standalone network")
        return self._network(self._as_genotype(genotype), dtype)

    def _skeleton(self, g):
        if g is None:
            raise NotImplementedError("TransNAS-Bench-101 macro has no supernet layer table; pass a genotype")
        return g.layers

    def _cell_layers(self, g, name, cin, cout, stride, hw):
        o = _down(hw, stride)
        out = [LayerInfo(f"{name}/conv_a/conv", "conv", cin, cout, 3, stride, (hw, hw), (o, o), bn=True),
               LayerInfo(f"{name}/conv_b/conv", "conv", cout, cout, 3, 1, (o, o), (o, o), bn=True)]
        if stride != 1 or cin != cout:
            out.append(LayerInfo(f"{name}/downsample/conv", "conv", cin, cout, 1, stride, (hw, hw), (o, o), bn=True))
        return out

    def _tape_cell(self, g, emit, x, name, cin, cout, stride, dtype):
        return emit(BasicBlock(cout, stride, stride != 1 or cin != cout, dtype, self.shortcut_bn_eps), [x], (name,))

