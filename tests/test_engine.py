"""The engine's backends agree with each other and with the standalone network; compilations do not grow."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import count_compilations, tiny_batches

from zico_jax.engine import Engine
from zico_jax.engine._supernet import _needed_equations, batched_program, dispatched_ops, supernet_init, supernet_terms
from zico_jax.grads import kernel_leaves
from zico_jax.nn.layers import uniform
from zico_jax.proxies import ProxyOptions, feature_shapes, zico, zico_bc
from zico_jax.sharding import candidate_mesh
from zico_jax.spaces import get_space

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
]


@pytest.fixture(scope="module")
def space():
    return get_space("nats_tss", C=4, N=1, image_size=8)


def _slice(full, like):
    """The standalone network's weights: the supernet's leaves at the standalone's paths."""
    return {k: _slice(full[k], v) for k, v in like.items()} if isinstance(like, dict) else full


@pytest.mark.parametrize("arch", ARCHS[:2])  # the two cover every op; a third only repeats them
def test_backends_and_standalone_agree(x64, space, arch):
    xs, ys = (jnp.asarray(a) for a in tiny_batches(dtype=np.float64))
    options = ProxyOptions(beta=1.0)
    tape = Engine(space, xs, ys, ("zico", "zico_bc"), seed=3, backend="tape", options=options)
    supernet = Engine(space, xs, ys, ("zico", "zico_bc"), seed=3, backend="supernet", options=options)
    a, b = tape.score_one(arch), supernet.score_one(arch)
    assert a.scores["zico"] == pytest.approx(b.scores["zico"], rel=1e-10)
    assert a.scores["zico_bc"] == pytest.approx(b.scores["zico_bc"], rel=1e-10)
    assert a.layers_counted == b.layers_counted > 0

    g = space.parse(arch)
    model = space.model(g, dtype=jnp.float64)
    standalone = model.init(jax.random.key(0), xs[0])["params"]
    params = _slice(tape.initial_params(g), jax.tree.map(lambda x: x, standalone))
    variables = {"params": params}
    assert float(zico(model, variables, xs, ys)) == pytest.approx(a.scores["zico"], rel=1e-10)
    assert float(zico_bc(model, variables, xs, ys)) == pytest.approx(a.scores["zico_bc"], rel=1e-10)


def test_standalone_init_is_a_slice_of_the_space_init(space):
    """linen derives weights from module paths: the standalone network of g, initialised with g's key, holds
    exactly the supernet's weights at its paths. This is what makes 'architecture as data' the same network."""
    xs, ys = tiny_batches()
    engine = Engine(space, xs, ys, ("zico",))
    g = space.parse(ARCHS[0])
    standalone = space.model(g).init(engine.candidate_key(g), xs[0, :1])["params"]
    sliced = _slice(engine.initial_params(g), standalone)
    for a, b in zip(jax.tree.leaves(standalone), jax.tree.leaves(sliced)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_space_init_run_op_by_op_gives_the_jitted_bits(x64, dtype):
    """supernet_init runs the initialisers as their own executables (no 10 s compile of one init program):
    the weights must be bit for bit those of the jitted `init`, for several keys."""
    space = get_space("nats_tss", C=4, N=2, image_size=8)
    supernet = space.model(None, dtype=dtype)
    code = jnp.asarray(space.encode(space.parse(ARCHS[1])))
    jitted = jax.jit(lambda key, code: supernet.init(key, jnp.zeros((1, 8, 8, 3), dtype), code)["params"])
    dispatched = supernet_init(supernet, (8, 8, 3), jnp.dtype(dtype))
    for i in range(3):
        key = jax.random.fold_in(jax.random.key(5), i)
        want, got = jitted(key, code), dispatched(key, code)
        assert jax.tree.structure(want) == jax.tree.structure(got)
        for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
            assert a.dtype == b.dtype == jnp.dtype(dtype)
            np.testing.assert_array_equal(a, b)


# Shapes across the size classes, at a class's edges, and tiny ones.
UNIFORM_SHAPES = [(), (10,), (3, 3, 3, 16), (4096,), (4097,), (3, 3, 32, 64), (70000,)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_size_class_uniform_is_jax_random_uniform_bit_for_bit(x64, dtype):
    """The flat prefix of a size class's draw is the shaped draw: eagerly, under jit and under vmap over keys."""
    keys = jax.random.split(jax.random.key(11), 3)
    for shape in UNIFORM_SHAPES:
        want = jax.vmap(lambda k, shape=shape: jax.random.uniform(k, shape, dtype, -0.25, 0.5))(keys)
        got_vmap = jax.vmap(lambda k, shape=shape: uniform(k, shape, dtype, -0.25, 0.5))(keys)
        got_jit = jax.jit(lambda k, shape=shape: uniform(k, shape, dtype, -0.25, 0.5))(keys[1])
        got = uniform(keys[2], shape, dtype, -0.25, 0.5)
        assert got.shape == shape and got.dtype == jnp.dtype(dtype)
        np.testing.assert_array_equal(got_vmap, want)
        np.testing.assert_array_equal(got_jit, want[1])
        np.testing.assert_array_equal(got, want[2])


def test_size_class_uniform_compiles_one_sampler_per_size_class():
    key = jax.random.key(0)
    shapes = [(3, 3, 5, 7), (1, 1, 9, 11), (13, 17), (2, 3, 4, 5, 6)]  # all under 4,096 values: one size class
    jax.random.uniform(key, (4096,), jnp.float32, -1.0, 1.0).block_until_ready()  # the class's sampler, compiled
    with count_compilations() as count:
        for shape in shapes:
            uniform(key, shape, jnp.float32, -1.0, 1.0).block_until_ready()
    assert count[0] == len(shapes)  # one prefix-and-reshape program per shape, no new sampler


def test_size_class_uniform_falls_back_for_other_key_types():
    key = jax.random.key(0, impl="rbg")
    np.testing.assert_array_equal(uniform(key, (3, 5)), jax.random.uniform(key, (3, 5)))


def test_dispatched_ops_drop_what_the_outputs_do_not_need():
    def fn(x):
        unused = jnp.cos(x) * 2.0
        return {"y": jnp.sin(x) + 1.0, "n": unused.shape[0]}

    jaxpr = jax.make_jaxpr(fn)(jnp.ones(3)).jaxpr
    assert {e.primitive.name for e in jaxpr.eqns} >= {"cos", "mul", "sin", "add"}
    assert [e.primitive.name for e in _needed_equations(jaxpr).eqns] == ["sin", "add"]
    x = jnp.arange(3.0)
    out = dispatched_ops(fn)(x)
    np.testing.assert_array_equal(out["y"], jnp.sin(x) + 1.0)
    assert int(out["n"]) == 3


def test_layer_table_matches_the_network(space):
    """space.layers(g) (analytic, used by ZiCo-BC and FLOPs) agrees with the shapes the network produces."""
    xs, _ = tiny_batches()
    for arch in ARCHS:
        g = space.parse(arch)
        model = space.model(g)
        variables = model.init(jax.random.key(0), xs[0])
        shapes = feature_shapes(model, variables, xs[0])
        table = {layer.path: (*layer.out_hw, layer.out_channels) for layer in space.layers(g)}
        assert shapes == table
        kernels = kernel_leaves(variables["params"])
        assert {p: k.size for p, k in kernels.items()} == {layer.path: layer.weight_count for layer in space.layers(g)}


def test_supernet_compiles_once_for_many_architectures(space):
    xs, ys = tiny_batches()
    engine = Engine(space, xs, ys, ("zico", "zico_bc"), backend="supernet", candidate_batch=8)
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(str(space.sample(rng)) for _ in range(400)))[:201]
    assert len(archs) == 201
    with count_compilations() as first:
        next(engine.score(archs[:1]))
    with count_compilations() as rest:
        results = list(engine.score(archs[1:]))  # 200 more, in 25 batches
    assert first[0] >= 1 and rest[0] == 0, (first[0], rest[0])
    assert len({round(r.scores["zico"], 6) for r in results}) > 150  # really different candidates


def test_tape_executables_do_not_grow_with_candidates(space):
    xs, ys = tiny_batches()
    engine = Engine(space, xs, ys, ("zico",), backend="tape")
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(120)]
    with count_compilations() as warm:
        list(engine.score(archs[:80]))
    with count_compilations() as later:
        list(engine.score(archs[80:]))
    assert warm[0] > 0 and later[0] == 0, (warm[0], later[0])


