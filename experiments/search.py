"""`zico search` as a script: `python experiments/search.py --config.FIELD=VALUE ...` (see docs/cli.md).

The config is `experiments/configs/search.py` (the library's `zico_jax/configs/search.py`); every flag of
`zico search` works here the same.
"""

import sys

from zico_jax import cli

if __name__ == "__main__":
    sys.exit(cli.main(["search", *sys.argv[1:]]))
