"""TransNAS-Bench-101 micro and macro spaces, their seven task heads, losses, synthetic targets and ground truth."""

import csv
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DATA, count_compilations

from zico_jax.data import DataNotFoundError
from zico_jax.engine import Engine, _layer_term_jit
from zico_jax.grads import kernel_leaves
from zico_jax.groundtruth import transnas101 as GT
from zico_jax.groundtruth.registry import load_groundtruth
from zico_jax.proxies import registry as R
from zico_jax.proxies.zico import feature_shapes, transposed_conv_paths, zico
from zico_jax.spaces import transnas101_tasks as T
from zico_jax.spaces.base import GenotypeError, get_space, parse_space_options
from zico_jax.spaces.transnas101 import TASKS, TransNAS101Macro, TransNAS101Micro
from zico_jax.spaces.transnas101_encoders import FactorizedReduce
from zico_jax.tape import tape_grads

SPACES = {"micro": TransNAS101Micro, "macro": TransNAS101Macro}
ARCH = {"micro": "64-41414-3_12_213", "macro": "64-1234-basic"}  # every kind of edge / block
# Compiled tests: macro 2311 has all three kinds of block (identity, channel-doubling and stride-2 shortcut) in
# four distinct shapes (1234 has seven: compilations are what the tests spend their time on).
TAPE_ARCH = {"micro": "64-41414-3_12_213", "macro": "64-2311-basic"}
CSV = {s: DATA / "nasbench_suite_zero_subsets" / f"tnb101_{s}_accuracy_subset.csv" for s in SPACES}
HW = 16  # tiny test networks: base channels 4, 16x16 images, micro skeleton "4" (one reducing + one normal cell)


def tiny(kind, task, **kw):
    opts = dict(task=task, base_channels=4, image_size=HW, **kw)
    return TransNAS101Micro(skeleton="4", **opts) if kind == "micro" else TransNAS101Macro(**opts)


def batches(space, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(2, 2, space.image_size, space.image_size, 3)).astype(dtype)
    return xs, space.targets(xs, rng.integers(0, 10, (2, 2)))


