"""The correlation experiment: how well do training-free proxies rank architectures by their trained accuracy?

`run_correlation(config)` (config: `zico_jax/configs/correlation.py`) does, as a pure function of its config:
  1. chooses `num_archs` architectures: the first `num_archs` of a permutation drawn with
     `np.random.default_rng(arch_seed)` (0 or -1: all), kept in that order, so a larger run extends a smaller one.
     The permutation is of `space.enumerate()` when the ground truth covers the whole space (NAS-Bench-201), else
     of the ground truth's architectures (the benchmark subsets of NAS-Bench-101 and TransNAS-Bench-101);
  2. draws `num_batches` x `batch_size` training images once with `seed`, resizes them (bilinear) when the space
     expects another input size, makes the task's targets (`space.targets`: the class labels, or for
     TransNAS-Bench-101's other tasks targets derived from the images, see `zico_jax.spaces.transnas101_tasks`) and
     scores every architecture with one `zico_jax.engine.Engine` (weights initialised from `seed` and the
     architecture; the loss is `space.loss`);
  3. appends one row per architecture to `<output_dir>/scores.jsonl` as soon as it is scored (`ResultsLog`: a
     killed run loses at most one row). Rows carry the arch, its benchmark index, every score, params, flops,
     seconds and the semantics used (space, dataset, data source, proxies, batches, batch size, beta, feature map,
     seed, dtype, backend). A rerun skips the architectures already there; rerunning into a folder whose
     scores were computed with other semantics is an error, since a mixed file would be meaningless;
  4. summarises ALL rows of scores.jsonl (resumed ones too) against the benchmark: Kendall tau-b, Spearman rho and
     top-10% precision per proxy and accuracy column (`zico_jax.metrics`), with params and FLOPs beside the
     proxies as free baselines, and writes summary.json, summary.md, config.json (config, library versions,
     devices), scatter.png and scores.csv (`write_scores_csv`: one line per architecture, its scores, counts,
     seconds and ground-truth columns; rewritten whole from all rows on every run, resumed ones too).
Ground-truth columns: NAS-Bench-201 / NATS-Bench: cifar10 -> cifar10valid_valid and cifar10_test; cifar100 ->
cifar100_test; imagenet16_120 -> imagenet16_120_test. Other benchmarks: every column of their table (NB101's
val_accuracy, TransNAS-Bench-101's val_metric of the chosen `task`). The scatter plots use the last column.

Example:
    >>> from zico_jax.configs.correlation import get_config
    >>> config = get_config(); config.num_archs = 100; config.output_dir = "runs/nb201_100"
    >>> print(format_table(run_correlation(config)))
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from absl import logging
from etils import epath, epy

with epy.lazy_imports():  # loaded on first use (~0.3 s): a bare Figure draws with Agg and leaves pyplot's
    import matplotlib.figure as mpl_figure  # global state alone

from zico_jax import storage
from zico_jax.errors import InputError
from zico_jax.from_config import engine_from_config, space_from_config, space_options, zico_bc_beta
from zico_jax.groundtruth import GroundTruth, load_groundtruth
from zico_jax.metrics import rank_correlations
from zico_jax.proxies import registry as proxy_registry
from zico_jax.results import Progress, ResultsLog, read_rows, write_csv, write_json
from zico_jax.runtime import run_environment
from zico_jax.sharding import peak_memory_bytes
from zico_jax.spaces import space_class

FREE_PROXIES = ("params", "flops")  # in every row already: compared at no cost
# Config fields that change what a score means; resuming with any of them different is an error.
SEMANTIC_FIELDS = ("space", "space_options", "task", "dataset", "data_source", "proxies", "num_batches", "batch_size",
                   "beta", "feature_map", "seed", "dtype", "gradients", "count_transposed_conv", "deduplicate")
# Semantic fields added later, with the value that runs recorded before them used.
SEMANTIC_DEFAULTS = {"gradients": "per_batch", "count_transposed_conv": False, "deduplicate": False}
METRICS = ("n", "kendall_tau", "spearman_rho", "top10_precision")


def run_correlation(config) -> dict[str, Any]:
    """Score, resume, summarise (see the module docstring); returns the summary written to summary.json."""
    start = time.perf_counter()
    if not config.get("output_dir"):
        raise InputError("config.output_dir is required: the folder for scores.jsonl and the summary")
    check_benchmark_dataset(config)
    if config.x64 and not jax.config.jax_enable_x64:
        raise InputError("config.x64=True needs float64 enabled first: jax.config.update('jax_enable_x64', True)")
    proxies = proxy_registry.parse_proxies(config.proxies)
    space = space_from_config(config)
    groundtruth = groundtruth_of(config)  # before scoring: a missing table should not cost an hour of compute
    columns = truth_columns(config, groundtruth)
    out = storage.as_path(config.output_dir)
    semantics = semantics_of(config, proxies, space)
    check_resumable(out, semantics)

    archs = choose_archs(space, config.num_archs, config.arch_seed, groundtruth)
    log = ResultsLog(out / "scores.jsonl")
    try:
        if log.writer:
            write_json(out / "config.json", _run_record(config, semantics))
        done = log.done()
        todo = [a for a in archs if a not in done]
        logging.info("correlation: %d architectures, %d already in %s, %d to score", len(archs),
                     len(archs) - len(todo), log.path, len(todo))
        if todo:
            score_into(log, space, todo, config, proxies, semantics, groundtruth)
        rows = log.rows()
    finally:
        log.close()

    summary = summarize(rows, groundtruth, list(proxies) + [p for p in FREE_PROXIES if p not in proxies], columns)
    summary.update(space=config.space, dataset=config.dataset, main_column=columns[-1], scored_now=len(todo),
                   seconds=round(time.perf_counter() - start, 2), peak_memory_bytes=peak_memory_bytes())
    if log.writer:
        write_json(out / "summary.json", summary)
        storage.write_text(out / "summary.md", format_table(summary) + "\n")
        plot_scatter(rows, groundtruth, summary, out / "scatter.png")
        write_scores_csv(out / "scores.csv", rows, groundtruth, proxies, columns)
    return summary


def check_benchmark_dataset(config) -> None:
    """The benchmark of config.space has ground truth for config.dataset (an InputError naming both otherwise)."""
    datasets = space_class(config.space).datasets
    if config.dataset not in datasets:
        raise InputError(f"config.dataset {config.dataset!r}: space {config.space!r}'s benchmark has ground truth for "
                         f"{', '.join(datasets)}")


def groundtruth_of(config) -> GroundTruth:
    """The benchmark table a (correlation-shaped) config names: config.groundtruth or the space's own."""
    options = {"task": config.task} if config.get("task") else {}
    return load_groundtruth(config.space, config.get("groundtruth"), config.get("data_dir"), **options)


