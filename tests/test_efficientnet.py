"""ZiCo-BC's EfficientNet/DONNA-style spaces (efficientnet_cls, efficientnet_det): genotype strings and codes,
sampling and mutation, the layer table against the flax network, hand-computed counts, the detection losses
against NumPy, the synthetic detection targets, and the tape backend's ZiCo against the whole network's (float64).
Tiny stages and 16x16 images keep it fast."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_batches

from zico_jax.engine import Engine
from zico_jax.grads import kernel_leaves
from zico_jax.nn.losses import detection_loss, sigmoid_focal_loss
from zico_jax.proxies import feature_shapes, zico
from zico_jax.proxies.registry import ProxyOptions
from zico_jax.spaces import get_space, parse_space_options
from zico_jax.spaces.base import GenotypeError
from zico_jax.spaces.efficientnet import DEFAULT_STAGES, EfficientNetClsSpace, EfficientNetDetSpace, parse_genotype
from zico_jax.spaces.efficientnet_blocks import group_count, spatial_groups

# (stride, expansion, channel choices, repeat choices): strides 2 (stem), 1, 2, 2, 2 -> 16x16 images end at 1x1
TINY_STAGES = ((1, 1, (8, 16), (1, 2)), (2, 4, (8, 16), (1, 2)), (2, 4, (16, 24), (1, 2)), (2, 2, (16, 32), (1, 2)))
TINY = "k3_c8_r1_dw|k3_c8_r1_dw|k3_c16_r1_dw|k3_c16_r1_gc"
# 16 -> 64 expanded channels: a grouped k x k conv with 2 groups; repeats 2 (identity shortcut); kernel 5
TINY_GROUPED = "k5_c16_r2_gc|k3_c16_r1_gc|k5_c24_r2_dw|k3_c32_r1_gc"
DEFAULT = "k3_c16_r1_dw|k3_c24_r2_dw|k5_c40_r2_gc|k3_c112_r3_dw|k5_c320_r4_gc"


def cls_space(**options):
    return EfficientNetClsSpace(stages=TINY_STAGES, stem_channels=8, head_channels=32, num_classes=10,
                                image_size=16, **options)


def det_space(**options):
    return EfficientNetDetSpace(stages=TINY_STAGES, stem_channels=8, num_classes=10, image_size=16,
                                fpn_channels=8, head_depth=1, num_anchors=2, **options)


def test_parse_str_encode_decode_round_trip():
    space = EfficientNetClsSpace()
    g = space.parse(DEFAULT)
    assert str(g) == DEFAULT and space.parse(str(g)) == g and str(space.parse(f"  {DEFAULT}\n")) == DEFAULT
    code = space.encode(g)
    assert code.shape == (20,) and code.dtype == np.int32 and space.decode(code) == g
    assert code[:4].tolist() == [0, 0, 0, 0] and code[8:12].tolist() == [1, 0, 1, 1]  # k5 c40 r2 gc in stage 2
    assert space.arch_id(g) == space.arch_id(DEFAULT) == space.arch_id(code) and 0 <= space.arch_id(g) < 2**31
    tiny = cls_space()
    assert space.arch_id(DEFAULT) != tiny.arch_id(TINY) != tiny.arch_id(TINY_GROUPED)
    for text in (TINY, TINY_GROUPED):
        assert str(tiny.parse(text)) == text and tiny.decode(tiny.encode(text)) == tiny.parse(text)


@pytest.mark.parametrize("text,match", [
    ("", "expected a string like"),
    ("k3_c16_r1_dw|k3_c24_r2_dw", "2 stages; expected 5 separated by '|'"),
    ("k3_c16_r1_dw|k3_c24_r2|k5_c40_r2_gc|k3_c112_r3_dw|k5_c320_r4_gc", r"stage 1 'k3_c24_r2'; expected k\{kernel\}"),
    ("k7_c16_r1_dw|k3_c24_r2_dw|k5_c40_r2_gc|k3_c112_r3_dw|k5_c320_r4_gc", r"kernel 7; expected one of \(3, 5\)"),
    ("k3_c20_r1_dw|k3_c24_r2_dw|k5_c40_r2_gc|k3_c112_r3_dw|k5_c320_r4_gc",
     r"stage 0 .*channels 20; expected one of \(16, 24\)"),
    ("k3_c16_r1_dw|k3_c24_r4_dw|k5_c40_r2_gc|k3_c112_r3_dw|k5_c320_r4_gc",
     r"stage 1 .*repeats 4; expected one of \(1, 2, 3\)"),
    ("k3_c16_r1_dw|k3_c24_r2_dw|k5_c40_r2_sep|k3_c112_r3_dw|k5_c320_r4_gc",
     r"type 'sep'; expected one of \('dw', 'gc'\)"),
])
def test_parse_errors(text, match):
    with pytest.raises(GenotypeError, match=match):
        parse_genotype(text, DEFAULT_STAGES)


def test_decode_errors_and_no_whole_space_network():
    space = EfficientNetClsSpace()
    with pytest.raises(GenotypeError, match="expected 20 integers"):
        space.decode([0, 1])
    code = space.encode(DEFAULT)
    code[5] = 3  # stage 1 has 3 channel choices
    with pytest.raises(GenotypeError, match="stage 1 channels index 3; expected 0..2"):
        space.decode(code)
    for s in (space, EfficientNetDetSpace()):
        with pytest.raises(NotImplementedError, match="no whole-space network"):
            s.model(None)
    with pytest.raises(ValueError, match="expected at least 3"):
        EfficientNetClsSpace(stages=TINY_STAGES[:2])


def test_registry_options_and_default_beta():
    options = parse_space_options("stem_channels=8,num_classes=10,image_size=16")
    space = get_space("efficientnet_det", stages=TINY_STAGES, **options)
    assert isinstance(space, EfficientNetDetSpace) and space.name == "efficientnet_det"
    assert get_space("efficientnet_cls").name == "efficientnet_cls"
    assert EfficientNetClsSpace.default_beta == 1.0 and EfficientNetDetSpace.default_beta == 1.0
    assert space.loss is detection_loss


def test_sample_and_mutate_are_valid_and_deterministic():
    space = EfficientNetClsSpace()
    samples = [space.sample(np.random.default_rng(s)) for s in range(20)]
    assert samples == [space.sample(np.random.default_rng(s)) for s in range(20)]
    assert len({str(g) for g in samples}) == 20 and all(space.parse(str(g)) == g for g in samples)
    g = samples[0]
    for seed in range(20):
        child = space.mutate(g, np.random.default_rng(seed))
        assert child == space.mutate(g, np.random.default_rng(seed)) and space.parse(str(child)) == child
        assert (space.encode(child) != space.encode(g)).sum() == 1
    many = space.mutate(g, np.random.default_rng(0), num_mutations=5)
    assert 1 <= (space.encode(many) != space.encode(g)).sum() <= 5


def test_group_counts():
    assert group_count(64, 64) == 2 and group_count(96, 96) == 3 and group_count(32, 32) == 1
    assert group_count(16, 16) == 1 and group_count(96, 128) == 1 and group_count(80, 80) == 2  # 2 groups of 40
    assert spatial_groups(64, "dw") == 64 and spatial_groups(64, "gc") == 2
    space = EfficientNetClsSpace()  # the default stages: every grouped width is a multiple of 32
    for seed in range(10):
        for layer in space.layers(space.sample(np.random.default_rng(seed))):
            if 1 < layer.groups < layer.in_channels:
                assert layer.in_channels // layer.groups == 32


@pytest.mark.parametrize("make_space", [cls_space, det_space], ids=["cls", "det"])
def test_layer_table_matches_the_network(make_space):
    space = make_space()
    xs, _ = tiny_batches(hw=16)
    g = space.parse(TINY_GROUPED)
    model = space.model(g)
    variables = jax.eval_shape(model.init, jax.random.key(0), xs[0])  # shapes only: no FLOPs, no compilation
    layers = space.layers(g)
    assert feature_shapes(model, variables, xs[0]) == {l.path: (*l.out_hw, l.out_channels) for l in layers}
    kernels = kernel_leaves(variables["params"])
    assert {p: k.shape for p, k in kernels.items()} == {
        l.path: ((l.kernel_size, l.kernel_size, l.in_channels // l.groups, l.out_channels) if l.kind == "conv"
                 else (l.in_channels, l.out_channels)) for l in layers}
    assert space.params(g) == sum(math.prod(x.shape) for x in jax.tree.leaves(variables["params"]))
    assert space.flops(g) == sum(l.macs for l in layers)
    assert {l.groups for l in layers if "spatial" in l.path} >= {2, 64}  # grouped and depthwise k x k convs
    out = jax.eval_shape(model.apply, variables, xs[0])
    expected = (4, 10) if make_space is cls_space else (4, (4 * 4 + 2 * 2 + 1) * 2, 14)
    assert out.shape == expected


def test_hand_computed_counts():
    """TINY at 16x16: stem 8x8, stage 0 8x8, stage 1 4x4, stage 2 2x2, stage 3 1x1 (k x k * Cin/groups * Cout)."""
    space = cls_space()
    g = space.parse(TINY)
    macs = [27 * 8 * 64,                               # stem 3x3, 3 -> 8 at 8x8
            9 * 8 * 64, 8 * 8 * 64,                    # s0: dw 3x3 on 8 (expansion 1), project 8 -> 8
            8 * 32 * 64, 9 * 32 * 16, 32 * 8 * 16,     # s1: expand 8 -> 32 at 8x8, dw stride 2, project at 4x4
            8 * 32 * 16, 9 * 32 * 4, 32 * 16 * 4,      # s2: expand at 4x4, dw stride 2, project 32 -> 16 at 2x2
            16 * 32 * 4, 9 * 32 * 32 * 1, 32 * 16,     # s3 (expansion 2, "gc": 32 channels = 1 group): at 1x1
            16 * 32, 32 * 10]                          # head 1x1 conv 16 -> 32, dense 32 -> 10
    bn = 2 * (8 + 8 + 8 + 32 + 32 + 8 + 32 + 32 + 16 + 32 + 32 + 16 + 32)
    weights = 27 * 8 + 9 * 8 + 64 + 256 + 288 + 256 + 256 + 288 + 512 + 512 + 9216 + 512 + 512 + 320
    assert space.flops(g) == sum(macs) == 13824 + 4608 + 4096 + 16384 + 4608 + 4096 + 4096 + 1152 + 2048 + 2048 \
        + 9216 + 512 + 512 + 320
    assert space.params(g) == weights + bn + 10  # + the dense bias


def test_detection_targets_mark_the_centre_cells():
    space = det_space()
    xs, labels = tiny_batches(hw=16)
    ys = space.targets(xs, labels)
    assert space.level_sizes((16, 16)) == [(4, 4), (2, 2), (1, 1)]
    assert ys.shape == (2, 4, (16 + 4 + 1) * 2, 14) and ys.dtype == xs.dtype
    # centre cells: (2, 2) of 4x4 -> anchors 20, 21; (1, 1) of 2x2 -> 32 + 6, 7; (0, 0) of 1x1 -> 40, 41
    positive = np.nonzero(ys[0, 0].sum(-1))[0].tolist()
    assert positive == [20, 21, 38, 39, 40, 41]
    assert (ys[..., positive, :10].argmax(-1) == labels[..., None] % 10).all()
    assert ys[..., :10].sum() == 2 * 4 * 6 and not ys[..., 10:].any()


def numpy_focal(z, t, alpha=0.25, gamma=2.0):
    p = 1 / (1 + np.exp(-z))
    p_t = np.where(t == 1, p, 1 - p)
    alpha_t = np.where(t == 1, alpha, 1 - alpha)
    return (-alpha_t * (1 - p_t) ** gamma * np.log(p_t)).sum() / max(1, (t.sum(-1) > 0).sum())


def test_focal_and_detection_losses_match_numpy(x64):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 7, 5)) * 3
    t = np.zeros((3, 7, 5))
    t[0, 2, 1] = t[1, 4, 3] = t[2, 0, 0] = 1
    assert float(sigmoid_focal_loss(jnp.asarray(z), jnp.asarray(t))) == pytest.approx(numpy_focal(z, t), rel=1e-12)
    assert float(sigmoid_focal_loss(jnp.zeros((1, 1)), jnp.ones((1, 1)))) == pytest.approx(0.25 * 0.25 * math.log(2))
    assert float(sigmoid_focal_loss(jnp.asarray(z), jnp.zeros_like(jnp.asarray(z)))) == pytest.approx(
        numpy_focal(z, np.zeros_like(z)) * 1.0)  # no positives: normalised by 1
    box, box_t = rng.normal(size=(3, 7, 4)) * 0.2, rng.normal(size=(3, 7, 4)) * 0.2
    diff = np.abs(box - box_t)
    huber = np.where(diff < 0.1, 0.5 * diff**2, 0.1 * (diff - 0.05)) * (t.sum(-1, keepdims=True) > 0)
    expected = numpy_focal(z, t) + 50 * huber.sum() / (4 * 3)
    outputs, targets = np.concatenate([z, box], -1), np.concatenate([t, box_t], -1)
    assert float(detection_loss(jnp.asarray(outputs), jnp.asarray(targets))) == pytest.approx(expected, rel=1e-12)


def test_tape_zico_equals_the_network_zico(x64):
    """The detection network (its plan has a packing node and a multi-level head; classification shares the rest),
    as small as it gets: three one-block stages, no head towers, one anchor. The network is initialised by one jit
    from the engine's per-candidate key (eager init compiles per parameter shape: slow on shared CPUs)."""
    space = EfficientNetDetSpace(stages=((2, 1, (8,), (1,)), (2, 2, (8,), (1,)), (2, 2, (16,), (1,))),
                                 stem_channels=8, num_classes=4, image_size=16, fpn_channels=8, head_depth=0,
                                 num_anchors=1)
    text = "k3_c8_r1_gc|k5_c8_r1_dw|k3_c16_r1_dw"
    xs, labels = tiny_batches(hw=16, dtype=np.float64)
    xs, ys = jnp.asarray(xs), jnp.asarray(space.targets(xs, labels))
    engine = Engine(space, xs, ys, ("zico", "zico_bc"), seed=2, options=ProxyOptions(beta=space.default_beta))
    assert engine.backend == "tape" and engine.supernet is None
    g = space.parse(text)
    model = space.model(g, dtype=jnp.float64)
    params = jax.jit(model.init)(engine.candidate_key(g), xs[0])["params"]
    result = engine.score_one(text, params)
    expected = float(zico(model, {"params": params}, xs, ys, loss=space.loss))
    assert np.isfinite(expected) and result.scores["zico"] == pytest.approx(expected, rel=1e-10)
    assert result.layers_counted == len(space.layers(g))
    # ZiCo-BC with the space's beta: ZiCo - beta * sum_l log(H_l W_l / sqrt(C_l)) over the output feature maps
    penalty = sum(math.log(l.out_hw[0] * l.out_hw[1] / math.sqrt(l.out_channels)) for l in space.layers(g))
    assert result.scores["zico_bc"] == pytest.approx(expected - space.default_beta * penalty, rel=1e-10)
    assert result.flops == space.flops(g) and result.params == space.params(g)