def standalone(space, g, xs, seed=0):
    """The float64 standalone network and random weights (numpy: no init program to compile). Kernels ~ He
    normal, BN scale ~ 1, biases and shifts small."""
    model, rng = space.model(g, dtype=jnp.float64), np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.asarray(xs[0]))

    def fill(path, leaf):
        name, shape = path[-1].key, leaf.shape
        if name == "kernel":
            return rng.normal(size=shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
        return (1.0 if name == "scale" else 0.0) + 0.1 * rng.normal(size=shape)

    return model, jax.tree_util.tree_map_with_path(fill, shapes)


def tape_zico(space, g, params, xs, ys):
    """(ZiCo, layers counted, per-batch losses) through the tape (the engine's CPU backend) at `params`; as the
    official code, transposed convolutions (the pixel decoders' deconvs) are not counted."""
    losses, grads = tape_grads(space.tape(g, dtype=jnp.asarray(xs).dtype), params, jnp.asarray(xs),
                               jnp.asarray(ys), space.loss)
    transposed = {l.path + "/kernel" for l in space.layers(g) if l.transposed}
    terms = [_layer_term_jit(v, False) for p, v in grads.items()
             if p.endswith("/kernel") and p not in transposed]  # the engine's
    return sum(float(t) for t, counted in terms if bool(counted)), sum(bool(c) for _, c in terms), losses


# ------------------------------------------------------------------------------------------------ genotypes


def test_micro_genotypes_round_trip():
    space = TransNAS101Micro()
    archs = list(space.enumerate())
    assert len(archs) == 4096 and len({space.arch_id(g) for g in archs}) == 4096
    for g in archs[::37]:
        assert space.parse(str(g)) == g == space.decode(space.encode(g))
        assert 0 <= space.arch_id(g) < 2**32
    g = space.parse("64-41414-1_02_333")
    assert space.encode(g).tolist() == [1, 0, 2, 3, 3, 3]
    rng = np.random.default_rng(0)
    m = space.mutate(g, rng)
    assert (space.encode(m) != space.encode(g)).sum() == 1


def test_macro_genotypes_round_trip():
    space = TransNAS101Macro()
    archs = list(space.enumerate())
    assert len(archs) == 3256  # the benchmark's macro space (TransNAS README)
    assert len({space.arch_id(g) for g in archs}) == 3256 and max(space.arch_id(g) for g in archs) < 2**32
    for g in archs[::41]:
        assert space.parse(str(g)) == g == space.decode(space.encode(g))
    assert space.encode("64-1234-basic").tolist() == [1, 2, 3, 4, 0, 0]
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = space.sample(rng)
        assert space.mutate(g, rng) in set(archs) and space.mutate(g, rng) != g


@pytest.mark.parametrize("kind, text, match", [
    ("micro", "64-41414-1_02_33", r"cell '1_02_33' must be 'a_bc_def'"),
    ("micro", "64-41414-1_02_334", r"op '4'"),
    ("micro", "32-41414-1_02_333", r"base channels '32'"),
    ("micro", "64-4141-1_02_333", r"skeleton '4141'"),
    ("micro", "64-1234-basic", r"'basic' cells are the macro space"),
    ("micro", "1_02_333", r"expected a string like"),
    ("macro", "64-123-basic", r"3 modules, expected 4 to 6"),
    ("macro", "64-1111-basic", r"0 downsampling modules"),
    ("macro", "64-2424-basic", r"4 channel-doubling modules"),
    ("macro", "64-1235-basic", r"module codes must be"),
    ("macro", "64-41414-1_02_333", r"micro space"),
])
def test_genotype_errors_name_the_bad_part(kind, text, match):
    with pytest.raises(GenotypeError, match=match):
        SPACES[kind]().parse(text)


def test_code_errors():
    with pytest.raises(GenotypeError, match="op codes must lie in 0..3"):
        TransNAS101Micro().decode([0, 1, 2, 3, 4, 0])
    with pytest.raises(GenotypeError, match="zeros may only pad the end"):
        TransNAS101Macro().decode([1, 0, 3, 4, 1, 0])
    with pytest.raises(ValueError, match="unknown task 'depth'"):
        TransNAS101Micro(task="depth")


@pytest.mark.parametrize("kind", SPACES)
def test_every_csv_arch_parses_and_is_canonical(kind):
    space = SPACES[kind]()
    with open(CSV[kind], newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["task"] for r in rows} == set(TASKS)
    for r in rows:
        g = space.parse(r["tnb_arch_str"])
        assert str(g) == r["tnb_arch_str"]
        assert space.encode(g).tolist() == [int(v) for v in r["naslib_op_indices"].split("-")]


# ------------------------------------------------------------------------------------------------ networks


@pytest.mark.parametrize("kind", SPACES)
@pytest.mark.parametrize("task", TASKS)
def test_layer_table_and_outputs_match_the_network(kind, task):
    """layers(g) (analytic) = the flax network's kernels and feature maps; params = sum of the param leaves;
    the output has the task's shape. Full micro skeleton, abstract evaluation only (no compilation)."""
    space = SPACES[kind](task=task, base_channels=4, image_size=64 if task != "jigsaw" else 48)
    g = space.parse(ARCH[kind])
    model = space.model(g)
    x = jnp.zeros(space.input_shape(2))
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    table = space.layers(g)
    assert feature_shapes(model, variables, x) == {l.path: (*l.out_hw, l.out_channels) for l in table}
    assert {p: k.size for p, k in kernel_leaves(variables["params"]).items()} == {l.path: l.weight_count for l in table}
    assert sum(v.size for v in jax.tree.leaves(variables)) == space.params(g)
    out = jax.eval_shape(model.apply, variables, x).shape
    n, hw = space.num_outputs, space.image_size
    assert out == {"ff": (2, n), "siamese": (2, n), "generative": (2, hw, hw, 3), "segmentation": (2, hw, hw, n)}[
        T.TASKS[task].head]


# NAS-Bench-Suite-Zero's `params` (M) for class_scene, computed by NASLib on the official networks with its
# 63-class scene head (automl/NASLib naslib/data/zc_transbench101_{micro,macro}.json @ e5a821c).
PUBLISHED_PARAMS = {
    "64-41414-1_00_210": 910687, "64-41414-1_00_223": 9440607, "64-41414-0_11_233": 16256351,
    "64-1242-basic": 11218783, "64-121113-basic": 3081183, "64-413331-basic": 3557343, "64-3443-basic": 5240543,
    "64-113112-basic": 1297247,
}


def test_params_match_published_and_the_flax_tree():
    for arch, n in PUBLISHED_PARAMS.items():
        space = (TransNAS101Micro if "_" in arch else TransNAS101Macro)(task="class_scene", num_classes=63)
        assert space.params(arch) == n, arch
    for space, arch in ((TransNAS101Micro(task="normal"), "64-41414-0_11_233"),
                        (TransNAS101Macro(task="segmentsemantic"), "64-1242-basic")):
        model = space.model(arch)
        variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(space.input_shape()))
        assert sum(v.size for v in jax.tree.leaves(variables)) == space.params(arch)


