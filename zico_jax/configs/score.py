"""Config of `zico score`: score given architectures and print one line (or JSON object) each.

Fields: the scoring fields (`zico_jax.configs.scoring`), and
  archs                  genotype strings (`--arch A --arch B` appends; `--config.archs="('A','B')"` sets).
  archs_file             a text file with one genotype string per line (added to archs).
  proxies                comma-separated proxy names.
  weights                .npz of PyTorch-named weights to score instead of the seeded init (None: the init).
  inputs                 .npz with x (M, 3, H, W) float32 and y (M,), cut into num_batches (None: dataset).
  cumulative             ZiCo on running sums g1, g1+g2 of the per-batch gradients: the superseded first commit of
                         the official code (bbabe28); the current official code zeroes the gradients per batch.
  json                   one JSON object per architecture per line (else a readable line).

Example:
    ARCH='|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    zico score --config.archs="('$ARCH',)" --config.json=True
"""

import ml_collections

from zico_jax.configs import check_preset, placeholder
from zico_jax.configs.scoring import add_scoring_fields

PRESETS = ("default",)


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    check_preset(preset, PRESETS, "score")
    config = add_scoring_fields(ml_collections.ConfigDict())
    config.archs = ()
    config.archs_file = placeholder(str)
    config.proxies = "zico,zico_bc"
    config.weights = placeholder(str)
    config.inputs = placeholder(str)
    config.cumulative = False
    config.json = False
    return config
