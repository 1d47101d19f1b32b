"""NAS-Bench-101 (Ying et al., ICML 2019): the benchmark's network for a cell spec, and the space of specs.

Genotype: a pruned cell spec (`zico_jax.spaces.nasbench101_graph.NB101Spec`), written canonically as the row-major
adjacency bits and the op labels, e.g. ``0100110001000000010010000010000001000000010000000|input|conv3x3-bn-relu|
maxpool3x3|conv3x3-bn-relu|conv3x3-bn-relu|conv1x1-bn-relu|output`` (spec hash 00005c142e6f48ac74fdcf73e3439874).

Network (`nasbench/lib/model_builder.py`; defaults stem_channels=128, num_stacks=3, num_cells=3), NHWC:
  stem: conv3x3(3 -> 128)-BN-ReLU; stacks s = 0..2 of 3 cells with C_s = 128 * 2**s output channels, each stack
  after the first starting with max-pool 2x2 stride 2 ('same': ceil(H / 2)); global average pool; dense 10-way.
  Cell (cin -> C): vertex channels by `compute_vertex_channels` (C split over the vertices feeding the output, the
  first C % k of them one more; other vertices take the max of their successors). Vertex t = sum, in this order,
  of its interior inputs truncated to its channels (the first ones kept) and of `proj` (1x1 conv-BN-ReLU
  cin -> ch[t]) of the cell input if the input feeds t; then its op: conv3x3 / conv1x1 -BN-ReLU (ch -> ch) or
  max-pool 3x3 stride 1 'same'. Output = concat of the vertices feeding it (vertex order), plus `proj_out`
  (cin -> C) of the cell input if the input feeds the output; `proj_out` alone if no vertex feeds it.
Semantics: BN in train mode (batch statistics, eps 1e-5, as TF's and PyTorch's), scale 1 and shift 0 at init
under every choice below; convs without bias, as the official TF code (`use_bias=False`) and every PyTorch port
(romulus0914/NASBench-PyTorch, the zero-cost-NAS / NASLib `nasbench1.py`: `nn.Conv2d(..., bias=False)`); the
dense layer has a bias.
Init (space option `init`; fan_in = cin * k * k, fan_out = cout * k * k for a k x k conv):
  "zero_cost_nas" (default): SamsungLabs/zero-cost-nas `foresight/models/nasbench1.py`: `Network.__init__` calls
    `_initialize_weights()` (l. 72; l. 93-106): conv ~ N(0, 2 / fan_out) (`normal_(0, sqrt(2 / n))`,
    n = k * k * out_channels, untruncated), dense kernel ~ N(0, 0.01^2), dense bias 0. Its `nasbench1_pred.py`
    (l. 107-110) scores that network as built: `find_measures` does not re-initialise (`init_net` /
    `weight_initializers.py` is not called on this path). These are the weights of the published zero-cost
    NAS-Bench-101 tables; the ZiCo repository (SLDGroup/ZiCo) has no NAS-Bench-101 code.
  "tf_official": google-research/nasbench `nasbench/lib/base_ops.py` l. 47 `tf.variance_scaling_initializer()`
    (TF1 defaults scale 1.0, mode fan_in, distribution truncated_normal): conv ~ N(0, s^2) truncated to
    +-2 s with s = sqrt(1 / fan_in) / 0.87962566103423978 (std after truncation sqrt(1 / fan_in));
    `model_builder.py` l. 97-99 `tf.layers.dense` defaults: kernel glorot_uniform (get_variable's default),
    U(+-sqrt(6 / (fan_in + fan_out))), bias zeros_initializer.
  "pytorch": PyTorch's default (`zico_jax.nn.layers`): conv and dense kernels and dense bias
    U(+-1 / sqrt(fan_in)) (the behaviour before this option existed).
Parameter count = the dataset's `trainable_parameters` convention: conv kernels, BN scale and shift, dense kernel
and bias (TF's trainable variables; BN moving statistics are not trainable). It reproduces the published counts
2,694,282 (the colab's Inception-like cell, google-research/nasbench NASBench.ipynb) and 8,555,530 (the spec with
hash 00005c142e6f48ac74fdcf73e3439874, NNI's NAS-Bench-101 example: 8.55553 M).

Flax paths: ``stem/{conv,bn}``, ``stack{s}_cell{m}/{name}/{conv,bn}`` with name ``proj{t}_c{ch}``,
``vertex{t}_conv3x3_c{ch}``, ``vertex{t}_conv1x1_c{ch}`` or ``proj_out``, and ``head/classifier``. Each name holds
its channel count, so a path fixes its weights' shape across specs.

Architecture as data (`model(None)`: `NB101Network(spec=None)` of `NB101SuperCell`s): every cell holds, for each
vertex position 1..5 and each possible channel count (`nasbench101_graph.widths`), its projection and both convs;
the code (`encode`) picks them with `nn.switch`, the adjacency drives masked truncations and sums, the output
concat is a gather. Vertex tensors are kept C wide, zero beyond their channels. Every standalone weight is the
supernet's at the same path (linen derives weights from paths), and the computation is the same up to adding
exact zeros (the tests check the ZiCo of both in float64). The price: the full-size supernet holds 96.7M weights
(7 channel counts x 3 modules x 5 vertices per cell), all drawn at every init; the engine's CPU (tape) backend
reads its weights from that init too, then runs only the candidate's layers (`tape`).

Example:
    >>> space = NB101Space()
    >>> g = space.parse("0111010000000100000010000100000000100000010000000|input|conv1x1-bn-relu|"
    ...                 "conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|maxpool3x3|output")
    >>> space.params(g)  # the NAS-Bench-101 colab's Inception-like cell
    2694282
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zico_jax.errors import InputError
from zico_jax.nn.layers import TrainBatchNorm, torch_uniform_init
from zico_jax.nn.tape_nodes import TapeNode, add_n
from zico_jax.spaces import nasbench101_graph as G
from zico_jax.spaces.base import GenotypeError, LayerInfo, Space, register_space

NUM_INTERIOR = G.MAX_VERTICES - 2
_SHORT = {G.CONV3X3: "conv3x3", G.CONV1X1: "conv1x1"}

# scipy.stats.truncnorm.std(a=-2, b=2): TF's VarianceScaling (tensorflow/python/ops/init_ops.py) and jax's
# variance_scaling(..., "truncated_normal") both divide by it so that the truncated draw has the requested std.
TRUNC_STD = 0.87962566103423978
INITS = ("zero_cost_nas", "tf_official", "pytorch")
DEFAULT_INIT = "zero_cost_nas"


def _check_init(init: str) -> str:
    if init not in INITS:
        raise InputError(f"nasbench101: init={init!r}; expected one of {', '.join(INITS)}")
    return init


def conv_kernel_init(init: str, kernel: int, cin: int, cout: int):
    """The initializer of a (kernel, kernel, cin, cout) conv kernel (HWIO) under `init` (see `NB101Space`); jax's
    variance_scaling reads fan_in = cin * k * k and fan_out = cout * k * k from that shape."""
    if init == "pytorch":  # U(+-1/sqrt(fan_in))
        return torch_uniform_init(cin * kernel * kernel)
    if init == "tf_official":  # TF1 variance_scaling_initializer(): scale 1, fan_in, truncated at +-2 std (TRUNC_STD)
        return nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
    return nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # zero_cost_nas: normal_(0, sqrt(2 / n))


def dense_inits(init: str, fan_in: int, fan_out: int):
    """(kernel, bias) initializers of the (fan_in, fan_out) classifier under `init` (see `NB101Space`)."""
    if init == "pytorch":  # kernel and bias U(+-1/sqrt(fan_in))
        return torch_uniform_init(fan_in), torch_uniform_init(fan_in)
    if init == "tf_official":  # get_variable's default glorot_uniform: U(+-sqrt(6 / (fan_in + fan_out))); bias 0
        return nn.initializers.glorot_uniform(), nn.initializers.zeros
    return nn.initializers.normal(0.01), nn.initializers.zeros  # zero_cost_nas: normal_(0, 0.01), bias zero_()


class NB101Conv(nn.Module):
    """2-D convolution, NHWC, stride 1, pad k // 2, no bias; kernel (k, k, cin, features) drawn by `init`."""

    features: int
    kernel_size: int
    weight_init: str = DEFAULT_INIT
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, cin = self.kernel_size, x.shape[-1]
        kernel = self.param("kernel", conv_kernel_init(self.weight_init, k, cin, self.features),
                            (k, k, cin, self.features), self.dtype)
        pad = k // 2
        return jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), window_strides=(1, 1),
                                            padding=((pad, pad), (pad, pad)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))


