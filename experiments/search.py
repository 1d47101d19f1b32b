"""Training-free architecture search (ZiCo's evolutionary algorithm, random search, or a score-vs-latency front).

    python -m experiments.search --config.budgets.latency=10 --config.iterations=2000 --output_dir runs/search
    python -m experiments.search --proxy zico_bc --mode pareto --output_dir runs/pareto

For nats_tss the report (best.json, summary.md) gives the found network's ground-truth cifar10 test accuracy and
SD855-GPU latency against the best network of NAS-Bench-201 meeting the same budgets. Rerunning into the same
--output_dir resumes from its latest checkpoint. A bad setting ends with one line `search: error: ...`, exit 1.
"""

import os
import pathlib
import sys

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "search.py"),
    "search config file (ml_collections); override fields with --config.FIELD=VALUE", lock_config=False)
flags.DEFINE_string("space", None, "search space name")
flags.DEFINE_string("space_options", None, "space constructor options as KEY=VALUE,..., e.g. C=4,N=1")
flags.DEFINE_string("proxy", None, "objective: zico | zico_bc | params")
flags.DEFINE_string("mode", None, "evolution | random | pareto")
flags.DEFINE_integer("iterations", None, "proposals in all (budget-rejected ones count)")
flags.DEFINE_integer("seed", None, "seed of the search, weight init and batch draw")
flags.DEFINE_string("output_dir", None, "folder for search.jsonl, checkpoints/, best.json, summary.md")
FLAGS = flags.FLAGS
OVERRIDES = ("space", "proxy", "mode", "iterations", "seed", "output_dir")


def main(argv):
    from zico_jax.runtime import config_from_flags, run_or_exit

    config = config_from_flags(argv, FLAGS, OVERRIDES)
    from zico_jax.search import format_summary, run_search_from_config

    summary = run_or_exit("search", run_search_from_config, config)
    print(format_summary(summary))


if __name__ == "__main__":
    app.run(main)
