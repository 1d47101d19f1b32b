"""`zico train` as a script: `python experiments/train.py --config.FIELD=VALUE ...` (see docs/cli.md).

The config is `experiments/configs/train.py` (the library's `zico_jax/configs/train.py`); every flag of
`zico train` works here the same.
"""

import sys

from zico_jax import cli

if __name__ == "__main__":
    sys.exit(cli.main(["train", *sys.argv[1:]]))
