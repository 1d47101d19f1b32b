"""The bias config a user runs by path: `python experiments/bias.py --config=experiments/configs/bias.py:PRESET`
(`zico bias --config=PRESET` is the same). Its fields, defaults and presets are the library's:
`zico_jax/configs/bias.py`. Copy this file to start a config of your own.
"""

from zico_jax.configs.bias import PRESETS, get_config  # noqa: F401  (what --config loads)
