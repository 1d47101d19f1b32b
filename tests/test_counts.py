"""Analytic FLOPs of every space against XLA's own count of the same convolutions and matmuls.

`space.layers(g)` is the one description ZiCo-BC, FLOPs and parameter counts read; the per-space tests check it
against the network's kernel and feature shapes. Here each layer's multiply-accumulates are checked against
`compiled.cost_analysis()` of a lone convolution (or matmul) with the layer's geometry. XLA counts 2 FLOPs per
multiply-accumulate and skips the taps that fall on zero padding, while the papers count k*k taps at every
output position; the test computes the in-bounds taps independently and checks both conventions.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zico_jax.spaces import get_space

CASES = [
    ("nats_tss", dict(C=4, N=1, image_size=16)),
    ("nats_sss", dict(widths=(4, 8), image_size=16)),
    ("nasbench101", dict(stem_channels=8, num_stacks=2, num_cells=1, image_size=16)),
    ("transnas101_micro", dict(task="segmentsemantic", base_channels=8, image_size=32)),
    ("transnas101_macro", dict(task="class_scene", base_channels=8, image_size=32)),
]


def in_bounds_taps(size_in: int, size_out: int, k: int, stride: int) -> int:
    """Sum over output positions of the kernel taps that land inside the input (padding k // 2 each side)."""
    pad = k // 2
    return sum(sum(0 <= o * stride - pad + j < size_in for j in range(k)) for o in range(size_out))


def xla_flops(fn, *shapes) -> float:
    analysis = jax.jit(fn).lower(*(jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes)).compile().cost_analysis()
    return float((analysis[0] if isinstance(analysis, list) else analysis)["flops"])


def layer_flops_by_xla(layer) -> float:
    if layer.kind == "dense":
        return xla_flops(lambda x, w: x @ w, (1, layer.in_channels), (layer.in_channels, layer.out_channels))
    k, s, pad = layer.kernel_size, layer.stride, layer.kernel_size // 2

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (s, s), ((pad, pad), (pad, pad)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            feature_group_count=layer.groups)

    return xla_flops(conv, (1, *layer.in_hw, layer.in_channels),
                     (k, k, layer.in_channels // layer.groups, layer.out_channels))


@pytest.mark.parametrize("name,options", CASES, ids=[c[0] for c in CASES])
def test_layer_macs_match_xla_cost_analysis(name, options):
    space = get_space(name, **options)
    rng = np.random.default_rng(0)
    checked = set()
    for _ in range(3):
        g = space.sample(rng)
        layers = space.layers(g)
        assert space.flops(g) == sum(layer.macs for layer in layers) > 0  # (jigsaw, not here, counts 9 tiles)
        for layer in layers:
            if type(layer).__name__ == "TransposedConvInfo":  # a deconvolution; its MACs are defined by its class
                continue
            geometry = (layer.kind, layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                        layer.in_hw, layer.out_hw, layer.groups)
            if geometry in checked:
                continue
            checked.add(geometry)
            per_weight = layer.in_channels // layer.groups * layer.out_channels
            # the papers' convention: k*k taps at every output position
            assert layer.macs == per_weight * layer.kernel_size**2 * layer.out_hw[0] * layer.out_hw[1], layer.path
            # XLA's: in-bounds taps only, 2 FLOPs each
            taps = (in_bounds_taps(layer.in_hw[0], layer.out_hw[0], layer.kernel_size, layer.stride)
                    * in_bounds_taps(layer.in_hw[1], layer.out_hw[1], layer.kernel_size, layer.stride))
            assert layer_flops_by_xla(layer) == pytest.approx(2 * per_weight * taps, rel=1e-6), layer.path
    assert len(checked) >= 3