def truth_columns(config, groundtruth: GroundTruth) -> tuple[str, ...]:
    """The accuracy columns compared: the space's own for config.dataset, else every column of the table."""
    return tuple(space_class(config.space).groundtruth_columns.get(config.dataset, groundtruth.columns))


def semantics_of(config, proxies: Sequence[str], space=None) -> dict[str, Any]:
    """The fields that define what a score means, as stored in every row and in config.json. `beta` is the one
    used: config.beta, or where None the space's default (`zico_jax.from_config.zico_bc_beta`)."""
    beta = zico_bc_beta(space, config)  # space None (no space at hand): config.beta, else 1
    return {"space": config.space, "space_options": space_options(config), "task": config.get("task"),
            "dataset": config.dataset,
            "data_source": config.data_source, "proxies": list(proxies), "num_batches": int(config.num_batches),
            "batch_size": int(config.batch_size), "beta": beta, "feature_map": config.feature_map,
            "seed": int(config.seed), "dtype": "float64" if config.x64 else "float32",
            "gradients": config.get("gradients", "per_batch"),
            "count_transposed_conv": bool(config.get("count_transposed_conv", False)),
            "deduplicate": bool(config.get("deduplicate", False))}


def check_resumable(output_dir: epath.Path, semantics: Mapping[str, Any]) -> None:
    """Raise if output_dir already holds scores computed with other semantics (an empty folder is always fine)."""
    output_dir = storage.as_path(output_dir)
    rows = read_rows(output_dir / "scores.jsonl")
    if not rows:
        return
    record_path = output_dir / "config.json"
    if record_path.exists():
        previous, origin = json.loads(record_path.read_text(encoding="utf-8")).get("semantics", {}), record_path
    else:
        previous, origin = rows[0], output_dir / "scores.jsonl"
    differences = [f"{k}: {previous.get(k, SEMANTIC_DEFAULTS.get(k))!r} there, {semantics[k]!r} now"
                   for k in SEMANTIC_FIELDS
                   if _jsonable(previous.get(k, SEMANTIC_DEFAULTS.get(k))) != _jsonable(semantics[k])]
    if differences:
        raise InputError(f"cannot resume into {output_dir}: its {len(rows)} scores were computed with other settings "
                         f"({'; '.join(differences)}; from {origin}). Use a new output_dir, or the same settings.")


