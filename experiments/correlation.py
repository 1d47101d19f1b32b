"""Rank correlation of training-free proxies (ZiCo, ZiCo-BC, ...) with benchmark accuracy.

    python -m experiments.correlation --num_archs 1000 --output_dir runs/nb201_1000
    python -m experiments.correlation --space_options C=4,N=1 --num_archs 50 --output_dir runs/tiny

The config (experiments/configs/correlation.py) holds every setting; the short flags below override it when given.
Rerunning into the same --output_dir resumes: architectures already in scores.jsonl are not scored again.
Missing data or a bad setting ends with one line `correlation: error: ...` and exit status 1.
"""

import os
import pathlib
import sys

if __package__ in (None, ""):  # run as a script: make the project importable without installing it
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "correlation.py"),
    "experiment config file (ml_collections); override fields with --config.FIELD=VALUE", lock_config=False)
# Convenience flags: None means "as in the config".
flags.DEFINE_string("space", None, "search space name")
flags.DEFINE_string("space_options", None, "space constructor options as KEY=VALUE,..., e.g. C=4,N=1 "
                    "(config_flags cannot add keys to the config's empty space_options dict)")
flags.DEFINE_string("task", None, "TransNAS-Bench-101 task: class_scene, class_object, jigsaw, room_layout, "
                    "autoencoder, normal, segmentsemantic")
flags.DEFINE_string("dataset", None, "cifar10 | cifar100 | imagenet16_120")
flags.DEFINE_string("proxies", None, "comma-separated proxy names, e.g. zico,zico_bc")
flags.DEFINE_integer("num_archs", None, "architectures to score (0 or -1: all)")
flags.DEFINE_integer("batch_size", None, "images per mini-batch")
flags.DEFINE_integer("num_batches", None, "mini-batches per architecture")
flags.DEFINE_float("beta", None, "ZiCo-BC's beta")
flags.DEFINE_integer("seed", None, "seed of the weight init and the batch draw")
flags.DEFINE_string("output_dir", None, "folder for scores.jsonl, summary.*, config.json, scatter.png")
flags.DEFINE_string("data_dir", None, "data folder (default $ZICO_JAX_DATA, else the data that ships with zico-jax)")
flags.DEFINE_bool("x64", None, "compute in float64")
FLAGS = flags.FLAGS

OVERRIDES = ("space", "task", "dataset", "proxies", "num_archs", "batch_size", "num_batches", "beta", "seed",
             "output_dir",
             "data_dir", "x64")


def main(argv):
    from zico_jax.runtime import config_from_flags, run_or_exit

    config = config_from_flags(argv, FLAGS, OVERRIDES)
    from zico_jax.correlation import format_table, run_correlation

    summary = run_or_exit("correlation", run_correlation, config)
    print(format_table(summary))


if __name__ == "__main__":
    app.run(main)