def test_micro_supernet_holds_every_op():
    """model(None) has every op of every edge: its kernels are layers(None), and each standalone network's
    parameter tree is a subtree of it (weights are sliced by path)."""
    space = TransNAS101Micro(task="jigsaw", base_channels=4, image_size=48)
    x = jnp.zeros(space.input_shape(1))
    full = jax.eval_shape(space.model(None).init, jax.random.key(0), x, jnp.zeros(6, jnp.int32))["params"]
    assert {p: k.size for p, k in kernel_leaves(full).items()} == {l.path: l.weight_count for l in space.layers(None)}
    flat = {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(full)[0]}
    for arch in ("64-41414-3_12_213", "64-41414-1_00_000"):
        own = jax.eval_shape(space.model(arch).init, jax.random.key(0), x)["params"]
        assert {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(own)[0]} <= flat


def test_official_initialisation():
    x = jnp.ones((1, 4, 4, 32))
    k = T.Conv(128, 3).init(jax.random.key(0), x)["params"]["kernel"]  # encoder: kaiming normal, fan_out
    assert float(k.std()) == pytest.approx(np.sqrt(2 / (128 * 9)), rel=0.05)
    p = T.Conv(16, 3, bias=True, weight_init="torch").init(jax.random.key(0), x)["params"]  # decoder: PyTorch default
    assert float(abs(p["kernel"]).max()) <= 1 / np.sqrt(32 * 9) and p["bias"].shape == (16,)


def test_macro_has_no_supernet():
    with pytest.raises(NotImplementedError, match="tape backend"):
        TransNAS101Macro().model(None)


@pytest.mark.parametrize("kind", SPACES)
@pytest.mark.parametrize("task", TASKS)
def test_every_task_scores_through_the_tape(x64, kind, task):
    space = tiny(kind, task)
    xs, ys = batches(space)
    g = space.parse(TAPE_ARCH[kind])
    _, variables = standalone(space, g, xs)
    score, counted, losses = tape_zico(space, g, variables["params"], xs, ys)
    assert losses.shape == (2,) and np.isfinite(losses).all()
    if kind == "micro":  # the engine's tape backend on the same weights (the executables above are reused)
        result = Engine(space, xs, ys, ("zico",), backend="tape").score_one(g, params=variables["params"])
        assert result.scores["zico"] == pytest.approx(score, rel=1e-12) and result.layers_counted == counted
    assert np.isfinite(score) and counted > 0


@pytest.mark.parametrize("kind, task", [("micro", "jigsaw"), ("macro", "room_layout")])
def test_tape_matches_standalone_zico(x64, kind, task):
    """The tape (per-edge / per-block programs chained by vjp) = the whole network differentiated at once. The
    decoders are one tape node, so two cheap heads suffice; micro class_scene is covered by the supernet test."""
    space = tiny(kind, task)
    xs, ys = batches(space, seed=1)
    g = space.parse(TAPE_ARCH[kind])
    model, variables = standalone(space, g, xs)
    tape, _, _ = tape_zico(space, g, variables["params"], xs, ys)
    assert tape == pytest.approx(float(zico(model, variables, jnp.asarray(xs), jnp.asarray(ys), loss=space.loss)),
                                 rel=1e-9)


