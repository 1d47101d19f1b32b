"""ZiCo's depth / width bias, and how ZiCo-BC's beta moves the correlation and the top architectures.

    python -m experiments.bias --num_archs 1000 --output_dir runs/bias_nb201
    python -m experiments.bias --space nats_sss --config.groundtruth=NATS-sss-v1_0-50262-simple --output_dir runs/bias_sss

One resumable scoring run (zico and zico_bc at --beta) gives every beta exactly (see zico_jax/bias.py); writes
scores.jsonl, bias.{md,csv,json}, beta_sweep.csv and the plots. A bad setting ends with one line
`bias: error: ...` and exit status 1.
"""

import os
import pathlib
import sys

if __package__ in (None, ""):  # run as a script: make the project importable without installing it
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "bias.py"),
    "experiment config file (ml_collections); override fields with --config.FIELD=VALUE", lock_config=False)
# Convenience flags: None means "as in the config".
flags.DEFINE_string("space", None, "nats_tss | nats_sss")
flags.DEFINE_string("space_options", None, "space options as KEY=VALUE,..., e.g. C=4,N=1")
flags.DEFINE_string("dataset", None, "cifar10 | cifar100 | imagenet16_120")
flags.DEFINE_integer("num_archs", None, "architectures to score (0 or -1: all)")
flags.DEFINE_float("beta", None, "ZiCo-BC's beta of the scoring run (> 0)")
flags.DEFINE_integer("seed", None, "seed of the weight init and the batch draw")
flags.DEFINE_string("output_dir", None, "folder for scores.jsonl, bias.*, beta_sweep.*")
flags.DEFINE_string("data_dir", None, "data folder (default $ZICO_JAX_DATA, else the data that ships with zico-jax)")
FLAGS = flags.FLAGS

OVERRIDES = ("space", "dataset", "num_archs", "beta", "seed", "output_dir", "data_dir")


def main(argv):
    from zico_jax.runtime import config_from_flags, run_or_exit

    config = config_from_flags(argv, FLAGS, OVERRIDES)
    from zico_jax.bias import format_report, run_bias

    print(format_report(run_or_exit("bias", run_bias, config)))


if __name__ == "__main__":
    app.run(main)
