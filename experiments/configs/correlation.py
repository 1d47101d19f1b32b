"""The correlation config a user runs by path:
`python experiments/correlation.py --config=experiments/configs/correlation.py:PRESET`
(`zico correlate --config=PRESET` is the same). Its fields, defaults and presets are the library's:
`zico_jax/configs/correlation.py`. Copy this file to start a config of your own.
"""

from zico_jax.configs.correlation import PRESETS, get_config  # noqa: F401  (what --config loads)
