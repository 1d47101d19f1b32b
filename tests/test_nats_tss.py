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


# ------------------------------------------------------------------------------------------ canonical form


def _cell_outputs(space, genotypes, width=6, seed=0) -> np.ndarray:
    """Brute force: every cell evaluated on one random input, each op type one fixed random function wherever it
    sits (the same weights on every edge), `none` zero and `skip_connect` the identity. Cells that compute the same
    function up to which weights sit where give the same output here."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=width)
    weights = {op: rng.normal(size=(width, width)) for op in ("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")}
    apply = {"none": lambda v: np.zeros_like(v), "skip_connect": lambda v: v,
             **{op: (lambda v, w=w: np.tanh(w @ v)) for op, w in weights.items()}}
    edges = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    out = []
    for g in genotypes:
        nodes = {0: x}
        for node in (1, 2, 3):
            nodes[node] = sum(apply[op](nodes[src]) for op, (dst, src) in zip(g.ops, edges) if dst == node)
        out.append(nodes[3])
    return np.array(out)


def test_canonical_form_has_the_benchmarks_6466_classes(space):
    forms = [space.canonical(g) for g in space.enumerate()]
    assert len(forms) == 15_625 and len(set(forms)) == 6_466  # NAS-Bench-201's unique-cell count
    assert space.canonical(BEST) == space.canonical(space.parse(BEST))
    # skip_connect passes its input on; none and anything reading zero are '#'; the sum is sorted
    assert space.canonical("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") == "#+#+#"
    assert (space.canonical("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|")
            == "#+(#+#)@nor_conv_1x1+(0)@nor_conv_3x3")


def test_equal_canonical_forms_compute_the_same_function(space):
    """Over all 15,625 cells: members of a class give equal outputs (the form never merges different functions);
    the form may keep apart cells that compute the same function (a '#' term in a sum), never the reverse."""
    genotypes = list(space.enumerate())
    outputs = _cell_outputs(space, genotypes)
    by_form: dict[str, np.ndarray] = {}
    for g, y in zip(genotypes, outputs):
        first = by_form.setdefault(space.canonical(g), y)
        np.testing.assert_allclose(y, first, rtol=0, atol=1e-12, err_msg=str(g))
    functions = {tuple(np.round(y, 9)) for y in outputs}
    assert len(functions) <= len(by_form) == 6_466
    # and a single different op on one edge of a live path is another class
    assert space.canonical(BEST) != space.canonical(ALL_CONV3)


def test_engine_deduplicate_measures_each_class_once(space):
    from conftest import tiny_batches

    from zico_jax.engine import Engine

    small = get_space("nats_tss", C=4, N=1, image_size=8)
    # the same sum conv1x1(x) + conv3x3(x) at node 3, the two convs swapped between edges 1<-0 and 3<-0
    rep = "|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|skip_connect~1|none~2|"
    member = "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|skip_connect~1|none~2|"
    other = "|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"  # node 1 cut off
    assert small.canonical(rep) == small.canonical(member) != small.canonical(other)
    xs, ys = tiny_batches(2, 4, 8)
    plain = Engine(small, xs, ys, ("zico", "params"), seed=0)
    dedup = Engine(small, xs, ys, ("zico", "params"), seed=0, deduplicate=True)
    measured = []
    original = dedup._backend.measure
    dedup._backend.measure = lambda gs, params=None: (measured.extend(map(str, gs)), original(gs, params))[1]
    results = list(dedup.score([rep, other, member, rep]))
    assert [r.arch for r in results] == [rep, other, member, rep]  # input order
    assert measured == [rep, other]  # one measurement per class
    expected = {r.arch: r for r in plain.score([rep, other, member])}
    assert results[0].scores == expected[rep].scores and results[1].scores == expected[other].scores  # bitwise
    assert results[2].scores["zico"] == expected[rep].scores["zico"] and results[2].scored_as == rep
    assert results[2].params == expected[member].params == results[2].scores["params"]
    assert results[2].row()["scored_as"] == rep and "scored_as" not in results[0].row()
    list(dedup.score([member]))  # a later call: the class is known, nothing measured
    assert measured == [rep, other]
