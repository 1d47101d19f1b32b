"""`run_search_from_config(config)`: a whole search from its config (what `experiments/search.py` runs).

Builds the space (`config.space`, `space_options`), the objective's scorer (the compile-once `Engine` for a
gradient proxy such as zico / zico_bc, `AnalyticScorer` for params / flops: no network is built), the latency
table (needed by a latency budget and by pareto mode; for nats_tss also read for the report when available; a
per-layer table at `latency_resolution`, its missing layers predicted by a fitted linear model when
`latency_predictor`: how the ZiCo-BC spaces, whose conv layers OFA's Note10 blocks do not cover, get a latency) and,
for NAS-Bench-201, the ground truth the report compares the found network against; then `run_search`.

Example:
    >>> from experiments.configs.search import get_config
    >>> config = get_config()
    >>> config.update(iterations=200, population_size=32, proxy="params", output_dir="/tmp/search")
    >>> run_search_from_config(config)["best"]["arch"]
"""

from __future__ import annotations

import logging
from typing import Any

from spaces import get_space
from zico_jax.search.run import MODES, AnalyticScorer, run_search

ANALYTIC_OBJECTIVES = ("params", "flops")


def run_search_from_config(config) -> dict[str, Any]:
    """Space, scorer, latency table and ground truth from `config` (experiments/configs/search.py), then
    `run_search`; returns its summary. Bad settings raise ValueError naming the field."""
    from zico_jax.correlation import GROUNDTRUTH_COLUMNS, space_options_of

    if config.mode not in MODES:
        raise ValueError(f"config.mode {config.mode!r}: expected one of {', '.join(MODES)}")
    space = get_space(config.space, **space_options_of(config))
    table = _latency_table(config)
    groundtruth = column = None
    if config.space == "nats_tss":
        from zico_jax.groundtruth import load_groundtruth

        if config.dataset not in GROUNDTRUTH_COLUMNS:
            raise ValueError(f"config.dataset {config.dataset!r}: expected one of {', '.join(GROUNDTRUTH_COLUMNS)}")
        groundtruth = load_groundtruth(config.space, config.get("groundtruth"), config.get("data_dir"))
        column = GROUNDTRUTH_COLUMNS[config.dataset][-1]  # the test accuracy of the networks' dataset
    return run_search(space, _scorer(space, config), config, latency_table=table, groundtruth=groundtruth,
                      truth_column=column)


def _scorer(space, config):
    if config.proxy in ANALYTIC_OBJECTIVES:
        return AnalyticScorer(space)
    from zico_jax.proxies import registry as R
    from zico_jax.runtime import engine_from_config

    if config.dataset == "imagenet2012":
        return imagenet_engine(space, config, R.parse_proxies(config.proxy))
    return engine_from_config(space, config, R.parse_proxies(config.proxy))


def imagenet_batches(config, image_size: int):
    """`config.num_batches` mini-batches of `config.batch_size` ImageNet-1k TRAINING images at image_size, as the
    official search takes them (evolution_search.py `main`: the first `maxbatch` batches of a shuffled training
    loader, drawn once and reused for every candidate): (N, B, H, W, 3) float32 and (N, B) int32. Read by
    `zico_jax.train_data.ImageNetData` from prepared tfds files (config.data_dir; nothing is downloaded), with its
    training transform: random-resized crop (area 8-100%, aspect 3/4-4/3) + horizontal flip + the torchvision
    normalisation. The official transform (xautodl `get_datasets('imagenet-1k')`) also applies ColorJitter(0.4,
    0.4, 0.4, 0.2) and PCA lighting noise (0.1), which are not reproduced. The draw depends on config.seed."""
    import numpy as np

    from zico_jax.train_data import ImageNetData

    if config.data_source != "tfds":
        raise ValueError(f"config.data_source {config.data_source!r}: dataset 'imagenet2012' is read from prepared "
                         "tfds files only; set data_source='tfds' (and data_dir to the tfds data_dir)")
    stream = ImageNetData(config, image_size).batches(0)
    xs, ys = zip(*(next(stream) for _ in range(int(config.num_batches))))
    return np.stack([np.asarray(x, np.float32) for x in xs]), np.stack([np.asarray(y, np.int32) for y in ys])


def imagenet_engine(space, config, proxies):
    """`zico_jax.runtime.engine_from_config` for dataset 'imagenet2012' (which `zico_jax.data.load_images` does not
    hold in memory): the same Engine on `imagenet_batches` at the space's input size."""
    import jax.numpy as jnp

    from zico_jax.engine import Engine
    from zico_jax.proxies import registry as R
    from zico_jax.runtime import zico_bc_beta

    xs, ys = imagenet_batches(config, int(space.input_shape(1)[1]))
    xs = space.inputs(xs)
    ys = space.targets(xs, ys)
    dtype = jnp.float64 if config.get("x64") else jnp.float32
    return Engine(space, jnp.asarray(xs, dtype), jnp.asarray(ys), tuple(proxies), seed=config.seed,
                  options=R.ProxyOptions(zico_bc_beta(space, config), config.feature_map),
                  backend=config.get("backend", "auto"), candidate_batch=config.get("candidate_batch", 8))


def _latency_table(config):
    """The table a latency budget or pareto mode needs (an error if unreadable); for nats_tss the default table
    also when nothing needs it, so that the report gives the found network's latency (None if unreadable)."""
    needs_latency = config.mode == "pareto" or config.budgets.latency is not None
    if not (needs_latency or (config.space == "nats_tss" and config.latency_table)):
        return None
    from zico_jax.latency import get_latency_table

    try:
        table = get_latency_table(config.latency_table, data_dir=config.get("data_dir"))
    except Exception as err:
        if needs_latency:
            raise ValueError(f"config.latency_table {config.latency_table!r} is needed and could not be read: "
                             f"{err}") from err
        return None
    resolution, predict = config.get("latency_resolution"), config.get("latency_predictor", False)
    if not hasattr(table, "configured"):  # a whole-network table: nothing to configure
        if resolution is not None or predict:
            raise ValueError(f"config.latency_resolution / latency_predictor: {config.latency_table!r} is a "
                             "whole-network table; they apply to per-layer tables (e.g. note10_lut)")
        return table
    from zico_jax.latency import fit_predictor

    predictor = fit_predictor(table) if predict else None
    if predictor is not None:
        logging.info("latency of layers %s lacks: %s", table.name, predictor.report())
    return table.configured(resolution, predictor)
