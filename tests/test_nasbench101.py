"""NAS-Bench-101: specs (validation, pruning, official hash, codes), the network (published parameter counts,
layer table), the engine's backends against the standalone network, and the ground truth."""

import collections
import math
import sys
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import count_compilations, tiny_batches

import zico_jax.spaces.nasbench101 as N
import zico_jax.spaces.nasbench101_graph as G
from zico_jax.data import DataNotFoundError
from zico_jax.engine import Engine
from zico_jax.grads import kernel_leaves
from zico_jax.groundtruth import load_groundtruth
from zico_jax.groundtruth import nasbench101 as GT
from zico_jax.nn.tape_nodes import add_n
from zico_jax.proxies import ProxyOptions, feature_shapes, zico
from zico_jax.spaces import GenotypeError, get_space

C3, C1, MP = G.CONV3X3, G.CONV1X1, G.MAXPOOL3X3


def spec(edges, ops):
    """Spec from an edge list and the interior ops (input/output added)."""
    n = len(ops) + 2
    m = np.zeros((n, n), int)
    for i, j in edges:
        m[i, j] = 1
    return G.make_spec(m, ["input", *ops, "output"])


# NAS-Bench-101 colab (google-research/nasbench NASBench.ipynb): the Inception-like query spec and the dataset's
# stored spec it maps to; both print trainable_parameters: 2694282.
INCEPTION = spec([(0, 1), (0, 2), (0, 3), (0, 5), (3, 4), (1, 6), (2, 6), (4, 6), (5, 6)], [C1, C3, C3, C3, MP])
INCEPTION_STORED = spec([(0, 1), (0, 2), (0, 3), (0, 4), (4, 5), (1, 6), (2, 6), (3, 6), (5, 6)], [C3, C1, MP, C3, C3])
# NNI's NAS-Bench-101 example (microsoft/nni docs/en_US/NAS/BenchmarksExample.ipynb): hash 00005c14...,
# 'parameters': 8.55553 (M); the dataset row dumps give n_params 8555530.
NNI = spec([(0, 1), (1, 2), (2, 3), (0, 4), (0, 5), (3, 5), (4, 5), (2, 6), (5, 6)], [C3, MP, C3, C3, C1])
# Hand-made: a width-2 vertex truncated into a width-1 vertex at 6 channels (k = 4 feeders: 2, 2, 1, 1).
TRUNC = spec([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (1, 6), (2, 6), (3, 6), (5, 6)], [C3, MP, C1, C3, MP])
# Input feeding the output (concat + proj_out), and the input-only cell (proj_out alone).
PROJ_OUT = spec([(0, 1), (1, 2), (2, 4), (0, 3), (3, 4), (0, 4)], [C3, C1, MP])
INPUT_ONLY = spec([(0, 1)], [])


# ------------------------------------------------------------------------------------------------ specs


def test_published_hash_and_isomorphism():
    assert G.spec_hash(NNI) == "00005c142e6f48ac74fdcf73e3439874"
    assert G.spec_hash(INCEPTION) == G.spec_hash(INCEPTION_STORED)  # the colab's query and stored spec
    assert G.spec_hash(INCEPTION) != G.spec_hash(NNI)
    # graph_util_test: the diamond with its two labels swapped is one graph.
    diamond = [(0, 1), (0, 2), (1, 3), (2, 3)]
    assert G.spec_hash(spec(diamond, [C1, MP])) == G.spec_hash(spec(diamond, [MP, C1]))
    # ... a chain is not (order matters on a path).
    chain = [(0, 1), (1, 2), (2, 3)]
    assert G.spec_hash(spec(chain, [C1, MP])) != G.spec_hash(spec(chain, [MP, C1]))
    # Any relabelling of interior vertices that keeps the matrix upper-triangular keeps the hash.
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(200):
        s = G.random_spec(rng)
        n = s.num_vertices
        perm = [0, *(1 + rng.permutation(n - 2)), n - 1]  # new vertex i is old vertex perm[i]
        m = s.array[np.ix_(perm, perm)]
        if n > 3 and not np.tril(m).any() and perm != sorted(perm):
            assert G.spec_hash(G.make_spec(m, [s.ops[p] for p in perm])) == G.spec_hash(s)
            checked += 1
    assert checked > 10