def test_macro_engine_uses_the_tape_with_bounded_compilations():
    """Macro has no whole-space network: "auto" takes the tape, each candidate initialised eagerly from its key;
    asking for the supernet names the fix; executables stop growing once the module shapes have been seen."""
    space = tiny("macro", "class_scene")
    xs, ys = batches(space, dtype=np.float32)
    with pytest.raises(ValueError, match="no whole-space network"):
        Engine(space, xs, ys, ("zico",), backend="supernet")
    engine = Engine(space, xs, ys, ("zico",))
    assert engine.backend == "tape"
    archs = [str(g) for g in space.enumerate()]
    first = engine.score_one(TAPE_ARCH["macro"]).scores["zico"]
    assert np.isfinite(first)
    assert Engine(space, xs, ys, ("zico",)).score_one(TAPE_ARCH["macro"]).scores["zico"] == first
    with count_compilations() as warm:
        list(engine.score(archs[::200]))  # 17 genotypes
    with count_compilations() as again:  # other weights, same shapes: nothing new
        list(Engine(space, xs, ys, ("zico",), seed=1).score(archs[::200][:5]))
    with count_compilations() as others:  # 17 other genotypes: mostly shapes already seen
        list(engine.score(archs[7::200]))
    assert again[0] == 0 and 0 < others[0] < warm[0] / 2, (warm[0], again[0], others[0])


def test_micro_supernet_matches_tape_and_compiles_once(x64):
    space = tiny("micro", "class_scene")
    xs, ys = batches(space)
    supernet = Engine(space, xs, ys, ("zico",), seed=3, backend="supernet", candidate_batch=8)
    archs = [str(g) for g in space.enumerate()][::97][:17]
    with count_compilations() as first:
        head = next(supernet.score(archs[:1]))
    with count_compilations() as rest:
        results = [head] + list(supernet.score(archs[1:]))  # 16 more, in 2 batches
    assert first[0] >= 1 and rest[0] == 0, (first[0], rest[0])
    assert len({round(r.scores["zico"], 6) for r in results}) > 12
    tape = Engine(space, xs, ys, ("zico",), seed=3, backend="tape")
    for r in results[1:4]:
        t = tape.score_one(r.arch)
        assert t.scores["zico"] == pytest.approx(r.scores["zico"], rel=1e-9) and t.layers_counted == r.layers_counted
    # the standalone network of g initialised with g's key holds the supernet's weights at its paths (up to an
    # ulp: the kaiming-normal scaling rounds differently in the jitted space init and this eager one)
    g = space.parse(results[1].arch)
    own = space.model(g, dtype=jnp.float64).init(tape.candidate_key(g), jnp.asarray(xs[0, :1]))["params"]
    full = tape.initial_params(g)
    for path, leaf in jax.tree_util.tree_flatten_with_path(own)[0]:
        np.testing.assert_allclose(leaf, functools.reduce(lambda t, k: t[k.key], path, full), rtol=1e-14, atol=1e-15)


# ------------------------------------------------------------------------------------------------ tasks


def test_synthetic_targets():
    xs = np.random.default_rng(0).normal(size=(2, 3, 30, 30, 3))
    labels = np.arange(6).reshape(2, 3)
    t = {task: T.make_targets(task, xs, labels) for task in TASKS}
    assert t["class_object"].shape == (2, 3, 75) and (t["class_object"].argmax(-1) == labels).all()
    assert t["class_scene"].shape == (2, 3, 47) and np.allclose(t["class_scene"].sum(-1), 1)
    assert t["jigsaw"].shape == (2, 3) and t["jigsaw"].max() < 1000
    assert t["room_layout"].shape == (2, 3, 9)
    assert (t["autoencoder"] == xs).all()
    assert t["normal"].shape == xs.shape and 0 <= t["normal"].min() and t["normal"].max() <= 1
    assert t["segmentsemantic"].shape == (2, 3, 30, 30) and 0 <= t["segmentsemantic"].min() < 17
    assert all((T.make_targets(k, xs, labels) == v).all() for k, v in t.items())  # deterministic
    # jigsaw_puzzle moves the tiles by the permutation the labels name
    puzzle, perms = np.asarray(T.jigsaw_tiles(T.jigsaw_puzzle(xs))), T.permutations()
    tiles = np.asarray(T.jigsaw_tiles(xs))
    for n, b in np.ndindex(2, 3):
        np.testing.assert_array_equal(puzzle[n, b], tiles[n, b, perms[t["jigsaw"][n, b]]])