def test_scores_depend_on_seed_and_arch_only(space):
    xs, ys = tiny_batches()
    a = Engine(space, xs, ys, ("zico",), seed=5).score_one(ARCHS[0]).scores["zico"]
    b = list(Engine(space, xs, ys, ("zico",), seed=5).score([ARCHS[1], ARCHS[0]]))[1].scores["zico"]
    c = Engine(space, xs, ys, ("zico",), seed=6).score_one(ARCHS[0]).scores["zico"]
    assert a == b and a != c


def test_engine_input_errors(space):
    xs, ys = tiny_batches()
    with pytest.raises(ValueError, match=r"at least 2 mini-batches"):
        Engine(space, xs[:1], ys[:1])
    with pytest.raises(ValueError, match=r"expected xs \(N, B, H, W, C\)"):
        Engine(space, xs[0], ys[0])
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        Engine(space, xs, ys, backend="gpu")
    with pytest.raises(KeyError, match="unknown proxy 'zenn'"):
        Engine(space, xs, ys, ("zico", "zenn"))


def test_stage_scan_keeps_program_size_and_numbers(x64):
    """The supernet runs a stage's N cells as one lax.scan: the program holds the same convolutions whatever N,
    and its per-layer terms equal those of the cells written out one after another."""
    xs, ys = (jnp.asarray(a) for a in tiny_batches(dtype=np.float64))
    convs = []
    for n in (1, 2):
        space = get_space("nats_tss", C=4, N=n, image_size=8)
        program = batched_program(space.model(None, dtype=jnp.float64), (8, 8, 3), jnp.float64, False,
                                  candidate_mesh(), "map", space.loss)
        text = program.lower(np.zeros(1, np.uint32), np.zeros((1, 6), np.int32), np.uint32(0), xs, ys).as_text()
        convs.append(text.count("stablehlo.convolution"))
    assert convs[0] == convs[1] > 0, convs

    space = get_space("nats_tss", C=4, N=2, image_size=8)
    engine = Engine(space, xs, ys, ("zico",), seed=1, backend="supernet")
    g = space.parse(ARCHS[0])
    params, code = engine.initial_params(g), jnp.asarray(space.encode(g))
    scanned = space.model(None, dtype=jnp.float64)
    unrolled = dataclasses.replace(scanned, scan_cells=False)
    a = supernet_terms(scanned, "unroll", False, space.loss)(params, code, xs, ys)[0]
    b = supernet_terms(unrolled, "unroll", False, space.loss)(params, code, xs, ys)[0]
    assert set(a) == set(b) and len(a) > 10
    for path in a:
        np.testing.assert_allclose(a[path], b[path], rtol=1e-10, err_msg=path)