@pytest.mark.parametrize("matrix, cin, cout, expected", [
    # google-research/nasbench nasbench/tests/model_builder_test.py
    ([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], 8, 16, [8, 16, 16, 16]),
    ([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], 16, 8, [16, 8, 8, 8]),
    ([[0, 1], [0, 0]], 5, 1, [5, 1]),
    ([[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0] * 5], 8, 16, [8, 16, 16, 16, 16]),
    ([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], 8, 15, [8, 8, 7, 15]),
    ([[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5], 8, 8, [8, 3, 3, 2, 8]),
    ([[0, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5], 8, 9, [8, 5, 5, 4, 9]),
    ([[0, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0] * 5], 8, 15, [8, 8, 7, 7, 15]),
])
def test_vertex_channels_official_cases(matrix, cin, cout, expected):
    assert G.vertex_channels(cin, cout, np.array(matrix)) == expected


@pytest.mark.parametrize("text, message", [
    ("0100000|input|output", "adjacency of 7 bits is not square"),
    ("0110|input|output", r"upper-triangular .* entry \(1, 0\)"),
    ("0100|input|conv3x3-bn-relu|output", "3 op labels for a 2 x 2 adjacency"),
    ("0100|conv3x3-bn-relu|output", "must start with 'input' and end with 'output'"),
    ("0100|input|maxpool3x3", "must start with 'input' and end with 'output'"),
    ("010001000|input|conv5x5|output", "unknown op 'conv5x5' at vertex 1"),
    ("010001000|input|input|output", "unknown op 'input' at vertex 1"),
    ("010000000|input|conv3x3-bn-relu|output", "the input is not connected to the output"),
    ("01x0|input|output", "string of 0/1 digits"),
    ("6,0100|input|output", "CSV row form"),
    ("3,0100,input|output", "n_nodes=3 but the adjacency is 2 x 2"),
    ("", "expected a string"),
    # 8 vertices on a chain, and the complete 7-vertex DAG: over the benchmark's limits after pruning.
    ("".join("1" if j == i + 1 else "0" for i in range(8) for j in range(8)) + "|input" + "|conv1x1-bn-relu" * 6
     + "|output", "8 vertices after pruning; at most 7"),
    ("".join("1" if j > i else "0" for i in range(7) for j in range(7)) + "|input" + "|maxpool3x3" * 5 + "|output",
     "21 edges after pruning; at most 9"),
])
def test_invalid_specs_name_the_problem(text, message):
    with pytest.raises(GenotypeError, match=message):
        G.parse_spec(text)


def test_pruning_as_model_spec():
    # 2 has no way out, 3 -> 4 cannot be reached from the input, 5 is isolated: only 0 -> 1 -> 6 remains.
    m = np.zeros((7, 7), int)
    for i, j in [(0, 1), (1, 6), (0, 2), (3, 4), (4, 6)]:
        m[i, j] = 1
    s = G.make_spec(m, ["input", C1, C3, MP, C3, C1, "output"])
    assert str(s) == "010001000|input|conv1x1-bn-relu|output"
    assert s == G.parse_spec("".join(map(str, m.ravel())) + "|input|conv1x1-bn-relu|conv3x3-bn-relu|maxpool3x3|"
                             "conv3x3-bn-relu|conv1x1-bn-relu|output")
    assert str(G.parse_spec("7," + str(INCEPTION).replace("|", ",", 1))) == str(INCEPTION)  # CSV row form


def test_codes_round_trip_and_ids():
    rng = np.random.default_rng(1)
    specs = [G.random_spec(rng) for _ in range(300)] + [INCEPTION, NNI, TRUNC, PROJ_OUT, INPUT_ONLY]
    space = N.NB101Space()
    ids = {}
    for s in specs:
        code = space.encode(s)
        assert code.shape == (26,) and space.decode(code) == s and space.parse(str(s)) == s
        ids.setdefault(space.arch_id(s), str(s))
        assert ids[space.arch_id(s)] == str(s) and 0 <= space.arch_id(s) < 2**31
    assert len(ids) == len({str(s) for s in specs})
    # Smaller specs are padded: vertices 0..n-2 in place, the output at 6, absent vertices coded 0.
    code = space.encode(PROJ_OUT).tolist()
    edges = [G.TRIU[i] for i, b in enumerate(code[:21]) if b]
    assert edges == [(0, 1), (0, 3), (0, 6), (1, 2), (2, 6), (3, 6)] and code[21:] == [1, 2, 3, 0, 0]


@pytest.mark.parametrize("code, message", [
    ([0] * 25, "expected 26 integers"),
    ([2] + [0] * 25, "edge entries must be 0 or 1"),
    ([0] * 21 + [4, 0, 0, 0, 0], r"op codes must lie in 0..3"),
    ([1] + [0] * 20 + [0, 0, 0, 0, 0], "vertex 1 has op code 0"),
    ([0] * 26, "not connected"),
])
def test_bad_codes(code, message):
    with pytest.raises(GenotypeError, match=message):
        G.decode_spec(np.array(code))


def test_sample_and_mutate_are_valid_and_seeded():
    space = N.NB101Space()
    a = [str(space.sample(np.random.default_rng(7))) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(3)
    for _ in range(30):
        s = space.sample(rng)
        child = space.mutate(s, rng)
        assert child != s and space.parse(str(child)) == child


# ------------------------------------------------------------------------------------------------ counts


def independent_params(s: G.NB101Spec, stem=128, stacks=3, cells=3, classes=10) -> int:
    """From the definition, apart from the space's plan: conv k*k*in*out + BN 2*out per conv-BN-ReLU."""
    cbr = lambda k, i, o: k * k * i * o + 2 * o  # noqa: E731
    m, n = s.array, s.num_vertices
    total, cin = cbr(3, 3, stem), stem
    for st in range(stacks):
        for _ in range(cells):
            cout = stem * 2**st
            ch = G.vertex_channels(cin, cout, m)
            for t in range(1, n - 1):
                total += cbr(1, cin, ch[t]) if m[0, t] else 0
                total += {C3: cbr(3, ch[t], ch[t]), C1: cbr(1, ch[t], ch[t]), MP: 0}[s.ops[t]]
            total += cbr(1, cin, cout) if (m[0, n - 1] or not m[1:, n - 1].any()) else 0
            cin = cout
    return total + cin * classes + classes


def test_published_parameter_counts():
    space = N.NB101Space()
    assert space.params(INCEPTION) == space.params(INCEPTION_STORED) == 2_694_282  # NAS-Bench-101 colab
    assert space.params(NNI) == 8_555_530  # NNI example (8.55553 M)
    rng = np.random.default_rng(2)
    for s in [G.random_spec(rng) for _ in range(40)] + [TRUNC, PROJ_OUT, INPUT_ONLY]:
        assert space.params(s) == independent_params(s)


@pytest.mark.parametrize("s", [INCEPTION, TRUNC, PROJ_OUT, INPUT_ONLY])
@pytest.mark.parametrize("image_size", [8, 7])
def test_layer_table_matches_the_network(s, image_size):
    """Kernel shapes, output feature maps and parameter totals of the flax network equal `layers(g)`; two stacks
    cover the downsampling ('same': 7 -> 4) and a first cell whose input has half its channels."""
    space = get_space("nasbench101", stem_channels=6, num_stacks=2, num_cells=2, image_size=image_size)
    model, x = space.model(s), jnp.zeros(space.input_shape(2))
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    table = space.layers(s)
    assert feature_shapes(model, variables, x) == {l.path: (*l.out_hw, l.out_channels) for l in table}
    assert {p: k.size for p, k in kernel_leaves(variables["params"]).items()} == {l.path: l.weight_count
                                                                                   for l in table}
    total = sum(leaf.size for leaf in jax.tree.leaves(variables))
    assert total == space.params(s) == independent_params(s, stem=6, stacks=2, cells=2)
    assert space.flops(s) == sum(l.weight_count * l.out_hw[0] * l.out_hw[1] for l in table)


def test_space_options_and_supernet_errors():
    with pytest.raises(ValueError, match="stem_channels=4; expected >= 5"):
        N.NB101Space(stem_channels=4)
    with pytest.raises(ValueError, match="pass the architecture code"):
        N.NB101Space(stem_channels=6).model(None).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))


# ------------------------------------------------------------------------------------------------ init

# One conv3x3 vertex fed by the input (proj1 1x1 + vertex1 3x3), at stem 64, 2 stacks of 1 cell, 1000 classes:
# stem/conv 3x3 3 -> 64; stack1_cell0/proj1_c128 1x1 64 -> 128; stack1_cell0/vertex1_conv3x3_c128 3x3 128 -> 128;
# head/classifier 128 -> 1000.
ONE_CONV = spec([(0, 1), (1, 2)], [C3])
# (path, kernel, cin, cout, fan_in, fan_out) written out by hand (TF's _compute_fans / PyTorch's fan for HWIO).
INIT_CONVS = [
    (("stem", "conv"), 3, 3, 64, 27, 576),
    (("stack1_cell0", "proj1_c128", "conv"), 1, 64, 128, 64, 128),
    (("stack1_cell0", "vertex1_conv3x3_c128", "conv"), 3, 128, 128, 1152, 1152),
]


def _truncnorm2_std():
    """Std of a standard normal truncated to [-2, 2], from the closed form (not from TF's constant)."""
    pdf2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    return math.sqrt(1 - 2 * 2 * pdf2 / mass)


@pytest.fixture(scope="module")
def init_params():
    """float64 params of ONE_CONV under each init (jax_enable_x64 set only while initialising)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        out = {}
        for init in N.INITS:
            space = N.NB101Space(stem_channels=64, num_stacks=2, num_cells=1, num_classes=1000, image_size=4,
                                 init=init)
            model = space.model(ONE_CONV, dtype=jnp.float64)
            params = model.init(jax.random.key(5), jnp.zeros((1, 4, 4, 3), jnp.float64))["params"]
            out[init] = jax.tree.map(np.asarray, params)
        return out
    finally:
        jax.config.update("jax_enable_x64", previous)


def _leaf(params, path):
    for k in path:
        params = params[k]
    return params


def _rel_sd(n, kurtosis):
    """Relative standard error of a sample std over n iid draws (delta method): sqrt((kurtosis - 1) / (4 n))."""
    return math.sqrt((kurtosis - 1) / (4 * n))


def test_default_init_and_option():
    assert N.NB101Space().init == "zero_cost_nas" == N.DEFAULT_INIT
    assert get_space("nasbench101", init="tf_official").init == "tf_official"
    assert "init='pytorch'" in repr(N.NB101Space(init="pytorch"))
    with pytest.raises(ValueError, match="init='torch'; expected one of zero_cost_nas, tf_official, pytorch"):
        N.NB101Space(init="torch")
    nodes = N.NB101Space(stem_channels=6, num_stacks=1, num_cells=1, init="tf_official").tape(INCEPTION)
    assert {n.fn.weight_init for n in nodes if isinstance(n.fn, (N.ConvBnRelu, N.Head))} == {"tf_official"}


@pytest.mark.parametrize("init", N.INITS)
def test_init_params_do_not_depend_on_init(init_params, init):
    """Shapes (hence the parameter count) and the BN affine init (scale 1, shift 0) are the same under every init."""
    shapes = jax.tree.map(np.shape, init_params[init])
    assert shapes == jax.tree.map(np.shape, init_params["pytorch"])
    assert sum(int(np.prod(s)) for s in jax.tree.leaves(shapes, is_leaf=lambda x: isinstance(x, tuple))) == \
        N.NB101Space(stem_channels=64, num_stacks=2, num_cells=1, num_classes=1000, image_size=4).params(ONE_CONV)
    for path, *_ in INIT_CONVS:
        bn = _leaf(init_params[init], path[:-1] + ("bn",))
        np.testing.assert_array_equal(bn["scale"], 1.0)
        np.testing.assert_array_equal(bn["bias"], 0.0)
        assert _leaf(init_params[init], path)["kernel"].dtype == np.float64


@pytest.mark.parametrize("path,k,cin,cout,fan_in,fan_out", INIT_CONVS)
def test_conv_inits_match_their_distributions(init_params, path, k, cin, cout, fan_in, fan_out):
    n = k * k * cin * cout
    # pytorch: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)); std bound / sqrt(3).
    w = _leaf(init_params["pytorch"], path)["kernel"]
    bound = 1 / math.sqrt(fan_in)
    assert w.shape == (k, k, cin, cout) and np.abs(w).max() <= bound and np.abs(w).max() > bound * (1 - 10 / n)
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=5 * _rel_sd(n, 1.8))
    # tf_official: variance_scaling_initializer() = scale 1, fan_in, truncated normal at +-2 sigma with sigma
    # chosen so that the truncated std is sqrt(1 / fan_in).
    w = _leaf(init_params["tf_official"], path)["kernel"]
    sigma = math.sqrt(1 / fan_in) / _truncnorm2_std()
    assert _truncnorm2_std() == pytest.approx(N.TRUNC_STD, rel=1e-12)
    assert np.abs(w).max() <= 2 * sigma * (1 + 1e-12) and np.abs(w).max() > 1.9 * sigma
    assert w.std() == pytest.approx(math.sqrt(1 / fan_in), rel=5 * _rel_sd(n, 2.4))  # kurtosis of truncnorm(2) < 2.4
    # zero_cost_nas: nasbench1.Network._initialize_weights: normal_(0, sqrt(2 / (k * k * out_channels))), untruncated.
    w = _leaf(init_params["zero_cost_nas"], path)["kernel"]
    std = math.sqrt(2 / fan_out)
    assert w.std() == pytest.approx(std, rel=5 * _rel_sd(n, 3.0))
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    assert np.abs(w).max() > 2.5 * std  # not truncated at 2 sigma (P(max <= 2.5 sigma) < 1e-10 for n >= 1728)


def test_dense_inits_match_their_distributions(init_params):
    fan_in, fan_out, n = 128, 1000, 128 * 1000
    head = {init: init_params[init]["head"]["classifier"] for init in N.INITS}
    # pytorch: kernel and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1 / math.sqrt(fan_in)
    for leaf, count in ((head["pytorch"]["kernel"], n), (head["pytorch"]["bias"], fan_out)):
        assert np.abs(leaf).max() <= bound and np.abs(leaf).max() > bound * (1 - 20 / count)
        assert leaf.std() == pytest.approx(bound / math.sqrt(3), rel=5 * _rel_sd(count, 1.8))
    # tf_official: tf.layers.dense defaults: get_variable's glorot_uniform (limit sqrt(6 / (fan_in + fan_out)));
    # bias zeros_initializer.
    limit = math.sqrt(6 / (fan_in + fan_out))
    w = head["tf_official"]["kernel"]
    assert np.abs(w).max() <= limit and np.abs(w).max() > limit * (1 - 10 / n)
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=5 * _rel_sd(n, 1.8))
    # zero_cost_nas: normal_(0, 0.01), bias zero_().
    w = head["zero_cost_nas"]["kernel"]
    assert w.std() == pytest.approx(0.01, rel=5 * _rel_sd(n, 3.0)) and np.abs(w).max() > 3.5 * 0.01
    for init in ("tf_official", "zero_cost_nas"):
        np.testing.assert_array_equal(head[init]["bias"], 0.0)


def test_pytorch_init_is_the_previous_behaviour():
    """init='pytorch' draws exactly what zico_jax.nn.layers' TorchConv / TorchDense drew (same paths, same keys)."""
    from zico_jax.nn.layers import TorchConv, TorchDense, TrainBatchNorm

    class OldConvBnRelu(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.relu(TrainBatchNorm(name="bn")(TorchConv(8, 3, name="conv")(x)))

    class OldHead(nn.Module):
        @nn.compact
        def __call__(self, x):
            return TorchDense(10, name="classifier")(jnp.mean(x, axis=(1, 2)))

    x = jnp.ones((2, 5, 5, 4))
    for old, new in ((OldConvBnRelu(), N.ConvBnRelu(8, 3, weight_init="pytorch")),
                     (OldHead(), N.Head(10, weight_init="pytorch"))):
        a, b = old.init(jax.random.key(3), x), new.init(jax.random.key(3), x)
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(old.apply(a, x), new.apply(b, x))


# ------------------------------------------------------------------------------------------------ engine


@pytest.fixture(scope="module")
def tiny():
    return get_space("nasbench101", stem_channels=6, num_stacks=1, num_cells=1, image_size=8)


def _slice(full, like):
    """The standalone network's weights: the supernet's leaves at the standalone's paths."""
    return {k: _slice(full[k], v) for k, v in like.items()} if isinstance(like, dict) else full


@pytest.mark.parametrize("s", [TRUNC, PROJ_OUT, INPUT_ONLY])
def test_backends_and_standalone_agree(x64, tiny, s):
    """Seeded tape scores = ZiCo of the standalone network on the same weights = the supernet program on them."""
    xs, ys = (jnp.asarray(a) for a in tiny_batches(dtype=np.float64))
    options = ProxyOptions(beta=1.0)
    tape = Engine(tiny, xs, ys, ("zico", "zico_bc"), seed=3, backend="tape", options=options)
    a = tape.score_one(s)
    model = tiny.model(s, dtype=jnp.float64)
    standalone = jax.eval_shape(model.init, tape.candidate_key(s), xs[0, :1])["params"]
    params = _slice(tape.initial_params(s), standalone)
    assert jax.tree.map(lambda p: (p.shape, p.dtype), params) == jax.tree.map(lambda p: (p.shape, p.dtype),
                                                                               standalone)
    # rel 1e-9: float64 round-off of different summation orders (the zero_cost_nas init's N(0, 0.01) classifier
    # makes the logits tiny; the agreement was 1e-10 under the PyTorch default init).
    assert float(zico(model, {"params": params}, xs, ys)) == pytest.approx(a.scores["zico"], rel=1e-9)
    supernet = Engine(tiny, xs, ys, ("zico", "zico_bc"), seed=3, backend="supernet", options=options)
    b = supernet.score_one(s, params=params)
    assert b.scores["zico"] == pytest.approx(a.scores["zico"], rel=1e-9)
    assert b.scores["zico_bc"] == pytest.approx(a.scores["zico_bc"], rel=1e-9)
    assert a.layers_counted == b.layers_counted == len(tiny.layers(s))


def test_standalone_init_is_a_slice_of_the_space_init(x64, tiny):
    """linen derives weights from module paths: the standalone network of g, initialised with g's key, holds
    exactly the supernet's weights at its paths (what the tape backend reads). Both run flax's init eagerly,
    initialiser by initialiser (one jitted program could fuse an initialiser's arithmetic differently, by an ulp)."""
    xs, ys = (jnp.asarray(a) for a in tiny_batches(dtype=np.float64))
    engine = Engine(tiny, xs, ys, ("zico",), backend="tape")
    standalone = tiny.model(TRUNC, dtype=jnp.float64).init(engine.candidate_key(TRUNC), xs[0, :1])
    sliced = _slice(engine.initial_params(TRUNC), standalone["params"])
    for a, b in zip(jax.tree.leaves(standalone["params"]), jax.tree.leaves(sliced)):
        np.testing.assert_array_equal(a, b)


def tape_signatures(space, s) -> set:
    """What the tape backend compiles for `s`: (function or module, input (channels, size)) per node, and the
    cotangent sums of values read more than once. Shapes follow the node types."""
    nodes = space.tape(s, dtype=jnp.float64)
    shape = {0: (3, space.image_size)}
    sigs = set()
    for k, node in enumerate(nodes[:-1]):
        ins = tuple(shape[v] for v in node.inputs)
        sigs.add((node.fn, ins))
        fn, (c, hw) = node.fn, ins[0]
        if isinstance(fn, N.ConvBnRelu):
            c = fn.features
        elif isinstance(fn, N.Truncate):
            c = fn.channels
        elif fn is N.concat:
            c = sum(i[0] for i in ins)
        shape[k + 1] = (c, -(-hw // 2) if fn is N.max_pool_2x2 else hw)
    reads = collections.Counter(v for node in nodes for v in node.inputs)
    return sigs | {("cotangent sum", shape[v]) for v, r in reads.items() if r > 1 and v > 0}


def test_tape_compilations_stop_growing(x64, tiny):
    """Once a warm-up set has compiled every (module or function, shape) a new candidate needs, scoring new
    candidates compiles nothing: executables are bounded by the space, not by the number of candidates."""
    xs, ys = (jnp.asarray(a) for a in tiny_batches(dtype=np.float64))
    engine = Engine(tiny, xs, ys, ("zico",), seed=0, backend="tape")
    rng = np.random.default_rng(11)
    stream = list(dict.fromkeys(str(tiny.sample(rng)) for _ in range(400)))
    warm, seen = stream[:25], set()
    for s in warm:
        seen |= tape_signatures(tiny, tiny.parse(s))
    later = [s for s in stream[25:] if tape_signatures(tiny, tiny.parse(s)) <= seen][:25]
    assert len(later) == 25 and add_n in {sig[0] for sig in seen}
    with count_compilations() as first:
        list(engine.score(warm))
    with count_compilations() as rest:
        results = list(engine.score(later))
    assert first[0] > 0 and rest[0] == 0, (first[0], rest[0])
    assert len({round(r.scores["zico"], 8) for r in results}) > 15  # really different candidates
    all_sigs = set().union(*(tape_signatures(tiny, tiny.parse(s)) for s in stream))
    assert len(all_sigs) < 80 < len(stream)  # a bounded set of executables for hundreds of candidates


# ------------------------------------------------------------------------------------------------ ground truth


@pytest.fixture()
def no_env(monkeypatch):
    monkeypatch.delenv(GT.NB101_ENV, raising=False)


def test_csv_ground_truth(no_env):
    gt = load_groundtruth("nasbench101")
    assert len(gt) == 301 and gt.columns == ("val_accuracy",) and gt.name == "nb101"
    hashes = collections.defaultdict(list)
    for arch in gt.archs():
        s = G.parse_spec(arch)
        assert str(s) == arch  # keys are canonical (pruned) strings
        hashes[G.spec_hash(s)].append(arch)
    assert len(hashes) == 292
    # Row 0 (unpruned in the CSV) is unique: its own value; isomorphic archs share their hash's mean.
    row0 = "011111000001000001000010000001000000|input|maxpool3x3|maxpool3x3|conv3x3-bn-relu|conv3x3-bn-relu|output"
    assert gt.arch(0) == row0 and gt.value(row0, "val_accuracy") == pytest.approx(92.578125)
    for archs in hashes.values():
        assert len({gt.value(a, "val_accuracy") for a in archs}) == 1
    space = N.NB101Space()
    assert all(space.parse(a) is not None for a in gt.archs()[::50])


def test_ground_truth_paths_and_errors(tmp_path, monkeypatch):
    table = tmp_path / "nb101.csv"
    table.write_text("n_nodes,adjacency_rowmajor,ops,val_accuracy\n"
                     f"2,0100,input|output,80.5\n7,{str(INCEPTION).replace('|', ',', 1)},93.0\n")
    monkeypatch.setenv(GT.NB101_ENV, str(table))
    gt = GT.load_nb101()
    assert gt.archs() == [str(INPUT_ONLY), str(INCEPTION)] and gt.value(str(INCEPTION), "val_accuracy") == 93.0
    with pytest.raises(DataNotFoundError, match=r"missing\.csv not found.*ZICO_JAX_NB101"):
        GT.load_nb101(tmp_path / "missing.csv")  # the argument beats the environment
    bad = tmp_path / "bad.csv"
    bad.write_text("adjacency_rowmajor,ops,val_accuracy\n0100,input|output,1\n0110,input|output,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv, line 3: .*upper-triangular"):
        GT.load_nb101(bad)
    bad.write_text("adjacency,ops\n")
    with pytest.raises(ValueError, match="missing column.*adjacency_rowmajor"):
        GT.load_nb101(bad)


def test_official_file_through_the_nasbench_api(tmp_path, monkeypatch):
    """A stand-in for the `nasbench` package checks the API calls and their mapping onto the columns."""

    class FakeNASBench:
        def __init__(self, path):
            assert path.endswith("nasbench_only108.tfrecord")

        def hash_iterator(self):
            return {G.spec_hash(NNI): NNI, G.spec_hash(INCEPTION): INCEPTION_STORED}.keys()

        def get_metrics_from_hash(self, h):
            s = NNI if h == G.spec_hash(NNI) else INCEPTION_STORED
            fixed = {"module_adjacency": s.array.astype(np.int8), "module_operations": list(s.ops),
                     "trainable_parameters": N.NB101Space().params(s)}
            runs = [{"final_validation_accuracy": 0.9 + r / 100, "final_test_accuracy": 0.8 + r / 100}
                    for r in range(3)]
            return fixed, {108: runs}

    monkeypatch.setitem(sys.modules, "nasbench", types.SimpleNamespace(api=types.SimpleNamespace(
        NASBench=FakeNASBench)))
    record = tmp_path / "nasbench_only108.tfrecord"
    record.write_bytes(b"")
    gt = GT.load_nb101(record)
    assert gt.columns == GT.NB101_OFFICIAL_COLUMNS
    assert gt.archs() == [str(NNI), str(INCEPTION_STORED)]  # sorted by hash: 00005c... first
    assert gt.value(str(NNI), "val_accuracy") == pytest.approx(91.0)
    assert gt.value(str(INCEPTION_STORED), "test_accuracy") == pytest.approx(81.0)
    assert gt.value(str(INCEPTION_STORED), "trainable_parameters") == 2_694_282
    monkeypatch.setitem(sys.modules, "nasbench", None)  # makes `import nasbench` fail
    with pytest.raises(ImportError, match="pip install ./nasbench"):
        GT.load_nb101(record)
