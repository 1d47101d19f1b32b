"""Train a found network from scratch (NAS-Bench-201's recipe by default; see experiments/configs/train.py).

    python -m experiments.train --data_source tfds --output_dir runs/train_best \
        --genotype '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
    python -m experiments.train --space_options C=8,N=1 --num_epochs 5 --batch_size 64 --output_dir runs/tiny \
        --genotype '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'

Rerunning into the same --output_dir resumes from its latest checkpoint. A bad setting ends with one line
`train: error: ...`, exit status 1.
"""

import json
import os
import pathlib
import sys

if __package__ in (None, ""):  # run as a script: make the project importable without installing it
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "train.py"),
    "training config file (ml_collections); override fields with --config.FIELD=VALUE", lock_config=False)
flags.DEFINE_string("space", None, "search space name")
flags.DEFINE_string("space_options", None, "space constructor options as KEY=VALUE,..., e.g. C=8,N=1")
flags.DEFINE_string("genotype", None, "the network to train, in the space's string form")
flags.DEFINE_string("dataset", None, "cifar10 | cifar100 | imagenet16_120 | imagenet2012")
flags.DEFINE_string("data_source", None, "offline | tfds")
flags.DEFINE_string("data_dir", None, "data folder (offline) or tfds data_dir")
flags.DEFINE_integer("num_epochs", None, "epochs")
flags.DEFINE_integer("num_steps", None, "total steps (instead of num_epochs)")
flags.DEFINE_integer("batch_size", None, "images per training step")
flags.DEFINE_float("learning_rate", None, "peak learning rate")
flags.DEFINE_integer("seed", None, "seed of the weight init, data order and augmentation")
flags.DEFINE_string("output_dir", None, "folder for checkpoints/, metrics.jsonl, summary.json")
FLAGS = flags.FLAGS
OVERRIDES = ("space", "genotype", "dataset", "data_source", "data_dir", "num_epochs", "num_steps", "batch_size",
             "learning_rate", "seed", "output_dir")


def main(argv):
    from zico_jax.runtime import config_from_flags, run_or_exit

    config = config_from_flags(argv, FLAGS, OVERRIDES)
    from zico_jax.train import train_from_config

    summary = run_or_exit("train", train_from_config, config)
    summary.pop("config")
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    app.run(main)