def choose_archs(space, num_archs: int, arch_seed: int, groundtruth: GroundTruth | None = None) -> list[str]:
    """Canonical strings of the first `num_archs` (<= 0: all) of a seeded permutation of the space, or of the
    ground truth's architectures when it covers only part of the space (or the space cannot be enumerated)."""
    try:
        every = [str(g) for g in space.enumerate()]
    except NotImplementedError:
        every = None
    if groundtruth is not None and (every is None or len(groundtruth) < len(every)):
        every = list(dict.fromkeys(str(space.parse(a)) for a in groundtruth.archs()))
    if every is None:
        raise InputError(f"space {space.name!r} cannot be enumerated and has no ground truth to sample from")
    order = np.random.default_rng(arch_seed).permutation(len(every))
    count = len(every) if num_archs <= 0 else min(num_archs, len(every))
    return [every[i] for i in order[:count]]


def score_into(log: ResultsLog, space, todo, config, proxies, semantics, groundtruth: GroundTruth | None) -> None:
    """Score `todo` with the engine the config describes, appending one row per architecture to `log` (with its
    ground-truth index where `groundtruth` has it)."""
    engine = engine_from_config(space, config, proxies)
    row_semantics = {**semantics, "backend": engine.backend}
    with Progress(total=len(todo), desc=f"scoring {config.space}", log_every=config.get("log_every", 25)) as bar:
        for result in engine.score(todo):
            index = groundtruth.index(result.arch) if groundtruth is not None and result.arch in groundtruth else None
            log.append({"arch": result.arch, "index": index, **result.row(), **row_semantics})
            bar.update()


def summarize(rows: Sequence[Mapping[str, Any]], groundtruth: GroundTruth, proxies: Sequence[str],
              columns: Sequence[str]) -> dict[str, Any]:
    """Rank correlations of each proxy (a row field) with each ground-truth column, over the rows' archs.

    Each architecture counts once (its first row). Rows whose arch is not in the table, or whose score is missing
    or not finite, are left out of that statistic; `n` says how many pairs each used. Returns
    {"num_rows", "num_with_truth", "proxies", "columns", "correlations": {proxy: {column: {n, kendall_tau,
    spearman_rho, top10_precision}}}}; a statistic with fewer than 2 usable pairs is NaN.
    """
    unique = first_rows(rows)
    archs = [row["arch"] for row in unique]
    correlations: dict[str, dict[str, dict[str, float]]] = {}
    for proxy in proxies:
        scores = np.array([_as_float(row.get(proxy)) for row in unique], np.float64)
        correlations[proxy] = {}
        for column in columns:
            truth = _truth(groundtruth, archs, column)
            try:
                stats = rank_correlations(scores, truth)
            except ValueError:  # fewer than 2 finite pairs
                usable = int(np.sum(np.isfinite(scores) & np.isfinite(truth)))
                stats = {"n": usable, "kendall_tau": math.nan, "spearman_rho": math.nan, "top10_precision": math.nan}
            correlations[proxy][column] = stats
    return {"num_rows": len(unique), "num_with_truth": sum(a in groundtruth for a in archs), "proxies": list(proxies),
            "columns": list(columns), "correlations": correlations}


