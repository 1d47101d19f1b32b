"""The ablate config a user runs by path: `python experiments/ablate.py --config=experiments/configs/ablate.py:PRESET`
(`zico ablate --config=PRESET` is the same). Its fields, defaults and presets are the library's:
`zico_jax/configs/ablate.py`. Copy this file to start a config of your own.
"""

from zico_jax.configs.ablate import PRESETS, get_config  # noqa: F401  (what --config loads)
