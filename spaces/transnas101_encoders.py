"""TransNAS-Bench-101's encoder networks (Flax): the official `MacroNet` with micro cells or basic blocks.

Structure and semantics are described in `zico_jax.spaces.transnas101` (the spaces); this module holds the constants,
the skeleton plan and the modules, so that the space module stays about genotypes and the Space protocol.
BatchNorm eps is 1e-5 everywhere except the basic block's shortcut BN, 1.0 as the official code builds it
(`SHORTCUT_BN_EPS`; `BasicBlock.shortcut_bn_eps`, the macro space's `shortcut_bn_eps` option).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from zico_jax.errors import InputError
from zico_jax.spaces import transnas101_tasks as T

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (target, source), official edge order
MICRO_SKELETON = "41414"
BENCH_CHANNELS = "64"
TASKS = tuple(T.TASKS)
# The basic block's shortcut BN as the official code builds it: `nn.BatchNorm2d(planes, affine, track_running_stats)`
# passes affine=True as eps (and track_running_stats=True as momentum), so that BN normalises with eps 1.0.
SHORTCUT_BN_EPS = 1.0


def _down(hw: int, stride: int) -> int:
    return -(-hw // stride)  # conv k3/p1 or k1/p0 at stride 2: ceil(H / 2)


def skeleton_plan(skeleton: Sequence[int], base: int) -> list[tuple[str, int, int, int]]:
    """[(name, C_in, C_out, stride)] of the 2 cells/blocks per module (`MacroNet._make_layer`)."""
    plan, ch = [], base
    for i, d in enumerate(skeleton):
        out, stride = (ch * 2 if d % 2 == 0 else ch), (2 if d > 2 else 1)
        plan += [(f"layer{i}_0", ch, out, stride), (f"layer{i}_1", out, out, 1)]
        ch = out
    return plan




class ReLUConvBN(nn.Module):
    """ReLU -> conv (padding k//2, no bias) -> BN; `relu=False` is the basic block's conv1x1 + BN shortcut
    (`bn_eps`: that BN's eps, see `SHORTCUT_BN_EPS`)."""

    features: int
    kernel_size: int
    stride: int = 1
    dtype: jnp.dtype = jnp.float32
    relu: bool = True
    bn_eps: float = T.BN_EPS

    @nn.compact
    def __call__(self, x):
        x = nn.relu(x) if self.relu else x
        x = T.Conv(self.features, self.kernel_size, self.stride, dtype=self.dtype, name="conv")(x)
        return T.BN(self.dtype, self.bn_eps, name="bn")(x)


class Stem(nn.Module):
    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = T.BN(self.dtype, name="bn0")(T.Conv(self.features // 2, 3, 2, dtype=self.dtype, name="conv0")(x))
        return ReLUConvBN(self.features, 3, 2, self.dtype, name="conv1")(x)


class FactorizedReduce(nn.Module):
    """The official `FactorizedReduce(C_in, C_out, stride)`: ReLU, two 1x1 convs at `stride` (one on the input
    shifted by a pixel), concatenated, BN. The `skip_connect` of an edge that changes the shape: stride 2, or
    stride 1 with C_in != C_out (a channel-doubling module)."""

    features: int
    stride: int = 2
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = nn.relu(x)
        pad = [(0, 0)] * (x.ndim - 3) + [(0, 1), (0, 1), (0, 0)]
        shifted = jnp.pad(x, pad)[..., 1:, 1:, :]  # ConstantPad2d((0, 1, 0, 1)) then [:, :, 1:, 1:]
        half = self.features // 2
        a = T.Conv(half, 1, self.stride, dtype=self.dtype, name="conv_0")(x)
        b = T.Conv(self.features - half, 1, self.stride, dtype=self.dtype, name="conv_1")(shifted)
        return T.BN(self.dtype, name="bn")(jnp.concatenate([a, b], axis=-1))


@dataclasses.dataclass(frozen=True)
class ReducedZeros:
    """The official `Zero` op of a reducing edge: zeros of the output shape (a tape function, hashable)."""

    features: int
    stride: int

    def __call__(self, x):
        h, w = _down(x.shape[-3], self.stride), _down(x.shape[-2], self.stride)
        return jnp.zeros(x.shape[:-3] + (h, w, self.features), x.dtype)


class MicroEdge(nn.Module):
    """One cell edge. `op` fixed: the standalone op; None: every op exists and `__call__` switches on the code."""

    features: int
    stride: int
    reduce: bool
    op: Optional[int] = None
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        for name, k in CONV_KERNEL.items():
            if self.op is None or OPS[self.op] == name:
                setattr(self, name, ReLUConvBN(self.features, k, self.stride, self.dtype, name=name))
        if self.reduce and self.op in (None, 1):
            self.skip_connect = FactorizedReduce(self.features, self.stride, self.dtype, name="skip_connect")

    def apply_op(self, op: int, x):
        name = OPS[op]
        if name == "none":
            return ReducedZeros(self.features, self.stride)(x) if self.reduce else x * 0.0
        if name == "skip_connect":
            return self.skip_connect(x) if self.reduce else x
        return getattr(self, name)(x)

    def __call__(self, x, op_index=None):
        if self.op is not None:
            return self.apply_op(self.op, x)
        branches = [lambda mdl, x, op=op: mdl.apply_op(op, x) for op in range(len(OPS))]
        if self.is_initializing():
            for branch in branches:  # create every branch's params outside the switch (flax's recipe)
                branch(self, x)
        return nn.switch(op_index, branches, self, x)


def _edge_args(e: int, cin: int, cout: int, stride: int) -> tuple[int, bool]:
    """(stride, reduce) of edge e of a cell C_in -> C_out: only edges from node 0 change the shape."""
    src = EDGES[e][1]
    return (stride, stride != 1 or cin != cout) if src == 0 else (1, False)


class MicroCell(nn.Module):
    cin: int
    cout: int
    stride: int
    genotype: Optional[tuple[int, ...]] = None
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, code=None):
        nodes = [x]
        for node in (1, 2, 3):
            terms = []
            for e, (dst, src) in enumerate(EDGES):
                if dst == node:
                    s, red = _edge_args(e, self.cin, self.cout, self.stride)
                    op = None if self.genotype is None else self.genotype[e]
                    edge = MicroEdge(self.cout, s, red, op, self.dtype, name=f"edge_{e}")
                    terms.append(edge(nodes[src], None if code is None else code[e]))
            nodes.append(sum(terms[1:], terms[0]))
        return nodes[3]


class BasicBlock(nn.Module):
    """`ResNetBasicblock`: conv_a (stride) -> conv_b, plus identity or conv1x1(stride)+BN `downsample`, whose BN
    has eps `shortcut_bn_eps` (official: 1.0, see `SHORTCUT_BN_EPS`)."""

    features: int
    stride: int
    downsample: bool
    dtype: jnp.dtype = jnp.float32
    shortcut_bn_eps: float = SHORTCUT_BN_EPS

    @nn.compact
    def __call__(self, x):
        y = ReLUConvBN(self.features, 3, self.stride, self.dtype, name="conv_a")(x)
        y = ReLUConvBN(self.features, 3, 1, self.dtype, name="conv_b")(y)
        if self.downsample:
            x = ReLUConvBN(self.features, 1, self.stride, self.dtype, relu=False, bn_eps=self.shortcut_bn_eps,
                           name="downsample")(x)
        return x + y


class TNBNetwork(nn.Module):
    """Encoder + task decoder. kind "micro": `genotype` = 6 op codes, or None (code is an input); "macro":
    `genotype` = the skeleton digits."""

    kind: str
    genotype: Optional[tuple[int, ...]]
    task: str
    outputs: int
    base: int = 64
    image_size: int = 256
    skeleton: str = MICRO_SKELETON  # micro only: the module layout
    dtype: jnp.dtype = jnp.float32
    shortcut_bn_eps: float = SHORTCUT_BN_EPS  # macro only: the basic blocks' shortcut BN eps

    @nn.compact
    def __call__(self, x, code=None):
        if self.kind == "micro" and self.genotype is None and code is None:
            raise InputError("TransNAS-Bench-101 micro network(genotype=None) is the whole space: pass the code")
        if self.task == "jigsaw":
            x = T.jigsaw_tiles(x)
        x = Stem(self.base, self.dtype, name="stem")(x)
        skeleton = [int(d) for d in self.skeleton] if self.kind == "micro" else self.genotype
        for name, cin, cout, stride in skeleton_plan(skeleton, self.base):
            if self.kind == "micro":
                x = MicroCell(cin, cout, stride, self.genotype, self.dtype, name=name)(x, code)
            else:
                x = BasicBlock(cout, stride, stride != 1 or cin != cout, self.dtype, self.shortcut_bn_eps,
                               name=name)(x)
        head = T.TASKS[self.task].head
        return T.Decoder(head, self.outputs, self.base, self.image_size, self.dtype, name="decoder")(x)
