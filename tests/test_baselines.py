"""The baseline zero-cost proxies (zico_jax.proxies.baselines) against independent PyTorch computations.

Two NAS-Bench-201 genotypes that together use all five ops, a tiny network (C=4, N=1, 8x8 images, batch 8), float64
on both sides, PyTorch's default init exported as a state dict and imported with `load_torch_weights`, so both
frameworks compute on identical weights; zen's Gaussian weights and inputs go the other way (JAX draws them,
`state_dict_from_flax` hands them to PyTorch). Agreement to 1e-8 relative.

The JAX proxies run op by op here (`jax.disable_jit`): XLA:CPU compiles a whole-network program in 5-30 s, while
eager primitives are compiled once per shape and shared by all proxies and both genotypes. That every proxy also
traces under `jit` is checked separately (abstractly, no compilation), and `score_baseline` once jitted.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import torch_baselines as tb  # noqa: E402
import torch_reference as ref  # noqa: E402

from zico_jax.engine import Engine  # noqa: E402
from zico_jax.proxies import baselines, baselines_grad  # noqa: E402
from zico_jax.proxies import registry as proxy_registry  # noqa: E402
from zico_jax.proxies.baselines_activation import zen_draws  # noqa: E402
from zico_jax.spaces import get_space  # noqa: E402
from zico_jax.spaces.torch_import import load_torch_weights  # noqa: E402

GENOTYPES = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|",
)
TORCH_FNS = {
    "grad_norm": tb.grad_norm, "snip": tb.snip, "grasp": tb.grasp, "fisher": tb.fisher, "jacov": tb.jacov,
    "synflow": tb.synflow, "plain": tb.plain, "l2_norm": tb.l2_norm, "nwot": tb.nwot,
}
REL = 1e-8


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: PyTorch's spinning OpenMP workers slow down by 10x+ when the cores are shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _space():
    return get_space("nats_tss", C=4, N=1, image_size=8)


@functools.lru_cache(maxsize=None)
def _case(k: int):
    """(space, genotype, torch net, JAX float64 params, x NCHW torch, y torch, x NHWC jax, y jax) for genotype k."""
    space = _space()
    g = space.parse(GENOTYPES[k])
    torch.manual_seed(k)
    net = ref.TinyNetwork(str(g), C=4, N=1, num_classes=10).double()
    params = load_torch_weights(space, g, ref.state_dict_numpy(net), jnp.float64)
    rng = np.random.default_rng(10 + k)
    x = rng.normal(size=(8, 3, 8, 8))
    y = rng.integers(0, 10, 8)
    return (space, g, net, params, torch.from_numpy(x), torch.from_numpy(y),
            jnp.asarray(x.transpose(0, 2, 3, 1)), jnp.asarray(y))


def _jax_value(name, k, key=None, **kwargs):
    space, g, _, params, _, _, x, y = _case(k)
    net = baselines.baseline_network(space, g, jnp.float64)
    with jax.disable_jit():
        return float(baselines.BASELINES[name](net, params, x, y, key, **kwargs))


@pytest.mark.parametrize("k", range(len(GENOTYPES)))
@pytest.mark.parametrize("name", sorted(TORCH_FNS))
def test_matches_torch(x64, name, k):
    _, _, net, _, x, y, _, _ = _case(k)
    expected = TORCH_FNS[name](net, x, y)
    got = _jax_value(name, k)
    assert np.isfinite(expected) and expected != 0
    assert got == pytest.approx(expected, rel=REL, abs=1e-12), f"{name} on {GENOTYPES[k]}"


@pytest.mark.parametrize("k", range(len(GENOTYPES)))
@pytest.mark.parametrize("bn_var", ["running", "batch"])
def test_zen_matches_torch_on_the_same_draws(x64, k, bn_var):
    space, g, _, params, _, _, x, _ = _case(k)
    key = jax.random.key(100 + k)
    net = baselines.baseline_network(space, g, jnp.float64)
    with jax.disable_jit():
        gparams, x1, x2 = zen_draws(net, params, x, key)
    tnet = ref.TinyNetwork(str(g), C=4, N=1, num_classes=10).double()
    result = tnet.load_state_dict(tb.state_dict_from_flax(space, g, gparams), strict=False)
    assert not result.unexpected_keys and all(k.endswith(("running_mean", "running_var", "num_batches_tracked"))
                                              for k in result.missing_keys)
    to_nchw = lambda a: torch.from_numpy(np.asarray(a).transpose(0, 3, 1, 2).copy())  # noqa: E731
    expected = tb.zen(tnet, to_nchw(x1), to_nchw(x2), bn_var=bn_var)
    got = _jax_value("zen", k, key, bn_var=bn_var)
    assert got == pytest.approx(expected, rel=REL, abs=1e-12)


def test_zen_weights_and_inputs_come_from_the_key(x64):
    space, g, _, params, _, _, x, _ = _case(0)
    net = baselines.baseline_network(space, g, jnp.float64)
    with jax.disable_jit():
        a, b = zen_draws(net, params, x, jax.random.key(1)), zen_draws(net, params, x, jax.random.key(2))
    assert jax.tree.structure(a[0]) == jax.tree.structure(params)
    assert not np.allclose(a[1], b[1])
    kernel = a[0]["stem"]["conv"]["kernel"]
    assert abs(float(jnp.std(kernel)) - 1) < 0.3 and float(jnp.max(jnp.abs(a[0]["head"]["classifier"]["bias"]))) == 0
    with pytest.raises(ValueError, match="PRNG key"):
        baselines.zen(net, params, x, None, None)


def test_every_proxy_traces_under_jit(x64):
    """Abstract evaluation (no compilation): each proxy is a pure JAX function of (params, x, y, key)."""
    space, g, _, params, _, _, x, y = _case(0)
    net = baselines.baseline_network(space, g, jnp.float64)
    for name, fn in baselines.BASELINES.items():
        out = jax.eval_shape(jax.jit(fn, static_argnums=0), net, params, x, y, jax.random.key(0))
        assert out.shape == () and out.dtype == jnp.float64, name


def test_score_baseline_is_one_jitted_call(x64):
    space, g, net, params, _, _, x, y = _case(1)
    got = baselines.score_baseline("l2_norm", space, g, params, x, y, jax.random.key(0))
    assert got == pytest.approx(tb.l2_norm(net), rel=REL)


def test_unknown_proxy_names_the_registered_ones(x64):
    space, g, _, params, _, _, x, y = _case(0)
    with pytest.raises(KeyError, match="unknown baseline proxy 'zen_score'.*grad_norm.*synflow"):
        baselines.score_baseline("zen_score", space, g, params, x, y)
    assert set(baselines.BASELINES) == {"grad_norm", "snip", "grasp", "fisher", "jacov", "synflow", "plain",
                                        "l2_norm", "nwot", "zen"}


def test_spaces_without_relu_or_pre_gap_sites_are_refused(x64):
    space, g, _, params, _, _, x, y = _case(0)
    net = baselines.baseline_network(space, g, jnp.float64)
    with pytest.raises(ValueError, match="'nats_tss'.*non-module ReLUs are not described"):
        baselines.BASELINES["nwot"](dataclasses.replace(net, relu_after=None), params, x, y, None)
    with pytest.raises(ValueError, match="'nats_tss'.*pre-GAP feature map is not described"):
        baselines.BASELINES["zen"](dataclasses.replace(net, pre_gap=None), params, x, y, jax.random.key(0))


def test_registered_by_name_and_scored_by_the_engine(x64):
    """Every baseline is a registered proxy; the engine scores it on the candidate's seeded standalone network
    (the weights ZiCo sees) and first mini-batch, eagerly on CPU, beside ZiCo from the same measurement."""
    proxies = {n: proxy_registry.get_proxy(n) for n in proxy_registry.proxy_names()}
    assert {n for n, p in proxies.items() if p.needs_network} == set(baselines.BASELINES)
    assert all(proxies[n].needs_network and not proxies[n].needs_grads for n in baselines.BASELINES)
    space = _space()
    rng = np.random.default_rng(3)
    xs = jnp.asarray(rng.normal(size=(2, 8, 8, 8, 3)))
    ys = jnp.asarray(rng.integers(0, 10, (2, 8)))
    names = ("zico", "snip", "nwot")
    engine = Engine(space, xs, ys, names, seed=5, backend="tape")
    assert engine.baseline_mode == "eager"
    results = list(engine.score(GENOTYPES))
    for genotype, result in zip(GENOTYPES[:1], results):
        g = space.parse(genotype)
        params = space.model(g, dtype=jnp.float64).init(engine.candidate_key(g), xs[0, :1])["params"]
        net = baselines.baseline_network(space, g, jnp.float64)
        for name in names[1:]:
            with jax.disable_jit():  # (that jit gives the same numbers: test_score_baseline_is_one_jitted_call)
                expected = float(baselines.BASELINES[name](net, params, xs[0], ys[0], None))
            assert result.scores[name] == pytest.approx(expected, rel=1e-9), (name, genotype)
    assert results[0].scores["snip"] != results[1].scores["snip"]
    assert results[1].scores["zico"] == Engine(space, xs, ys, ("zico",), seed=5).score_one(GENOTYPES[1]).scores["zico"]
    with jax.disable_jit():
        net = baselines.baseline_network(space, space.parse(GENOTYPES[0]), jnp.float64)
        imported = float(baselines.snip(net, _case(0)[3], xs[0], ys[0]))
    assert engine.score_one(GENOTYPES[0], params=_case(0)[3]).scores["snip"] == pytest.approx(imported, rel=1e-9)
    with pytest.raises(KeyError, match="proxy 'grasp': the measurement holds no value"):
        proxy_registry.get_proxy("grasp").fn(engine.measure(GENOTYPES[0]), proxy_registry.ProxyOptions())


ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_synflow_runs_in_float64_inside_a_float32_run():
    """synflow of the all-`nor_conv_3x3` NAS-Bench-201 network (C=16, N=5) overflows float32 (~7e49); a default
    float32 engine run computes it in float64 (as zero-cost-nas' `net.double()`) and agrees with PyTorch in double
    on the same (float32-initialised) weights. Nothing leaks: x64 stays off and the engine's arrays float32."""
    space = get_space("nats_tss", image_size=8)  # default C=16, N=5; synflow reads x's shape only
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(2, 2, 8, 8, 3)).astype(np.float32)
    ys = rng.integers(0, 10, (2, 2))
    engine = Engine(space, xs, ys, proxies=("synflow",), baseline_mode="eager")
    got = engine.score_one(ALL_CONV).scores["synflow"]
    assert not jax.config.jax_enable_x64 and jnp.ones(2).dtype == jnp.float32 and engine.xs.dtype == jnp.float32

    g = space.parse(ALL_CONV)
    net = baselines.baseline_network(space, g, jnp.float32)
    params = net.model.init(engine.candidate_key(g), jnp.zeros((1, 8, 8, 3)))["params"]
    assert jax.tree.leaves(params)[0].dtype == jnp.float32
    tnet = ref.TinyNetwork(str(g), C=16, N=5, num_classes=10).double()
    tnet.load_state_dict({k: v.double() for k, v in tb.state_dict_from_flax(space, g, params).items()}, strict=False)
    expected = tb.synflow(tnet, torch.zeros((1, 3, 8, 8), dtype=torch.float64))
    assert 1e40 < expected < 1e60
    assert np.isfinite(got) and got == pytest.approx(expected, rel=1e-6)

    # the same computation without the float64 scope overflows float32: the test exercises the cast
    ones = jnp.ones((1, 8, 8, 3), jnp.float32)
    with jax.disable_jit():
        grads = jax.grad(lambda p: jnp.sum(net.apply_no_bn(p, ones)))(jax.tree.map(jnp.abs, params))
        naive = sum(float(jnp.sum(jnp.abs(v * jnp.abs(net.kernels(params)[k]))))
                    for k, v in net.kernels(grads).items())
    assert not np.isfinite(naive)
    assert baselines_grad.synflow.__doc__ and "float64" in baselines_grad.synflow.__doc__


def test_synflow_is_float64_under_jit_and_does_not_leak():
    """Jitted (the engine's jit baseline mode) and eager give the same float64 value from float32 inputs."""
    space = _space()
    g = space.parse(GENOTYPES[0])
    net = baselines.baseline_network(space, g, jnp.float32)
    params = net.model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))["params"]
    x = jnp.zeros((2, 8, 8, 3), jnp.float32)
    jitted = baselines.jitted_baseline("synflow")(net, params, x, None, None)
    with jax.disable_jit():
        eager = baselines.synflow(net, params, x)
    assert jitted.dtype == jnp.float64 and eager.dtype == jnp.float64
    assert float(jitted) == pytest.approx(float(eager), rel=1e-12)
    assert not jax.config.jax_enable_x64 and jnp.ones(2).dtype == jnp.float32
