"""Config of `zico export-layers`: the distinct Conv/Dense layers of some networks as a CSV to measure on a phone
(fill its latency_ms column and load it with `zico_jax.latency.load_layer_table`).

Fields:
  space, space_options   search space and its options (e.g. image_size=224).
  archs, archs_file      genotype strings, and a text file of them (one per line).
  sample, seed           add this many sampled architectures, drawn with this seed.
  resolution             the input resolution written in each row (None: the space's).
  output                 the CSV to write (required).
"""

import ml_collections

from zico_jax.configs import check_preset, placeholder
from zico_jax.configs.scoring import add_runtime_fields

PRESETS = ("default",)


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    check_preset(preset, PRESETS, "export-layers")
    config = ml_collections.ConfigDict()
    config.space = "nats_tss"
    config.space_options = ml_collections.ConfigDict()
    config.archs = ()
    config.archs_file = placeholder(str)
    config.sample = 0
    config.seed = 0
    config.resolution = placeholder(int)
    config.output = placeholder(str)
    return add_runtime_fields(config)