def test_losses_follow_the_official_definitions():
    z = jnp.array([[2.0, 0.0, -1.0]])
    p = jax.nn.softmax(z)
    assert float(T.soft_cross_entropy(z, jnp.array([[0.5, 0.5, 0.0]]))) == pytest.approx(
        -0.5 * float(jnp.log(p[0, 0] + 1e-5) + jnp.log(p[0, 1] + 1e-5)), rel=1e-6)
    assert float(T.l1(jnp.ones((1, 2, 2, 3)), jnp.zeros((1, 2, 2, 3)))) == 1.0
    assert float(T.mse(jnp.full((2, 9), 2.0), jnp.zeros((2, 9)))) == 4.0
    logits = jnp.zeros((1, 2, 2, 17))
    assert float(T.pixel_cross_entropy(logits, jnp.zeros((1, 2, 2), jnp.int32))) == pytest.approx(np.log(17), rel=1e-6)


def test_deconv_matches_torch_conv_transpose():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype(np.float32)
    layer = T.Deconv(5)
    params = layer.init(jax.random.key(0), x)["params"]
    ours = np.asarray(layer.apply({"params": params}, x))
    w = torch.tensor(np.asarray(params["kernel"]).transpose(2, 3, 0, 1))  # (in, out, kh, kw)
    ref = torch.nn.functional.conv_transpose2d(torch.tensor(x.transpose(0, 3, 1, 2)), w,
                                               torch.tensor(np.asarray(params["bias"])), stride=2, padding=1,
                                               output_padding=1).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_pixel_tasks_need_a_reachable_image_size():
    space = TransNAS101Micro(task="normal", base_channels=4, image_size=48)
    with pytest.raises(ValueError, match=r"cannot give the 48x48 target"):
        space.layers("64-41414-3_33_333")


def test_taskonomy_loader_reports_missing_data(tmp_path):
    with pytest.raises(DataNotFoundError, match="Taskonomy folder"):
        T.taskonomy_files(tmp_path / "missing", "normal")
    (tmp_path / "b1" / "rgb").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="no Taskonomy rgb/normal file pairs"):
        T.taskonomy_files(tmp_path, "normal")


# ------------------------------------------------------------------------------------------------ ground truth


@pytest.mark.parametrize("kind", SPACES)
def test_groundtruth_from_the_offline_csv(kind, monkeypatch):
    monkeypatch.delenv(GT.TNB101_ENV[kind], raising=False)
    gt = load_groundtruth(f"transnas101_{kind}", data_dir=DATA, task="jigsaw")
    with open(CSV[kind], newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["task"] == "jigsaw"]
    assert len(gt) == len(rows) and gt.columns == ("val_metric",)
    assert gt.value(rows[3]["tnb_arch_str"], "val_metric") == float(rows[3]["val_metric"])
    space = SPACES[kind]()
    assert all(str(space.parse(a)) == a for a in gt.archs())


def test_groundtruth_errors_and_precedence(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="pass task=, one of class_scene"):
        GT.load_tnb101_micro(data_dir=DATA)
    with pytest.raises(ValueError, match="unknown task 'depth'"):
        GT.load_tnb101_macro(data_dir=DATA, task="depth")
    own = tmp_path / "mine.csv"
    own.write_text("task,naslib_op_indices,tnb_arch_str,val_metric\nnormal,1-2-3-4-0-0,64-1234-basic,0.5\n")
    monkeypatch.setenv(GT.TNB101_ENV["macro"], str(own))
    assert GT.load_tnb101_macro(task="normal").value("64-1234-basic", "val_metric") == 0.5
    with pytest.raises(DataNotFoundError, match="ZICO_JAX_TNB101_MACRO"):
        GT.load_tnb101_macro(tmp_path / "absent.csv", task="normal")
    with pytest.raises(ImportError, match="TransNAS-Bench-101 API"):
        (tmp_path / "transnas-bench_v10141024.pth").write_bytes(b"")
        GT.load_tnb101_micro(tmp_path / "transnas-bench_v10141024.pth", task="normal")