class NB101Dense(nn.Module):
    """Dense layer with bias; kernel (fan_in, features) and bias drawn by `init`."""

    features: int
    weight_init: str = DEFAULT_INIT
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        kinit, binit = dense_inits(self.weight_init, fan_in, self.features)
        kernel = self.param("kernel", kinit, (fan_in, self.features), self.dtype)
        bias = self.param("bias", binit, (self.features,), self.dtype)
        return x @ kernel.astype(x.dtype) + bias.astype(x.dtype)


class ConvBnRelu(nn.Module):
    """conv (k x k, stride 1, pad k // 2, no bias) -> BN (train mode) -> ReLU: `base_ops.conv_bn_relu`."""

    features: int
    kernel_size: int
    dtype: jnp.dtype = jnp.float32
    weight_init: str = DEFAULT_INIT

    @nn.compact
    def __call__(self, x):
        x = NB101Conv(self.features, self.kernel_size, self.weight_init, self.dtype, name="conv")(x)
        return nn.relu(TrainBatchNorm(self.dtype, name="bn")(x))


class Head(nn.Module):
    """Global average pool, then `classifier` (dense with bias): logits."""

    num_classes: int
    dtype: jnp.dtype = jnp.float32
    weight_init: str = DEFAULT_INIT

    @nn.compact
    def __call__(self, x):
        logits = NB101Dense(self.num_classes, self.weight_init, self.dtype, name="classifier")
        return logits(jnp.mean(x, axis=(1, 2)))


