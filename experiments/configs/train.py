"""The train config a user runs by path: `python experiments/train.py --config=experiments/configs/train.py:PRESET`
(`zico train --config=PRESET` is the same). Its fields, defaults and presets are the library's:
`zico_jax/configs/train.py`. Copy this file to start a config of your own.
"""

from zico_jax.configs.train import PRESETS, get_config  # noqa: F401  (what --config loads)
