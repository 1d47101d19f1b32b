"""`zico correlate` as a script: `python experiments/correlation.py --config.FIELD=VALUE ...` (see docs/cli.md).

The config is `experiments/configs/correlation.py` (the library's `zico_jax/configs/correlation.py`); every flag of
`zico correlate` works here the same.
"""

import sys

from zico_jax import cli

if __name__ == "__main__":
    sys.exit(cli.main(["correlate", *sys.argv[1:]]))
