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
NB201_TRUTH_COLUMN = {"cifar10": "cifar10_test", "cifar100": "cifar100_test", "imagenet16_120": "imagenet16_120_test"}


def build_and_run(config):
    """Space, scorer, latency table and ground truth from the config, then `run_search`."""
    import jax.numpy as jnp

    from spaces import get_space
    from zico_jax import data as D
    from zico_jax.correlation import space_options_of
    from zico_jax.proxies import registry as R
    from zico_jax.search import MODES, AnalyticScorer, run_search

    if config.mode not in MODES:
        raise ValueError(f"unknown mode {config.mode!r}; expected one of {', '.join(MODES)}")
    space = get_space(config.space, **space_options_of(config))
    needs_latency = config.mode == "pareto" or config.budgets.latency is not None
    table = None
    if needs_latency or (config.space == "nats_tss" and config.latency_table):
        from zico_jax.latency import get_latency_table

        try:
            table = get_latency_table(config.latency_table, data_dir=config.get("data_dir"))
        except Exception as err:
            if needs_latency:
                raise ValueError(f"latency table {config.latency_table!r} is needed and could not be read: {err}")
    groundtruth = column = None
    if config.space == "nats_tss":
        from zico_jax.groundtruth import load_groundtruth

        groundtruth = load_groundtruth(config.space, config.get("groundtruth"), config.get("data_dir"))
        column = NB201_TRUTH_COLUMN[config.dataset]
    if config.proxy in ("params", "flops"):
        scorer = AnalyticScorer(space)
    else:
        R.parse_proxies(config.proxy)
        from zico_jax.engine import Engine

        x, y = D.load_images(config.dataset, "train", config.data_source, config.get("data_dir"))
        xs, ys = D.make_batches(x, y, config.num_batches, config.batch_size, config.seed)
        xs = D.resize_batches(xs, tuple(space.input_shape(1)[1:3]))
        xs = space.inputs(xs)
        ys = space.targets(xs, ys)
        dtype = jnp.float64 if config.x64 else jnp.float32
        scorer = Engine(space, jnp.asarray(xs, dtype), jnp.asarray(ys), (config.proxy,), seed=config.seed,
                        options=R.ProxyOptions(config.beta, config.feature_map), backend=config.backend,
                        candidate_batch=config.candidate_batch)
    return run_search(space, scorer, config, latency_table=table, groundtruth=groundtruth, truth_column=column)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from zico_jax.runtime import apply_flags, prepare_runtime, run_or_exit

    try:
        config = apply_flags(FLAGS.config, FLAGS, OVERRIDES, FLAGS.space_options)
    except ValueError as err:
        raise app.UsageError(f"--space_options: {err}") from None

    prepare_runtime(config)
    from zico_jax.search.run import format_summary

    summary = run_or_exit("search", build_and_run, config)
    print(format_summary(summary))


if __name__ == "__main__":
    app.run(main)
