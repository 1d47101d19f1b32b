"""`run_search_from_config(config)`: a whole search from its config (what `experiments/search.py` runs).

Builds the space (`config.space`, `space_options`), the objective's scorer (the compile-once `Engine` for a
gradient proxy such as zico / zico_bc, `AnalyticScorer` for params / flops: no network is built), the latency
table (needed by a latency budget and by pareto mode; for nats_tss also read for the report when available; a
per-layer table at `latency_resolution`, its missing layers predicted by a fitted linear model when
`latency_predictor`: how the ZiCo-BC spaces, whose conv layers OFA's Note10 blocks do not cover, get a latency) and,
for NAS-Bench-201, the ground truth the report compares the found network against; then `run_search`.

Example:
    >>> from zico_jax.configs.search import get_config
    >>> config = get_config()
    >>> config.update(iterations=200, population_size=32, proxy="params", output_dir="/tmp/search")
    >>> run_search_from_config(config)["best"]["arch"]
"""

from __future__ import annotations

import logging
from typing import Any

from zico_jax.errors import DataNotFoundError, InputError
from zico_jax.from_config import engine_from_config, space_from_config
from zico_jax.groundtruth import load_groundtruth
from zico_jax.latency import fit_predictor, get_latency_table
from zico_jax.proxies.registry import parse_proxies
from zico_jax.search.run import MODES, AnalyticScorer, run_search

ANALYTIC_OBJECTIVES = ("params", "flops")


def run_search_from_config(config) -> dict[str, Any]:
    """Space, scorer, latency table and ground truth from `config` (experiments/configs/search.py), then
    `run_search`; returns its summary. Bad settings raise ValueError naming the field."""
    if config.mode not in MODES:
        raise InputError(f"config.mode {config.mode!r}: expected one of {', '.join(MODES)}")
    space = space_from_config(config)
    table = _latency_table(config, type(space).network_latency_tables)
    groundtruth, column = _groundtruth(config, type(space))
    return run_search(space, _scorer(space, config), config, latency_table=table, groundtruth=groundtruth,
                      truth_column=column)


def _groundtruth(config, declared):
    """The benchmark table and column the report compares the found network against: where the space declares
    accuracy columns for config.dataset (NAS-Bench-201's), its test accuracy. config.groundtruth must be readable;
    the default table is left out of the report when it is not there."""
    columns = declared.groundtruth_columns.get(config.dataset)
    if not columns:
        return None, None
    try:
        return load_groundtruth(config.space, config.get("groundtruth"), config.get("data_dir")), columns[-1]
    except DataNotFoundError:
        if config.get("groundtruth"):
            raise
        logging.info("search: no ground truth for %s at hand; the report gives no accuracy", config.space)
        return None, None


def _scorer(space, config):
    if config.proxy in ANALYTIC_OBJECTIVES:
        return AnalyticScorer(space)
    return engine_from_config(space, config, parse_proxies(config.proxy))


def _latency_table(config, report_latency: bool):
    """The table a latency budget or pareto mode needs (an error if unreadable); for a space the whole-network
    tables cover, the default table also when nothing needs it, so that the report gives the found network's
    latency (None if unreadable)."""
    needs_latency = config.mode == "pareto" or config.budgets.latency is not None
    if not (needs_latency or (report_latency and config.latency_table)):
        return None
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
    predictor = fit_predictor(table) if predict else None
    if predictor is not None:
        logging.info("latency of layers %s lacks: %s", table.name, predictor.report())
    return table.configured(resolution, predictor)
