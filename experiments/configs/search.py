"""The search config a user runs by path: `python experiments/search.py --config=experiments/configs/search.py:PRESET`
(`zico search --config=PRESET` is the same). Its fields, defaults and presets are the library's:
`zico_jax/configs/search.py`. Copy this file to start a config of your own.
"""

from zico_jax.configs.search import PRESETS, get_config  # noqa: F401  (what --config loads)