def test_space_inputs_are_the_puzzle_for_jigsaw_only():
    xs = np.random.default_rng(1).normal(size=(2, 2, 30, 30, 3)).astype(np.float32)
    jigsaw = TransNAS101Micro(task="jigsaw", base_channels=4, image_size=30)
    np.testing.assert_array_equal(jigsaw.inputs(xs), T.jigsaw_puzzle(xs))
    assert not np.array_equal(jigsaw.inputs(xs), xs)
    assert TransNAS101Micro(task="segmentsemantic", base_channels=4, image_size=32).inputs(xs) is xs


# ------------------------------------------------------------------------------------------------ official quirks


def _bn(y, scale, bias, eps):
    """numpy BatchNorm2d in train mode on NHWC: biased variance over (N, H, W)."""
    mean, var = y.mean((0, 1, 2)), y.var((0, 1, 2))
    return (y - mean) / np.sqrt(var + eps) * scale + bias


def _bn_eps_used(space, g, x):
    """{BN path: the eps its output agrees with (1.0 or 1e-5), from numpy on its captured input} of the whole
    network of `g`: each BN's input is the output of the conv beside it (conv -> bn, stem conv0 -> bn0)."""
    model, variables = standalone(space, g, x[None])
    _, state = model.apply(variables, jnp.asarray(x), capture_intermediates=True, mutable=["intermediates"])
    inter, params = state["intermediates"], variables["params"]
    get = lambda tree, path: functools.reduce(lambda t, k: t[k], path, tree)  # noqa: E731
    found = {}
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        keys = [k.key for k in path]
        if keys[-1] != "scale" or keys[0] == "decoder":
            continue
        bn = keys[:-1]
        conv = bn[:-1] + ["conv0" if bn[-1] == "bn0" else "conv"]
        y, out = np.asarray(get(inter, conv + ["__call__"])[0]), np.asarray(get(inter, bn + ["__call__"])[0])
        p = get(params, bn)
        eps = [e for e in (1.0, 1e-5) if np.allclose(out, _bn(y, np.asarray(p["scale"]), np.asarray(p["bias"]), e),
                                                    rtol=1e-10, atol=1e-12)]
        assert len(eps) == 1, ("/".join(bn), eps)
        found["/".join(bn)] = eps[0]
    return found


def test_shortcut_bn_normalises_with_eps_one_as_official(x64):
    """Official `ResNetBasicblock.downsample` = Conv2d + `nn.BatchNorm2d(planes, affine, track_running_stats)`:
    positional, so eps = affine = True = 1.0. Every other encoder BN (stem, conv_a, conv_b) keeps eps 1e-5.
    Checked against numpy BN on each BN's captured input, in float64 (small activations: eps 1 vs 1e-5 differ)."""
    x = 0.3 * np.random.default_rng(0).normal(size=(3, HW, HW, 3))
    g = "64-2311-basic"  # a channel-doubling shortcut (stride 1) and a stride-2 shortcut
    official = _bn_eps_used(tiny("macro", "class_scene"), g, x)
    shortcuts = {p for p in official if p.endswith("/downsample/bn")}
    assert shortcuts == {"layer0_0/downsample/bn", "layer1_0/downsample/bn"}
    assert {p: e for p, e in official.items() if e == 1.0} == dict.fromkeys(shortcuts, 1.0)
    assert len(official) == 2 + 2 * 8 + 2  # stem bn0 + conv1/bn, 8 blocks x (conv_a, conv_b), 2 shortcuts
    clean = _bn_eps_used(tiny("macro", "class_scene", shortcut_bn_eps=1e-5), g, x)
    assert clean == dict.fromkeys(official, 1e-5)


