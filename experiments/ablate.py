"""Ablation: training-free proxies x search spaces x datasets (x tasks) x seeds, one table and one heat map.

    python -m experiments.ablate --cells nats_tss:cifar10,nasbench101:cifar10 --num_archs 100 --seeds 0,1,2 \
        --output_dir runs/ablation
    python -m experiments.ablate --protocol suite_zero --output_dir runs/suite_zero   # 1,000 archs x 10 seeds

The config (experiments/configs/ablate.py) holds every setting; the short flags below override it when given.
Each (cell, seed) is a resumable correlation run under <output_dir>/<cell>/seed_<k>: rerunning resumes.
Missing data or a bad setting ends with one line `ablate: error: ...` and exit status 1.
"""

import os
import pathlib
import sys

if __package__ in (None, ""):  # run as a script: make the project importable without installing it
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "ablate.py"),
    "experiment config file (ml_collections); override fields with --config.FIELD=VALUE", lock_config=False)
# Convenience flags: None means "as in the config".
flags.DEFINE_list("cells", None, "comma-separated cells: space:dataset, or space:task for transnas101_micro/macro")
flags.DEFINE_list("seeds", None, "comma-separated seeds (each draws the architectures and the init/batch seed)")
flags.DEFINE_enum("protocol", None, ["default", "suite_zero"], "suite_zero: 1,000 architectures x seeds 0..9")
flags.DEFINE_string("space_options", None, "space options for every cell as KEY=VALUE,..., e.g. C=4,N=1")
flags.DEFINE_string("proxies", None, "comma-separated proxy names, e.g. zico,zico_bc,synflow")
flags.DEFINE_integer("num_archs", None, "architectures per run (0 or -1: all)")
flags.DEFINE_integer("batch_size", None, "images per mini-batch")
flags.DEFINE_integer("num_batches", None, "mini-batches per architecture")
flags.DEFINE_string("output_dir", None, "folder for the runs, ablation.{csv,md}, heatmap.png, run.json")
flags.DEFINE_string("data_dir", None, "data folder (default $ZICO_JAX_DATA, else the data that ships with zico-jax)")
flags.DEFINE_bool("x64", None, "compute in float64")
FLAGS = flags.FLAGS

OVERRIDES = ("protocol", "proxies", "num_archs", "batch_size", "num_batches", "output_dir", "data_dir", "x64")


def main(argv):
    from zico_jax.runtime import config_from_flags, run_or_exit

    config = config_from_flags(argv, FLAGS, OVERRIDES)
    if FLAGS.cells is not None:
        config.cells = list(FLAGS.cells)
    if FLAGS.seeds is not None:
        try:
            config.seeds = [int(s) for s in FLAGS.seeds]
        except ValueError as err:
            raise app.UsageError(f"--seeds: {err}") from None
    from zico_jax.ablation import format_markdown, run_ablation

    rows = run_or_exit("ablate", run_ablation, config)
    print(format_markdown(rows))


if __name__ == "__main__":
    app.run(main)