def write_scores_csv(path, rows: Sequence[Mapping[str, Any]], groundtruth: GroundTruth | None,
                     proxies: Sequence[str], columns: Sequence[str]) -> epath.Path:
    """scores.csv: one line per architecture (its first row, in file order) with the columns arch, index, every
    proxy, params, flops, layers_counted, seconds, then the ground-truth `columns` (from `groundtruth`, empty where
    it lacks the arch). Missing, null and NaN values are empty cells (`results.write_csv`)."""
    header = list(dict.fromkeys(["arch", "index", *proxies, "params", "flops", "layers_counted", "seconds"]))
    truth_columns = [c for c in columns if c not in header]
    table = []
    for row in first_rows(rows):
        line = {k: row.get(k) for k in header}
        if groundtruth is not None and row["arch"] in groundtruth:
            line.update({c: groundtruth.value(row["arch"], c) for c in truth_columns})
        table.append(line)
    return write_csv(path, table, header + truth_columns)


def format_table(summary: Mapping[str, Any]) -> str:
    """The summary as a Markdown table: one line per proxy and ground-truth column."""
    def number(v):
        return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"

    title = f"{summary.get('num_rows', '?')} architectures"
    if "space" in summary:
        title = f"{summary['space']} on {summary['dataset']}: {title}"
    lines = [f"**{title}**", "", "| proxy | ground truth | n | Kendall tau | Spearman rho | top-10% precision |",
             "|---|---|---:|---:|---:|---:|"]
    for proxy, by_column in summary["correlations"].items():
        for column, s in by_column.items():
            lines.append(f"| {proxy} | {column} | {s['n']} | {number(s['kendall_tau'])} | "
                         f"{number(s['spearman_rho'])} | {number(s['top10_precision'])} |")
    return "\n".join(lines)


def plot_scatter(rows, groundtruth: GroundTruth, summary: Mapping[str, Any], path) -> None:
    """One panel per proxy: score vs the main accuracy column, tau and rho in the title (PNG, Agg canvas)."""

    column, proxies = summary["main_column"], summary["proxies"]
    unique = first_rows(rows)
    truth = _truth(groundtruth, [row["arch"] for row in unique], column)
    ncols = min(len(proxies), 4)
    nrows = math.ceil(len(proxies) / ncols)
    fig = mpl_figure.Figure(figsize=(4 * ncols, 3.4 * nrows), layout="constrained")
    for i, proxy in enumerate(proxies):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        scores = np.array([_as_float(row.get(proxy)) for row in unique], np.float64)
        ax.scatter(scores, truth, s=6, alpha=0.5)
        finite = scores[np.isfinite(scores)]
        if finite.size and finite.min() > 0 and finite.max() > 10 * finite.min():  # counts spanning decades
            ax.set_xscale("log")
        s = summary["correlations"][proxy][column]
        ax.set_title(f"{proxy}: tau={_fmt(s['kendall_tau'])}, rho={_fmt(s['spearman_rho'])} (n={s['n']})",
                     fontsize=9)
        ax.set_xlabel(proxy)
        ax.set_ylabel(column)
    storage.save_figure(fig, path, dpi=110)


def first_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The first row of each arch, in file order (a duplicate can only repeat a deterministic score)."""
    first: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        first.setdefault(row["arch"], row)
    return list(first.values())


def _fmt(v) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"


def _as_float(v) -> float:
    return math.nan if v is None else float(v)


def _truth(groundtruth: GroundTruth, archs: Sequence[str], column: str) -> np.ndarray:
    return np.array([groundtruth.value(a, column) if a in groundtruth else math.nan for a in archs], np.float64)


def _jsonable(value):
    """JSON round trip, so that tuples and lists (and ConfigDicts and dicts) compare equal."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _run_record(config, semantics) -> dict[str, Any]:
    return {"config": config.to_dict(), "semantics": semantics, **run_environment()}