def test_shortcut_bn_option_changes_macro_zico(x64):
    """The clean variant (`shortcut_bn_eps=1e-5`) is a different network: ZiCo moves; the tape builds the same
    network as model(g) under either option; the option parses from flags and is validated."""
    g = TAPE_ARCH["macro"]
    scores = {}
    for eps in (1.0, 1e-5):
        space = tiny("macro", "room_layout", shortcut_bn_eps=eps)
        xs, ys = batches(space, seed=2)
        model, variables = standalone(space, g, xs)
        scores[eps] = float(zico(model, variables, jnp.asarray(xs), jnp.asarray(ys), loss=space.loss))
        assert tape_zico(space, g, variables["params"], xs, ys)[0] == pytest.approx(scores[eps], rel=1e-9)
    assert np.isfinite(list(scores.values())).all() and abs(scores[1.0] - scores[1e-5]) > 1e-3, scores
    assert TransNAS101Macro().shortcut_bn_eps == 1.0
    flagged = get_space("transnas101_macro", **parse_space_options("shortcut_bn_eps=1e-5"))
    assert flagged.shortcut_bn_eps == 1e-5 and flagged.model(g).shortcut_bn_eps == 1e-5
    assert "shortcut_bn_eps=1e-05" in repr(flagged)
    with pytest.raises(ValueError, match="shortcut_bn_eps"):
        TransNAS101Macro(shortcut_bn_eps=0)