def _pool(x, window: int, stride: int, pad: tuple[tuple[int, int], tuple[int, int]]):
    """Max pool over the (H, W) axes of (..., H, W, C); padding never wins (-inf), as TF's and PyTorch's."""
    lead = x.ndim - 3
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1,) * lead + (window, window, 1),
                                 (1,) * lead + (stride, stride, 1), ((0, 0),) * lead + pad + ((0, 0),))


def max_pool_3x3(x):
    """The `maxpool3x3` op: 3x3, stride 1, 'same'."""
    return _pool(x, 3, 1, ((1, 1), (1, 1)))


def max_pool_2x2(x):
    """The downsampling between stacks: 2x2, stride 2, TF 'same' (an odd row / column is padded at the end)."""
    return _pool(x, 2, 2, ((0, x.shape[-3] % 2), (0, x.shape[-2] % 2)))


def concat(*xs):
    return jnp.concatenate(xs, axis=-1)


def _sum(*xs):
    return functools.reduce(jnp.add, xs)


@dataclasses.dataclass(frozen=True)
class Truncate:
    """Keep the first `channels` channels (`model_builder.truncate`). Equal by value: one compiled kernel per
    width in the tape backend."""

    channels: int

    def __call__(self, x):
        return x[..., : self.channels]


@dataclasses.dataclass(frozen=True)
class Step:
    """One application in a cell: kind 'conv' (ConvBnRelu `name`: in_ch -> features, kernel), 'sum' or 'fn'.
    `inputs` index the cell's values: 0 is the cell input, step k makes value k + 1."""

    kind: str
    inputs: tuple[int, ...]
    name: Optional[str] = None
    fn: Any = None
    features: int = 0
    kernel: int = 0
    in_ch: int = 0


def cell_plan(spec: G.NB101Spec, cin: int, cout: int) -> tuple[list[Step], int]:
    """The cell of `spec` (cin -> cout channels) as steps in `build_module`'s order, and its output value."""
    m, n = spec.array, spec.num_vertices
    ch = G.vertex_channels(cin, cout, m)
    steps: list[Step] = []

    def emit(kind, inputs, **kw) -> int:
        steps.append(Step(kind, tuple(inputs), **kw))
        return len(steps)

    tensors, concat_in = [0], []
    for t in range(1, n - 1):
        terms = []
        for src in range(1, t):
            if m[src, t]:
                v = tensors[src]
                terms.append(v if ch[src] == ch[t] else emit("fn", [v], fn=Truncate(ch[t])))
        if m[0, t]:
            terms.append(emit("conv", [0], name=f"proj{t}_c{ch[t]}", features=ch[t], kernel=1, in_ch=cin))
        vin = terms[0] if len(terms) == 1 else emit("sum", terms)
        op = spec.ops[t]
        if op == G.MAXPOOL3X3:
            out = emit("fn", [vin], fn=max_pool_3x3)
        else:
            out = emit("conv", [vin], name=f"vertex{t}_{_SHORT[op]}_c{ch[t]}", features=ch[t],
                       kernel=G.CONV_KERNEL[op], in_ch=ch[t])
        tensors.append(out)
        if m[t, n - 1]:
            concat_in.append(out)
    proj_out = dict(name="proj_out", features=cout, kernel=1, in_ch=cin)
    if not concat_in:
        return steps, emit("conv", [0], **proj_out)
    out = concat_in[0] if len(concat_in) == 1 else emit("fn", concat_in, fn=concat)
    if m[0, n - 1]:
        out = emit("sum", [out, emit("conv", [0], **proj_out)])
    return steps, out


