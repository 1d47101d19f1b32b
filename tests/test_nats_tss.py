"""NAS-Bench-201 genotypes, parameter counts and PyTorch weight import."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zico_jax.spaces import GenotypeError, get_space
from zico_jax.spaces.torch_import import WeightImportError, load_torch_weights

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def space():
    return get_space("nats_tss")


def test_round_trip_and_encoding(space):
    g = space.parse(BEST)
    assert str(g) == BEST
    code = space.encode(g)
    assert code.tolist() == [3, 3, 3, 1, 3, 3]  # edge order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
    assert space.decode(code) == g


def test_enumeration_is_the_whole_space(space):
    archs = [str(g) for g in space.enumerate()]
    assert len(archs) == len(set(archs)) == 15625
    assert sorted(space.arch_id(a) for a in archs) == list(range(15625))


def test_every_benchmark_arch_parses_canonically(space):
    from zico_jax.groundtruth import load_nb201

    table = load_nb201()
    for arch in table.archs()[::97]:
        assert str(space.parse(arch)) == arch


@pytest.mark.parametrize("text, message", [
    ("|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'nor_conv_5x5'"),
    ("|none~0|+|none~0|none~1|", "expected 3 nodes"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 incoming edge"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "source 1; expected a source in 0..0"),
    ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "two edges from node 0"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~source'"),
    ("", "expected a string"),
])
def test_malformed_genotypes_name_the_problem(space, text, message):
    with pytest.raises(GenotypeError, match=message):
        space.parse(text)


def test_bad_codes(space):
    with pytest.raises(GenotypeError, match="op codes must lie in 0..4"):
        space.decode([0, 1, 2, 3, 4, 5])
    with pytest.raises(GenotypeError, match="expected 6 integers"):
        space.decode([0, 1])


def independent_param_count(arch: str, C=16, N=5, classes=10) -> int:
    """Counted from NAS-Bench-201's definition, separately from the space's layer table."""
    ops = [edge.split("~")[0] for node in arch.strip("|").split("|+|") for edge in node.split("|")]
    per_cell = lambda c: sum({"nor_conv_3x3": 9 * c * c + 2 * c, "nor_conv_1x1": c * c + 2 * c}.get(o, 0) for o in ops)
    block = lambda cin, cout: (9 * cin * cout + 2 * cout) + (9 * cout * cout + 2 * cout) + cin * cout
    stem = 27 * C + 2 * C
    head = 2 * 4 * C + 4 * C * classes + classes
    return stem + N * (per_cell(C) + per_cell(2 * C) + per_cell(4 * C)) + block(C, 2 * C) + block(2 * C, 4 * C) + head


def test_parameter_counts(space):
    assert space.params(ALL_CONV3) == 1_531_546  # the benchmark's published count
    rng = np.random.default_rng(0)
    for g in [space.sample(rng) for _ in range(20)] + [space.parse(BEST)]:
        assert space.params(g) == independent_param_count(str(g))


@pytest.mark.parametrize("arch", [BEST, "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|none~2|"])
def test_parameter_count_equals_the_flax_network(arch):
    small = get_space("nats_tss", C=4, N=2, image_size=8)
    variables = jax.eval_shape(small.model(arch).init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    assert sum(x.size for x in jax.tree.leaves(variables)) == small.params(arch) == independent_param_count(
        arch, C=4, N=2)


def test_weight_import_errors(space, golden_dir):
    state = dict(np.load(golden_dir / "case_1.npz"))
    arch = "|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|"
    params = load_torch_weights(space, arch, state)
    w = state["cells.0.layers.0.op.1.weight"]  # OIHW (16, 16, 1, 1) -> HWIO
    np.testing.assert_array_equal(params["cells_0"]["edge_0"]["nor_conv_1x1"]["conv"]["kernel"],
                                  np.transpose(w, (2, 3, 1, 0)))
    with pytest.raises(WeightImportError, match="missing key 'cells.0.layers.0.op.1.weight'"):
        load_torch_weights(space, arch.replace("nor_conv_1x1~0|+", "nor_conv_3x3~0|+"),
                           {k: v for k, v in state.items() if k != "cells.0.layers.0.op.1.weight"})
    bad = dict(state, **{"classifier.weight": np.zeros((10, 32), np.float32)})
    with pytest.raises(WeightImportError, match=r"'classifier.weight' has shape \(10, 32\).*expected \(64, 10\)"):
        load_torch_weights(space, arch, bad)
    with pytest.raises(WeightImportError, match="unexpected key 'cells.0.layers.0.op.1.weight'"):
        load_torch_weights(space, "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|", state)


def test_registry_errors():
    with pytest.raises(KeyError, match=r"unknown space 'nb999'.*\(registered: .*nats_tss"):
        get_space("nb999")
