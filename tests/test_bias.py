"""The bias study (zico_jax.bias): the depth descriptor, the exact beta sweep, the stratified tau, one run."""

import csv
import json

import numpy as np
import pytest
from conftest import DATA, tiny_batches

from zico_jax import bias as B
from zico_jax.engine import Engine
from zico_jax.proxies import registry as R
from zico_jax.results import read_rows
from zico_jax.spaces import get_space


@pytest.mark.parametrize("arch,depth", [
    ("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_3x3~2|", 3),   # a chain of three convs
    ("|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|", 2),
    ("|skip_connect~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|none~1|skip_connect~2|", 0),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|", 0),     # output unconnected
    ("|none~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_1x1~2|", 2),  # node 1 unreachable
])
def test_nb201_depth_is_the_longest_conv_path(arch, depth):
    space = get_space("nats_tss")
    assert space.descriptors["depth"](space, space.parse(arch)) == depth


def test_one_run_gives_zico_bc_at_every_beta_exactly():
    """P = (zico - zico_bc(beta_0)) / beta_0 recovers the penalty: zico - beta P equals ZiCo-BC computed at beta."""
    space = get_space("nats_tss", C=4, N=1, image_size=8)
    xs, ys = tiny_batches()
    m = Engine(space, xs, ys, ("zico",), seed=2).measure(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    zico = R.get_proxy("zico").fn(m, R.ProxyOptions())
    bc = {b: R.get_proxy("zico_bc").fn(m, R.ProxyOptions(beta=b)) for b in (0.5, 1.0, 3.0)}
    penalty = B.penalties(np.array([zico]), np.array([bc[0.5]]), 0.5)[0]
    assert penalty > 0
    for beta in (1.0, 3.0):
        assert zico - beta * penalty == pytest.approx(bc[beta], rel=1e-12)
    with pytest.raises(ValueError, match="beta 0.0"):
        B.penalties(np.array([zico]), np.array([zico]), 0.0)


def test_stratified_tau_separates_a_depth_preference_from_accuracy():
    rng = np.random.default_rng(0)
    acc = rng.uniform(80, 94, 400)
    depth = rng.integers(0, 4, 400).astype(float)
    follows_depth = depth + 0.01 * rng.normal(size=400)
    follows_accuracy = acc + 0.01 * rng.normal(size=400)
    # tau-b against 4 tied depth levels tops out near 0.87: the held-accuracy tau matches the overall one
    held = B.stratified_tau(follows_depth, depth, acc, bins=5)
    assert held > 0.8 and held == pytest.approx(B.kendall_tau(follows_depth, depth), abs=0.03)
    assert abs(B.stratified_tau(follows_accuracy, depth, acc, bins=5)) < 0.15
    assert np.isnan(B.stratified_tau(follows_depth, np.zeros(400), acc))  # a constant descriptor: no tau


def test_run_writes_the_tables_and_agrees_with_the_correlation_run(tmp_path):
    from zico_jax.configs.bias import get_config

    c = get_config()
    c.update(space_options={"C": 4, "N": 1}, num_archs=12, batch_size=4, num_batches=2, log_every=6,
             data_dir=str(DATA), output_dir=str(tmp_path), betas=(0.0, 1.0, 2.0), bins=2, top_k=3)
    report = B.run_bias(c)
    for name in ("bias.md", "bias.csv", "bias.json", "beta_sweep.csv", "bias_depth.png", "beta_sweep.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    # strict JSON: the reference row's NaN tau is null, not a bare NaN token
    record = json.loads((tmp_path / "bias.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert record["bias"][-1]["tau_held"] is None
    table = list(csv.DictReader((tmp_path / "bias.csv").open()))
    assert [(r["proxy"], r["beta"]) for r in table] == [("zico", "0.0"), ("zico_bc", "1.0"), ("zico_bc", "2.0"),
                                                       ("accuracy", "")]
    rows = read_rows(tmp_path / "scores.jsonl")
    space = get_space("nats_tss")
    depth = [space.descriptors["depth"](space, space.parse(r["arch"])) for r in rows]
    summary = json.loads((tmp_path / "summary.json").read_text())
    sweep = {r["beta"]: r for r in report["beta_sweep"]}
    # beta 0 is ZiCo and beta 1 is the run's own ZiCo-BC: the sweep reproduces the correlation run's figures
    for beta, proxy in ((0.0, "zico"), (1.0, "zico_bc")):
        assert sweep[beta]["kendall_tau"] == pytest.approx(
            summary["correlations"][proxy]["cifar10_test"]["kendall_tau"], abs=1e-12)
    assert float(table[0]["tau_overall"]) == pytest.approx(
        B.kendall_tau([r["zico"] for r in rows], depth), abs=1e-12)
    assert len(rows) == 12 and report["n"] == 12
    with pytest.raises(ValueError, match="'nasbench101': bias descriptors are defined for nats_sss, nats_tss, zennas"):
        c.space = "nasbench101"
        B.run_bias(c)
    with pytest.raises(ValueError, match="config.beta > 0"):
        c.update(space="nats_tss", beta=0.0)
        B.run_bias(c)


def test_zennas_holds_flops_fixed_and_counts_layers(tmp_path):
    """No accuracy table for the MobileNetV2-style space: FLOPs bins, the official layer count, no beta sweep."""
    from zico_jax.configs.bias import get_config

    c = get_config()
    c.update(space="zennas_imagenet", space_options={"image_size": 32, "num_classes": 10}, num_archs=3, batch_size=2,
             num_batches=2, log_every=5, data_dir=str(DATA), output_dir=str(tmp_path), betas=(0.0, 1.0),
             bins=1)
    report = B.run_bias(c)
    rows = read_rows(tmp_path / "scores.jsonl")
    space = get_space("zennas_imagenet")
    assert report["held"] == "flops" and report["beta_sweep"] == [] and report["n"] == len(rows) == 3
    depth = [space.num_layers(space.parse(r["arch"])) for r in rows]
    by = {(r["proxy"], r["descriptor"]): r for r in report["bias"]}
    assert by[("zico", "depth")]["tau_overall"] == pytest.approx(B.kendall_tau([r["zico"] for r in rows], depth))
    assert by[("zico", "depth")]["tau_held"] == pytest.approx(by[("zico", "depth")]["tau_overall"])  # one bin
    markdown = (tmp_path / "bias.md").read_text()
    assert "| zico | 0.0000 | depth |" in markdown and "flops held" in markdown
    assert not (tmp_path / "beta_sweep.csv").exists()