class NB101Cell(nn.Module):
    """The standalone cell of `spec` with `out_channels` outputs."""

    spec: G.NB101Spec
    out_channels: int
    dtype: jnp.dtype = jnp.float32
    weight_init: str = DEFAULT_INIT

    @nn.compact
    def __call__(self, x):
        steps, out = cell_plan(self.spec, x.shape[-1], self.out_channels)
        values = [x]
        for s in steps:
            args = [values[i] for i in s.inputs]
            if s.kind == "conv":
                values.append(ConvBnRelu(s.features, s.kernel, self.dtype, self.weight_init, name=s.name)(args[0]))
            else:
                values.append(_sum(*args) if s.kind == "sum" else s.fn(*args))
        return values[out]


def _traced_channels(a, cout: int) -> list:
    """`vertex_channels` of the padded 7-vertex matrix `a` (traced ints) for vertices 1..5 (0 where absent)."""
    feeds = a[1:6, 6]
    k = jnp.maximum(feeds.sum(), 1)
    rank = jnp.cumsum(feeds) - feeds  # feeders before this one: the first cout % k get one more channel
    ch = list(jnp.where(feeds == 1, cout // k + (rank < cout % k), 0))
    for v in range(4, 0, -1):
        best = ch[v - 1]
        for dst in range(v + 1, 6):
            best = jnp.maximum(best, a[v, dst] * ch[dst - 1])
        ch[v - 1] = jnp.where(feeds[v - 1] == 1, ch[v - 1], best)
    return ch


class NB101SuperCell(nn.Module):
    """Every cell of the space at one position (output channels fixed); `__call__(x, code)` runs `code`'s cell."""

    out_channels: int
    dtype: jnp.dtype = jnp.float32
    weight_init: str = DEFAULT_INIT

    def setup(self):
        for t in range(1, NUM_INTERIOR + 1):
            for c in G.widths(self.out_channels):
                for name, k in ((f"proj{t}_c{c}", 1), (f"vertex{t}_conv3x3_c{c}", 3), (f"vertex{t}_conv1x1_c{c}", 1)):
                    setattr(self, name, ConvBnRelu(c, k, self.dtype, self.weight_init, name=name))
        self.proj_out = ConvBnRelu(self.out_channels, 1, self.dtype, self.weight_init, name="proj_out")

    def _switch(self, index, branches, x):
        if self.is_initializing():
            # Create every branch's weights. The output is never used at init (only the params are), so the
            # switch, which would trace every branch a second time, is skipped.
            return [branch(self, x) for branch in branches][0]
        return nn.switch(index, branches, self, x)

    def __call__(self, x, code):
        cout, wide = self.out_channels, G.widths(self.out_channels)
        nw = len(wide)
        a = jnp.zeros((G.MAX_VERTICES, G.MAX_VERTICES), jnp.int32).at[tuple(np.array(G.TRIU).T)].set(code[:21])
        opc = code[21:]
        ch = _traced_channels(a, cout)
        width_index = lambda c: jnp.sum(jnp.where(jnp.array(wide) == c, jnp.arange(nw), 0))  # noqa: E731
        zeros = lambda mdl, y: jnp.zeros(y.shape[:-1] + (cout,), y.dtype)  # noqa: E731
        pad = lambda y: jnp.pad(y, ((0, 0),) * (y.ndim - 1) + ((0, cout - y.shape[-1]),))  # noqa: E731
        lanes = jnp.arange(cout)
        tensors = [None]
        for t in range(1, NUM_INTERIOR + 1):
            acc = jnp.zeros(x.shape[:-1] + (cout,), x.dtype)
            keep = (lanes < ch[t - 1]).astype(x.dtype)  # truncation to this vertex's channels
            for src in range(1, t):
                acc = acc + (a[src, t] * keep) * tensors[src]
            projs = [zeros] + [lambda mdl, y, c=c, t=t: pad(getattr(mdl, f"proj{t}_c{c}")(y)) for c in wide]
            acc = acc + self._switch(jnp.where(a[0, t] == 1, 1 + width_index(ch[t - 1]), 0), projs, x)
            ops = [zeros, lambda mdl, y: max_pool_3x3(y)]
            for kind in ("conv3x3", "conv1x1"):
                ops += [lambda mdl, y, c=c, t=t, kind=kind: pad(getattr(mdl, f"vertex{t}_{kind}_c{c}")(y[..., :c]))
                        for c in wide]
            o, w = opc[t - 1], width_index(ch[t - 1])
            index = jnp.select([o == 0, o == 3, o == 1], [0, 1, 2 + w], 2 + nw + w)
            tensors.append(self._switch(index, ops, acc))
        # Output concat as a gather: output channel j is channel j - start[v] of the feeder v with start <= j < end.
        fed = jnp.stack([ch[v] * a[v + 1, 6] for v in range(NUM_INTERIOR)])
        ends = jnp.cumsum(fed)
        which = jnp.minimum(jnp.sum(ends[None, :] <= lanes[:, None], axis=1), NUM_INTERIOR - 1)
        source = which * cout + lanes - (ends - fed)[which]
        stacked = jnp.concatenate(tensors[1:], axis=-1)  # (..., 5 * cout)
        out = jnp.where(lanes < ends[-1], jnp.take(stacked, source, axis=-1), 0.0)
        return out + self._switch(a[0, 6], [zeros, lambda mdl, y: mdl.proj_out(y)], x)


def _layout(space: "NB101Space") -> list[tuple[str, int, int, int]]:
    """[(cell name, downsample before it, out channels, feature-map size)] in forward order."""
    out, c, hw = [], space.stem_channels, space.image_size
    for s in range(space.num_stacks):
        for m in range(space.num_cells):
            down = s > 0 and m == 0
            hw = -(-hw // 2) if down else hw
            out.append((f"stack{s}_cell{m}", down, c * 2 if down else c, hw))
            c = out[-1][2]
    return out


class NB101Network(nn.Module):
    """The NAS-Bench-101 network: of `spec` (standalone), or with spec=None of the whole space (`code` input)."""

    spec: Optional[G.NB101Spec]
    layout: tuple
    stem_channels: int = 128
    num_classes: int = 10
    dtype: jnp.dtype = jnp.float32
    weight_init: str = DEFAULT_INIT

    @nn.compact
    def __call__(self, x, code=None):
        if self.spec is None and code is None:
            raise InputError("NB101Network(spec=None) is the whole space: pass the architecture code (space.encode)")
        x = ConvBnRelu(self.stem_channels, 3, self.dtype, self.weight_init, name="stem")(x)
        for name, down, cout, _ in self.layout:
            x = max_pool_2x2(x) if down else x
            if self.spec is None:
                x = NB101SuperCell(cout, self.dtype, self.weight_init, name=name)(x, jnp.asarray(code, jnp.int32))
            else:
                x = NB101Cell(self.spec, cout, self.dtype, self.weight_init, name=name)(x)
        return Head(self.num_classes, self.dtype, self.weight_init, name="head")(x)


@register_space("nasbench101")
class NB101Space(Space):
    """NAS-Bench-101. Options: stem_channels (128, >= 5: a cell splits its channels over up to 5 vertices),
    num_stacks (3), num_cells per stack (3), num_classes (10), image_size (32), init ("zero_cost_nas" |
    "tf_official" | "pytorch": the weight init, see the module docstring)."""

    ops = G.OPS

    def __init__(self, stem_channels: int = 128, num_stacks: int = 3, num_cells: int = 3, num_classes: int = 10,
                 image_size: int = 32, init: str = DEFAULT_INIT):
        if stem_channels < G.MAX_VERTICES - 2:
            raise InputError(f"nasbench101: stem_channels={stem_channels}; expected >= 5 (a cell's output "
                             f"channels are split over up to 5 vertices)")
        if min(num_stacks, num_cells, num_classes, image_size) < 1:
            raise InputError("nasbench101: num_stacks, num_cells, num_classes and image_size must be positive")
        self.stem_channels, self.num_stacks, self.num_cells = stem_channels, num_stacks, num_cells
        self.num_classes, self.image_size = num_classes, image_size
        self.init = _check_init(init)
        self.layout = tuple(_layout(self))

    def __repr__(self):
        return (f"NB101Space(stem_channels={self.stem_channels}, num_stacks={self.num_stacks}, "
                f"num_cells={self.num_cells}, num_classes={self.num_classes}, image_size={self.image_size}, "
                f"init={self.init!r})")

    # -- genotypes
    def parse(self, text: str) -> G.NB101Spec:
        return G.parse_spec(text)

    def from_matrix(self, matrix, ops: Sequence[str]) -> G.NB101Spec:
        """The pruned spec of an official (matrix, ops) pair, as `api.ModelSpec(matrix, ops)`."""
        return G.make_spec(matrix, ops)

    def _spec(self, genotype) -> G.NB101Spec:
        if isinstance(genotype, G.NB101Spec):
            return genotype
        if isinstance(genotype, str):
            return G.parse_spec(genotype)
        return G.decode_spec(genotype)

    def encode(self, genotype) -> np.ndarray:
        return G.encode_spec(self._spec(genotype))

    def decode(self, code: Sequence[int]) -> G.NB101Spec:
        return G.decode_spec(code)

    def sample(self, rng: np.random.Generator) -> G.NB101Spec:
        """The official colab's `random_spec` (uniform raw 7-vertex spec, rejected until valid, then pruned)."""
        return G.random_spec(rng)

    def mutate(self, genotype, rng: np.random.Generator) -> G.NB101Spec:
        """The official colab's `mutate_spec` (edge flips and op changes), retried until valid and different."""
        return G.mutate_spec(self._spec(genotype), rng)

    def arch_id(self, genotype) -> int:
        """The code packed into 31 bits: stable, unique per pruned spec (not per hash: isomorphic specs differ)."""
        return G.code_to_int(self.encode(genotype))

    def spec_hash(self, genotype) -> str:
        """The benchmark's isomorphism-invariant md5 key of the spec."""
        return G.spec_hash(self._spec(genotype))

    # -- networks
    def model(self, genotype=None, dtype=jnp.float32) -> NB101Network:
        spec = None if genotype is None else self._spec(genotype)
        return NB101Network(spec, self.layout, self.stem_channels, self.num_classes, dtype, self.init)

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.image_size, self.image_size, 3)

    def layers(self, genotype) -> list[LayerInfo]:
        spec = self._spec(genotype)
        hw, c = self.image_size, self.stem_channels
        out = [LayerInfo("stem/conv", "conv", 3, c, 3, 1, (hw, hw), (hw, hw), bn=True)]
        for name, _, cout, hw in self.layout:
            for s in cell_plan(spec, c, cout)[0]:
                if s.kind == "conv":
                    out.append(LayerInfo(f"{name}/{s.name}/conv", "conv", s.in_ch, s.features, s.kernel, 1, (hw, hw),
                                         (hw, hw), bn=True))
            c = cout
        out.append(LayerInfo("head/classifier", "dense", c, self.num_classes, 1, 1, (1, 1), (1, 1), bias=True))
        return out

    # -- the network as a tape of module applications (the CPU backend of the engine)
    def tape(self, genotype, dtype=jnp.float32):
        """The standalone network of `genotype` as `TapeNode`s (see `zico_jax.tape`): convs are module nodes at
        their flax paths; truncations, max-pools, concats and sums are parameter-free function nodes."""

        spec = self._spec(genotype)
        nodes: list[TapeNode] = []

        def emit(fn, inputs, path=None):
            nodes.append(TapeNode(fn, tuple(inputs), path))
            return len(nodes)

        x, c = emit(ConvBnRelu(self.stem_channels, 3, dtype, self.init), [0], ("stem",)), self.stem_channels
        for name, down, cout, _ in self.layout:
            x = emit(max_pool_2x2, [x]) if down else x
            steps, out = cell_plan(spec, c, cout)
            ids = [x]
            for s in steps:
                inputs = [ids[i] for i in s.inputs]
                if s.kind == "conv":
                    ids.append(emit(ConvBnRelu(s.features, s.kernel, dtype, self.init), inputs, (name, s.name)))
                else:
                    ids.append(emit(add_n if s.kind == "sum" else s.fn, inputs))
            x, c = ids[out], cout
        emit(Head(self.num_classes, dtype, self.init), [x], ("head",))
        return nodes


__all__ = ["NB101Space", "NB101Network", "NB101Cell", "NB101SuperCell", "ConvBnRelu", "Head", "cell_plan",
           "GenotypeError"]
