"""`zico ablate` as a script: `python experiments/ablate.py --config.FIELD=VALUE ...` (see docs/cli.md).

The config is `experiments/configs/ablate.py` (the library's `zico_jax/configs/ablate.py`); every flag of
`zico ablate` works here the same.
"""

import sys

from zico_jax import cli

if __name__ == "__main__":
    sys.exit(cli.main(["ablate", *sys.argv[1:]]))
