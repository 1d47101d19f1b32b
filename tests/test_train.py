"""Training a found network (zico_jax.train) and TrainBatchNorm's three modes (zico_jax.nn.layers)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zico_jax import train as T
from zico_jax.configs.train import get_config
from zico_jax.nn.layers import TrainBatchNorm
from zico_jax.spaces import get_space
from zico_jax.train_data import ArrayData

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
EPS, MOMENTUM = 1e-5, 0.1


def torch_bn2d_reference(batches, scale, bias):
    """NumPy BatchNorm2d (NHWC here) as PyTorch runs it: train-mode outputs per batch and the running mean/var
    after them (momentum 0.1, unbiased variance in the running var), then the eval-mode output of the last batch."""
    mean, var, outputs = np.zeros(batches[0].shape[-1]), np.ones(batches[0].shape[-1]), []
    for x in batches:
        x = x.astype(np.float64)
        mu, v = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
        outputs.append((x - mu) / np.sqrt(v + EPS) * scale + bias)
        n = x.size // x.shape[-1]
        mean = (1 - MOMENTUM) * mean + MOMENTUM * mu
        var = (1 - MOMENTUM) * var + MOMENTUM * x.var(axis=(0, 1, 2), ddof=1)
        assert np.allclose(v * n / (n - 1), x.var(axis=(0, 1, 2), ddof=1))
    eval_out = (batches[-1] - mean) / np.sqrt(var + EPS) * scale + bias
    return outputs, mean, var, eval_out


@pytest.fixture(scope="module")
def bn_case():
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, (4, 5, 5, 3)).astype(np.float32) for _ in range(3)]
    bn = TrainBatchNorm()
    variables = bn.init(jax.random.key(0), batches[0])
    params = {"scale": jnp.array([1.5, 0.5, 2.0]), "bias": jnp.array([0.1, -0.2, 0.3])}
    return bn, variables, params, batches


def test_bn_init_and_scoring_mode_are_stateless_and_unchanged(bn_case):
    bn, variables, params, batches = bn_case
    assert set(variables) == {"params"}  # init never creates batch_stats
    x = jnp.asarray(batches[0])
    y = bn.apply({"params": params}, x)
    # The pre-change implementation, op for op: scoring (params only) must stay bit-identical.
    mean = jnp.mean(x, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
    assert np.array_equal(np.asarray(y),
                          np.asarray((x - mean) * jax.lax.rsqrt(var + EPS) * params["scale"] + params["bias"]))
    tiny = get_space("nats_tss", C=4, N=1)
    assert set(jax.eval_shape(tiny.model(tiny.parse(BEST)).init, jax.random.key(0),
                              jnp.zeros((1, 8, 8, 3)))) == {"params"}


def test_bn_running_statistics_and_eval_mode_match_pytorch(bn_case):
    bn, _, params, batches = bn_case
    ref_out, ref_mean, ref_var, ref_eval = torch_bn2d_reference(batches, np.asarray(params["scale"]),
                                                                np.asarray(params["bias"]))
    variables = {"params": params}
    for x, expected in zip(batches, ref_out):
        y, state = bn.apply(variables, jnp.asarray(x), mutable=["batch_stats"])
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)  # still train mode while tracking
        variables = {"params": params, **state}
    np.testing.assert_allclose(variables["batch_stats"]["mean"], ref_mean, rtol=1e-5)
    np.testing.assert_allclose(variables["batch_stats"]["var"], ref_var, rtol=1e-5)
    y_eval = bn.apply(variables, jnp.asarray(batches[-1]))  # batch_stats present, not mutable: eval mode
    np.testing.assert_allclose(y_eval, ref_eval, rtol=1e-5, atol=1e-5)


def test_network_tracks_every_bn_without_changing_its_train_output():
    space = get_space("nats_tss", C=4, N=1)
    model = space.model(space.parse(BEST))
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 8, 8, 3)), jnp.float32)
    params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    params = jax.tree.map(lambda s: jnp.asarray(np.random.default_rng(2).uniform(-0.5, 0.5, s.shape), s.dtype), params)
    # one program (compiling beats running the network op by op)
    plain, (tracked, state) = jax.jit(lambda p: (model.apply({"params": p}, x),
                                                 model.apply({"params": p}, x, mutable=["batch_stats"])))(params)
    assert np.array_equal(np.asarray(plain), np.asarray(tracked))
    paths = {"/".join(str(k.key) for k in path[:-1]) for path, _ in jax.tree_util.tree_leaves_with_path(state)}
    bn_paths = {"/".join(str(k.key) for k in path[:-1]) for path, _ in jax.tree_util.tree_leaves_with_path(params)
                if path[-1].key == "scale"}
    assert paths == {"batch_stats/" + p for p in bn_paths}


def tiny_config(**overrides):
    config = get_config()
    config.update(dict(batch_size=16, limit_train=64, limit_eval=48, eval_batch_size=32, log_every=5,
                       space_options={"C": 4, "N": 1}), **overrides)
    return config


@pytest.fixture(scope="module")
def tiny_space():
    return get_space("nats_tss", C=4, N=1)


def test_short_run_decreases_the_loss_and_resume_equals_an_uninterrupted_run(tiny_space, tmp_path):
    """30 steps on 64 offline images; then the same run killed after 15 steps and resumed to 30 (the compiled
    programs are shared between the three runs: same model, same recipe)."""
    config = tiny_config(num_steps=30, checkpoint_every=5)
    full = T.train(tiny_space, BEST, config)
    assert full["steps"] == 30 and full["completed"]
    assert full["final_train_loss"] < full["first_train_loss"] - 0.1, full
    assert full["eval"]["images"] == 48 and 0.0 <= full["eval"]["accuracy"] <= 1.0 and np.isfinite(full["eval"]["loss"])

    part = T.train(tiny_space, BEST, config, output_dir=str(tmp_path), stop_after=15)
    assert part["steps"] == 15 and not part["completed"] and part["eval"] is None
    resumed = T.train(tiny_space, BEST, config, output_dir=str(tmp_path))
    assert resumed["resumed_from"] == 15 and resumed["steps"] == 30
    for key in ("params", "batch_stats", "opt_state"):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), full["state"][key],
                     resumed["state"][key])
    assert resumed["eval"] == pytest.approx(full["eval"])
    assert resumed["first_train_loss"] == pytest.approx(full["first_train_loss"])  # read back from metrics.jsonl
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["split"], r["step"]) for r in rows] == [("train", s) for s in range(5, 35, 5)] + [("eval", 30)]
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["steps"] == 30 and written["versions"]["optax"] and written["devices"]
    with pytest.raises(ValueError, match="checkpoint of a different run"):
        T.train(tiny_space, BEST, tiny_config(num_steps=30, seed=1), output_dir=str(tmp_path))


@pytest.mark.parametrize("overrides, genotype, message", [
    ({"dataset": "mnist"}, BEST, "unknown dataset 'mnist'; expected one of cifar10"),
    ({"data_source": "disk"}, BEST, "unknown data_source 'disk'"),
    ({"dataset": "imagenet2012"}, BEST, "imagenet2012' has no offline sample"),
    ({}, None, "genotype is required"),
    ({}, "", "genotype is required"),
    ({}, "|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'nor_conv_5x5'"),
    ({"batch_size": 128}, BEST, "batch_size 128 exceeds the 64 training images"),
])
def test_bad_configs_name_the_problem(tiny_space, overrides, genotype, message):
    with pytest.raises(ValueError, match=message):
        T.train(tiny_space, genotype, tiny_config(**overrides))


def test_head_must_match_the_dataset(tiny_space):
    x = np.zeros((8, 32, 32, 3), np.float32)
    y = np.zeros(8, np.int32)
    with pytest.raises(ValueError, match="10 outputs but cifar100 has 100 classes"):
        T.train(tiny_space, BEST, tiny_config(dataset="cifar100", batch_size=4), data=ArrayData(x, y, x, y, 4, 0))


def test_augment_crops_from_the_black_padding_and_flips():
    x = jnp.arange(2 * 4 * 4 * 1, dtype=jnp.float32).reshape(2, 4, 4, 1) + 100.0
    out = np.asarray(T.augment(jax.random.key(3), x, 1, jnp.array([-7.0])))
    padded = np.pad(np.asarray(x) + 7.0, ((0, 0), (1, 1), (1, 1), (0, 0))) - 7.0
    for img, src in zip(out, padded):
        crops = [src[i:i + 4, j:j + 4] for i in range(3) for j in range(3)]
        assert any(np.array_equal(img, c) or np.array_equal(img, c[:, ::-1]) for c in crops)
