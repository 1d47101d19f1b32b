"""`zico bias` as a script: `python experiments/bias.py --config.FIELD=VALUE ...` (see docs/cli.md).

The config is `experiments/configs/bias.py` (the library's `zico_jax/configs/bias.py`); every flag of
`zico bias` works here the same.
"""

import sys

from zico_jax import cli

if __name__ == "__main__":
    sys.exit(cli.main(["bias", *sys.argv[1:]]))
