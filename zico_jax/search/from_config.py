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

from zico_jax.errors import InputError
from zico_jax.search.run import MODES, AnalyticScorer, run_search
from zico_jax.spaces import get_space

ANALYTIC_OBJECTIVES = ("params", "flops")


def run_search_from_config(config) -> dict[str, Any]:
    """Space, scorer, latency table and ground truth from `config` (experiments/configs/search.py), then
    `run_search`; returns its summary. Bad settings raise ValueError naming the field."""
    from zico_jax.correlation import GROUNDTRUTH_COLUMNS, space_options_of

    if config.mode not in MODES:
        raise InputError(f"config.mode {config.mode!r}: expected one of {', '.join(MODES)}")
    space = get_space(config.space, **space_options_of(config))
    table = _latency_table(config)
    groundtruth = column = None
    if config.space == "nats_tss":
        from zico_jax.groundtruth import load_groundtruth

        if config.dataset not in GROUNDTRUTH_COLUMNS:
            raise InputError(f"config.dataset {config.dataset!r}: expected one of {', '.join(GROUNDTRUTH_COLUMNS)}")
        groundtruth = load_groundtruth(config.space, config.get("groundtruth"), config.get("data_dir"))
        column = GROUNDTRUTH_COLUMNS[config.dataset][-1]  # the test accuracy of the networks' dataset
    return run_search(space, _scorer(space, config), config, latency_table=table, groundtruth=groundtruth,
                      truth_column=column)


def _scorer(space, config):
    if config.proxy in ANALYTIC_OBJECTIVES:
        return AnalyticScorer(space)
    from zico_jax.proxies import registry as R
    from zico_jax.runtime import engine_from_config

    return engine_from_config(space, config, R.parse_proxies(config.proxy))


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
            raise InputError(f"config.latency_table {config.latency_table!r} is needed and could not be read: "
                             f"{err}") from err
        return None
    resolution, predict = config.get("latency_resolution"), config.get("latency_predictor", False)
    if not hasattr(table, "configured"):  # a whole-network table: nothing to configure
        if resolution is not None or predict:
            raise InputError(f"config.latency_resolution / latency_predictor: {config.latency_table!r} is a "
                             "whole-network table; they apply to per-layer tables (e.g. note10_lut)")
        return table
    from zico_jax.latency import fit_predictor

    predictor = fit_predictor(table) if predict else None
    if predictor is not None:
        logging.info("latency of layers %s lacks: %s", table.name, predictor.report())
    return table.configured(resolution, predictor)
