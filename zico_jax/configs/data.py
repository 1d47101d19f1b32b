"""Config of `zico data`: list the official benchmark files zico-jax can fetch, or fetch one.

Fields:
  action                 "list" or "fetch" (`zico data list`, `zico data fetch NAME`).
  name                   the registry name to fetch (e.g. nasbench101; see `zico data list`).
  cache_dir              download folder (None: $ZICO_JAX_CACHE_DIR, else pooch.os_cache('zico_jax')).
"""

import ml_collections

from zico_jax.configs import check_preset, placeholder

PRESETS = ("default",)


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    check_preset(preset, PRESETS, "data")
    config = ml_collections.ConfigDict()
    config.action = "list"
    config.name = placeholder(str)
    config.cache_dir = placeholder(str)
    return config
