"""ZiCo-BC's FFNet-style segmentation space (ffnet_seg): genotype strings and codes, sampling and mutation, the
layer table against the flax network, hand-computed counts, pixel-wise cross-entropy against NumPy, the synthetic
label maps, and the tape backend's ZiCo against the whole network's (float64). Tiny widths and 16x16 images."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_batches

from zico_jax import cli
from zico_jax.engine import Engine
from zico_jax.grads import kernel_leaves
from zico_jax.nn.losses import pixel_cross_entropy
from zico_jax.proxies import feature_shapes, zico
from zico_jax.proxies.registry import ProxyOptions
from zico_jax.spaces import get_space
from zico_jax.spaces.base import GenotypeError
from zico_jax.spaces.ffnet import DEFAULT_STAGES, FFNetSegSpace, parse_genotype
from zico_jax.spaces.ffnet_blocks import block_groups

# (stride, channel choices, block choices): the stem takes 16x16 images to 4x4, then 4, 2, 1, 1
TINY_STAGES = ((1, (32,), (1, 2)), (2, (32, 64), (1, 2)), (2, (64,), (1,)), (2, (64,), (1,)))
TINY = "c32_b1_conv|c64_b1_gc|c64_b1_conv|c64_b1_conv"
TINY_DEEP = "c32_b2_gc|c64_b2_gc|c64_b1_conv|c64_b1_gc"  # identity shortcuts, 64 -> 64 convs in 2 groups
DEFAULT = "c64_b2_conv|c128_b2_gc|c256_b3_conv|c512_b2_gc"


def tiny_space(**options):
    return FFNetSegSpace(stages=TINY_STAGES, stem_channels=32, head_channels=16, num_classes=5, image_size=16,
                         **options)


def test_parse_str_encode_decode_round_trip():
    space = FFNetSegSpace()
    g = space.parse(DEFAULT)
    assert str(g) == DEFAULT and space.parse(str(g)) == g and str(space.parse(f" {DEFAULT} ")) == DEFAULT
    code = space.encode(g)
    assert code.tolist() == [1, 1, 0, 1, 1, 1, 1, 2, 0, 2, 1, 1] and code.dtype == np.int32
    assert space.decode(code) == g
    assert space.arch_id(g) == space.arch_id(DEFAULT) == space.arch_id(code) and 0 <= space.arch_id(g) < 2**31
    tiny = tiny_space()
    assert tiny.arch_id(TINY) != tiny.arch_id(TINY_DEEP)
    for text in (TINY, TINY_DEEP):
        assert str(tiny.parse(text)) == text and tiny.decode(tiny.encode(text)) == tiny.parse(text)


@pytest.mark.parametrize("text,match", [
    (None, "expected a string like"),
    ("c64_b2_conv|c128_b2_gc|c256_b3_conv", "3 stages; expected 4 separated by '|'"),
    ("c64_b2_conv|c128_b2|c256_b3_conv|c512_b2_gc", r"stage 1 'c128_b2'; expected c\{channels\}"),
    ("c48_b2_conv|c128_b2_gc|c256_b3_conv|c512_b2_gc", r"stage 0 .*channels 48; expected one of \(32, 64, 96\)"),
    ("c64_b2_conv|c128_b2_gc|c256_b7_conv|c512_b2_gc", r"stage 2 .*blocks 7; expected one of \(1, 2, 3, 4, 5, 6\)"),
    ("c64_b2_conv|c128_b2_dw|c256_b3_conv|c512_b2_gc", r"type 'dw'; expected one of \('conv', 'gc'\)"),
])
def test_parse_errors(text, match):
    with pytest.raises(GenotypeError, match=match):
        parse_genotype(text, DEFAULT_STAGES)


def test_decode_errors_registry_and_default_beta():
    space = FFNetSegSpace()
    with pytest.raises(GenotypeError, match="expected 12 integers"):
        space.decode([0] * 11)
    with pytest.raises(GenotypeError, match="stage 2 blocks index 6; expected 0..5"):
        space.decode([0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0])
    with pytest.raises(NotImplementedError, match="no whole-space network"):
        space.model(None)
    with pytest.raises(ValueError, match="expected 4"):
        FFNetSegSpace(stages=TINY_STAGES[:3])
    assert get_space("ffnet_seg").name == "ffnet_seg" and get_space("ffnet_seg").num_classes == 19
    assert FFNetSegSpace.default_beta == 2.0 and space.loss is pixel_cross_entropy


def test_sample_and_mutate_are_valid_and_deterministic():
    space = FFNetSegSpace()
    samples = [space.sample(np.random.default_rng(s)) for s in range(20)]
    assert samples == [space.sample(np.random.default_rng(s)) for s in range(20)]
    assert len({str(g) for g in samples}) == 20 and all(space.parse(str(g)) == g for g in samples)
    g = samples[0]
    for seed in range(20):
        child = space.mutate(g, np.random.default_rng(seed))
        assert child == space.mutate(g, np.random.default_rng(seed)) and space.parse(str(child)) == child
        assert (space.encode(child) != space.encode(g)).sum() == 1
    tiny = tiny_space()  # fields with a single choice are never mutated
    for seed in range(20):
        changed = np.nonzero(tiny.encode(tiny.mutate(TINY, np.random.default_rng(seed))) != tiny.encode(TINY))[0]
        assert len(changed) == 1 and changed[0] in (1, 2, 3, 4, 5, 8, 11)


def test_block_groups():
    assert block_groups(64, 64, "conv") == 1 and block_groups(64, 64, "gc") == 2 and block_groups(32, 64, "gc") == 1
    assert block_groups(256, 512, "gc") == 8 and block_groups(384, 512, "gc") == 4  # gcd 128: 4 groups of 32
    with pytest.raises(ValueError, match="expected one of"):
        block_groups(64, 64, "dw")


@pytest.mark.parametrize("text", [TINY, TINY_DEEP])
def test_layer_table_matches_the_network(text):
    space = tiny_space()
    xs, _ = tiny_batches(hw=16)
    g = space.parse(text)
    model = space.model(g)
    variables = jax.eval_shape(model.init, jax.random.key(0), xs[0])  # shapes only: no FLOPs, no compilation
    layers = space.layers(g)
    assert feature_shapes(model, variables, xs[0]) == {l.path: (*l.out_hw, l.out_channels) for l in layers}
    kernels = kernel_leaves(variables["params"])
    assert {p: k.shape for p, k in kernels.items()} == {
        l.path: (l.kernel_size, l.kernel_size, l.in_channels // l.groups, l.out_channels) for l in layers}
    assert space.params(g) == sum(math.prod(x.shape) for x in jax.tree.leaves(variables["params"]))
    assert space.flops(g) == sum(l.macs for l in layers)
    assert jax.eval_shape(model.apply, variables, xs[0]).shape == (4, 16, 16, 5)
    if text == TINY_DEEP:
        assert {l.groups for l in layers} == {1, 2}


def test_hand_computed_counts():
    """TINY at 16x16: stem 8x8 and 4x4, stage 0 4x4, stage 1 2x2, stages 2 and 3 1x1 (k x k * Cin/groups * Cout)."""
    space = tiny_space()
    g = space.parse(TINY)
    macs = [27 * 32 * 64, 9 * 32 * 32 * 16,                  # stem: 3 -> 32 at 8x8, 32 -> 32 at 4x4
            9 * 32 * 32 * 16, 9 * 32 * 32 * 16,              # s0: two 3x3 32 -> 32 at 4x4, identity shortcut
            9 * 32 * 64 * 4, 9 * 32 * 64 * 4, 32 * 64 * 4,  # s1 "gc": 32 -> 64 (1 group), 64 -> 64 (2 groups), 1x1
            9 * 64 * 64, 9 * 64 * 64, 64 * 64,               # s2 at 1x1, 1x1 shortcut (stride 2)
            9 * 64 * 64, 9 * 64 * 64, 64 * 64,               # s3 at 1x1 (ceil(1 / 2) = 1)
            32 * 16 * 16, 64 * 16 * 4, 64 * 16, 64 * 16,     # head projections to 16 channels at 4x4, 2x2, 1x1, 1x1
            9 * 16 * 16 * 16, 16 * 5 * 16]                   # fuse 3x3 at 4x4, classifier 16 -> 5 at 4x4
    weights = 27 * 32 + 3 * 9 * 32 * 32 + 2 * 9 * 32 * 64 + 32 * 64 + 2 * (2 * 9 * 64 * 64 + 64 * 64) \
        + 32 * 16 + 3 * 64 * 16 + 9 * 16 * 16 + 16 * 5
    bn = 2 * (4 * 32 + 3 * 64 + 2 * 3 * 64 + 5 * 16)
    assert space.flops(g) == sum(macs) == 55296 + 3 * 147456 + 2 * 73728 + 8192 + 2 * (2 * 36864 + 4096) \
        + 8192 + 4096 + 2 * 1024 + 36864 + 1280
    assert space.params(g) == weights + bn + 5  # + the classifier's bias


def test_synthetic_label_maps():
    space = tiny_space()
    xs, labels = tiny_batches(hw=16)
    ys = space.targets(xs, labels)
    assert ys.shape == (2, 4, 16, 16) and ys.dtype == np.int32 and ys.min() == 0 and ys.max() == 4
    assert (ys == space.targets(xs, labels)).all()
    grey = np.array([[0.0, 1.0], [2.0, 4.0]])  # normalised 0, .25, .5, 1 -> floor(5 x) = 0, 1, 2, 5 -> 4
    image = np.repeat(grey[..., None], 3, -1)[None, None]
    assert space.targets(image, None)[0, 0].tolist() == [[0, 1], [2, 4]]
    assert not space.targets(np.ones((1, 1, 2, 2, 3)), None).any()  # a constant image: all class 0


def test_pixel_cross_entropy_matches_numpy(x64):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4, 5)) * 2
    labels = rng.integers(0, 5, (2, 3, 4))
    labels[0, 0, :2] = 255  # Cityscapes' void label: ignored
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = labels < 5
    expected = -np.take_along_axis(logp, np.where(valid, labels, 0)[..., None], -1)[..., 0][valid].mean()
    assert float(pixel_cross_entropy(jnp.asarray(logits), jnp.asarray(labels))) == pytest.approx(expected, rel=1e-12)
    assert float(pixel_cross_entropy(jnp.zeros((1, 2, 2, 4)), jnp.zeros((1, 2, 2), int))) == pytest.approx(math.log(4))


def test_tape_zico_equals_the_network_zico(x64):
    """One block per stage; the network is initialised by one jit from the engine's per-candidate key (eager init
    compiles per parameter shape: slow on shared CPUs)."""
    space = tiny_space()
    xs, labels = tiny_batches(hw=16, dtype=np.float64)
    xs, ys = jnp.asarray(xs), jnp.asarray(space.targets(xs, labels))
    engine = Engine(space, xs, ys, ("zico", "zico_bc"), seed=2, options=ProxyOptions(beta=space.default_beta))
    assert engine.backend == "tape" and engine.supernet is None
    g = space.parse(TINY)
    model = space.model(g, dtype=jnp.float64)
    params = jax.jit(model.init)(engine.candidate_key(g), xs[0])["params"]
    result = engine.score_one(TINY, params)
    expected = float(zico(model, {"params": params}, xs, ys, loss=space.loss))
    assert np.isfinite(expected) and result.scores["zico"] == pytest.approx(expected, rel=1e-10)
    assert result.layers_counted == len(space.layers(g))
    # ZiCo-BC with the space's beta: ZiCo - beta * sum_l log(H_l W_l / sqrt(C_l)) over the output feature maps
    penalty = sum(math.log(l.out_hw[0] * l.out_hw[1] / math.sqrt(l.out_channels)) for l in space.layers(g))
    assert result.scores["zico_bc"] == pytest.approx(expected - space.default_beta * penalty, rel=1e-10)
    assert result.flops == space.flops(g) and result.params == space.params(g)


def test_score_and_correlate_give_the_same_score(tmp_path, capsys):
    """`zico score` and `zico correlate` build their engine the same way (the space's input size, its
    segmentation targets, its beta 2), so one architecture gets one score."""
    space = get_space("ffnet_seg", image_size=32)
    arch = str(space.sample(np.random.default_rng(0)))
    (tmp_path / "truth.csv").write_text(f"arch,miou\n{arch},0.5\n")
    common = ["--config.space=ffnet_seg", "--config.space_options.image_size=32", "--config.batch_size=2",
              "--no-compilation-cache"]
    assert cli.main(["score", "--arch", arch, "--json", *common]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert cli.main(["correlate", f"--config.groundtruth={tmp_path / 'truth.csv'}", "--config.num_archs=0",
                     f"--config.output_dir={tmp_path / 'run'}", *common]) == 0
    (row,) = [json.loads(line) for line in (tmp_path / "run" / "scores.jsonl").read_text().splitlines()]
    assert row["arch"] == scored["arch"] == arch and scored["beta"] == row["beta"] == 2.0
    assert row["zico"] == scored["zico"] and row["zico_bc"] == scored["zico_bc"]