@pytest.mark.parametrize("stride", [1, 2])
def test_factorized_reduce_takes_the_stride(x64, stride):
    """Official `FactorizedReduce(C_in, C_out, stride)`: relu; conv_0 (1x1, stride) of x and conv_1 (1x1, stride)
    of x shifted up-left by one pixel (zero pad right/bottom), concatenated on channels; BN (eps 1e-5)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 5, 4))
    layer = FactorizedReduce(6, stride, jnp.float64)
    params = jax.tree.map(lambda v: np.asarray(v) + 0.1 * rng.normal(size=v.shape),
                          layer.init(jax.random.key(0), jnp.asarray(x))["params"])
    out = np.asarray(layer.apply({"params": params}, jnp.asarray(x)))
    r = np.maximum(x, 0)
    shifted = np.zeros_like(r)
    shifted[:, :-1, :-1] = r[:, 1:, 1:]
    a = r[:, ::stride, ::stride] @ params["conv_0"]["kernel"][0, 0]
    b = shifted[:, ::stride, ::stride] @ params["conv_1"]["kernel"][0, 0]
    ref = _bn(np.concatenate([a, b], -1), params["bn"]["scale"], params["bn"]["bias"], 1e-5)
    hw = 5 if stride == 1 else 3
    assert out.shape == ref.shape == (2, hw, hw, 6)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_channel_doubling_micro_cell_uses_a_stride_one_factorized_reduce():
    """Skeleton digit 2 (channels x2, stride 1): skip_connect from node 0 is FactorizedReduce at stride 1, so its
    output sums with the other edges (at stride 2 the shapes would not agree); the table says the same."""
    space = TransNAS101Micro(task="class_scene", base_channels=4, image_size=HW, skeleton="2")
    g = space.parse("64-41414-1_13_123")
    model, x = space.model(g), jnp.zeros(space.input_shape(2))
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    table = space.layers(g)
    assert feature_shapes(model, variables, x) == {l.path: (*l.out_hw, l.out_channels) for l in table}
    skip = [l for l in table if "/edge_0/skip_connect/" in l.path]
    assert [(l.stride, l.in_hw, l.out_hw, l.out_channels) for l in skip] == [(1, (4, 4), (4, 4), 4)] * 2


# ------------------------------------------------------------------------------------------------ ZiCo's layers


def _module_types(model, variables, x):
    """{path: module class} of every module the network calls (flax method interception: independent of the
    library's own detection)."""
    import flax.linen as nn

    seen = {}

    def spy(next_fun, args, kwargs, context):
        if context.method_name == "__call__":
            seen["/".join(context.module.scope.path)] = type(context.module)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(spy):
        jax.eval_shape(model.apply, variables, x)
    return seen


@pytest.mark.parametrize("kind", SPACES)
@pytest.mark.parametrize("task", ["autoencoder", "normal", "segmentsemantic", "class_object"])
def test_layer_table_flags_exactly_the_transposed_convs(kind, task):
    """The pixel decoders' deconvs (official `DeconvLayer`: nn.ConvTranspose2d) are the table's `transposed`
    layers and what `transposed_conv_paths` finds; every other table layer is a Conv or a Dense module."""
    space = SPACES[kind](task=task, base_channels=4, image_size=64)
    g = space.parse(ARCH[kind])
    model, x = space.model(g), jnp.zeros(space.input_shape(2))
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    types = _module_types(model, variables, x)
    deconvs = {p for p, t in types.items() if t is T.Deconv}
    convs_dense = {p for p, t in types.items() if t in (T.Conv, T._Dense)}
    table = space.layers(g)
    assert {l.path for l in table if l.transposed} == deconvs == transposed_conv_paths(model, variables, x)
    assert {l.path for l in table if not l.transposed} == convs_dense
    enc_hw = [l for l in table if not l.path.startswith("decoder/")][-1].out_hw[0]
    n_up = 0 if task == "class_object" else int(np.log2(64 // enc_hw))  # both pixel decoders: one deconv per x2
    assert len(deconvs) == n_up and (n_up >= 4 or task == "class_object")
    assert space.flops(g) == sum(l.macs for l in table) and any(l.macs for l in table if l.transposed) == (n_up > 0)


def test_zico_counts_convs_and_dense_layers_only(x64):
    """Official `getgrad` keeps nn.Conv2d / nn.Linear; nn.ConvTranspose2d is neither. Layers counted = the
    network's Conv + Dense modules (hand count by module type); ZiCo(count_transposed_conv) - ZiCo = the
    deconvs' terms; ZiCo-BC likewise; the generic zico() agrees with the engine under both settings."""
    space = tiny("micro", "autoencoder")
    xs, ys = batches(space, seed=3)
    g = space.parse(TAPE_ARCH["micro"])
    model, variables = standalone(space, g, xs)
    types = _module_types(model, variables, jnp.asarray(xs[0]))
    n_conv_dense = sum(t in (T.Conv, T._Dense) for t in types.values())
    deconvs = {p for p, t in types.items() if t is T.Deconv}
    assert len(deconvs) == 3  # 16 px from the 2 px encoding: three upsamplings, all deconvs
    engine = Engine(space, xs, ys, ("zico", "zico_bc"), backend="tape")
    m = engine.measure(g, variables["params"])
    assert set(m.terms) == {p for p, t in types.items() if t in (T.Conv, T._Dense, T.Deconv)}  # all S_l > 0
    on = R.ProxyOptions(count_transposed_conv=True)
    result = engine._result(g, m, 0.0)
    assert result.layers_counted == len(R.counted_terms(m)) == n_conv_dense
    engine_on = Engine(space, xs, ys, ("zico",), backend="tape", options=on)
    assert engine_on._result(g, m, 0.0).layers_counted == n_conv_dense + len(deconvs)
    extra = sum(m.terms[p] for p in deconvs)
    zico_on, zico_off = (R.get_proxy("zico").fn(m, o) for o in (on, R.ProxyOptions()))
    assert zico_off == result.scores["zico"] and zico_on - zico_off == pytest.approx(extra, rel=1e-12)
    bc_on, bc_off = (R.get_proxy("zico_bc").fn(m, o) for o in (on, R.ProxyOptions()))
    penalty = sum(R.bias_penalty(R.feature_map_size(m.layers[p], "output")) for p in deconvs)
    assert bc_on - bc_off == pytest.approx(extra - penalty, rel=1e-12)
    args = (model, variables, jnp.asarray(xs), jnp.asarray(ys))
    assert float(zico(*args, loss=space.loss)) == pytest.approx(zico_off, rel=1e-9)
    assert float(zico(*args, loss=space.loss, count_transposed_conv=True)) == pytest.approx(zico_on, rel=1e-9)
