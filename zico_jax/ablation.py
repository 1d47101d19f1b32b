"""The ablation experiment: proxies x spaces x datasets (x tasks) x seeds in one run, one table, one heat map.

`run_ablation(config)` (config: `zico_jax/configs/ablate.py`) plans one correlation run per (cell, seed) and
runs each with `zico_jax.correlation.run_correlation` into `<output_dir>/<cell name>/seed_<k>` (so every run is
resumable on its own: a rerun scores only what is missing). Seed k draws both the architecture sample
(`arch_seed = k`) and the weight init / mini-batch draw (`seed = k`), as the NAS-Bench-Suite-Zero protocol asks
(`protocol = "suite_zero"`: 1,000 architectures, seeds 0..9). It then writes:

  ablation.csv, ablation.md  one row per (cell, proxy, ground-truth column): seeds, n (pairs per seed, the
                             smallest over seeds), and the mean and the sample standard deviation (ddof=1) over
                             seeds of Kendall tau-b, Spearman rho and top-10% precision (share of the true top 10%
                             among the proxy's top 10%). A seed whose statistic is NaN (e.g. a constant proxy) is
                             left out of that mean/std; the std of a single value is NaN. NaN is an empty CSV field
                             and "n/a" in Markdown.
  heatmap.png                rows = proxies, columns = cells, value = mean Kendall tau on the cell's main
                             (last) ground-truth column, annotated.
  scatter_<cell name>.png    score vs accuracy, one panel per proxy: the first seed's correlation scatter.
  run.json                   the config, the planned runs, library versions (jax, flax, optax, numpy, scipy,
                             python) and the devices (`jax.devices()`).

Cells: "space:dataset" (e.g. "nats_tss:cifar10", "nasbench101:cifar10"); TransNAS-Bench-101 takes its task:
"transnas101_micro:class_scene" (CIFAR-10 images) or "transnas101_micro:cifar10:class_scene". A dict cell
{"space", "dataset", "task", "space_options", "proxies", "groundtruth", "label"} may also set its own space
options (merged over config.space_options), proxies, table and label (needed when two cells share space, dataset
and task). Cell names (folders, file names) are the label with ":" replaced by "-".

Example:
    >>> from zico_jax.configs.ablate import get_config
    >>> config = get_config(); config.cells = ["nats_tss:cifar10", "nasbench101:cifar10"]
    >>> config.output_dir = "runs/ablation"; rows = run_ablation(config)   # then see runs/ablation/ablation.md
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Mapping, Sequence

import numpy as np
from absl import logging
from etils import epy

with epy.lazy_imports():  # loaded on first use (~0.3 s): a bare Figure draws with Agg and leaves pyplot's
    import matplotlib.figure as mpl_figure  # global state alone

from zico_jax import correlation, data, storage
from zico_jax.configs.correlation import get_config as correlation_defaults
from zico_jax.errors import InputError, ZicoError
from zico_jax.results import write_csv, write_json
from zico_jax.runtime import run_environment
from zico_jax.spaces import space_class, space_names

CELL_KEYS = ("space", "dataset", "task", "space_options", "proxies", "groundtruth", "label")
STATISTICS = ("kendall_tau", "spearman_rho", "top10_precision")
CSV_FIELDS = ("cell", "space", "dataset", "task", "proxy", "truth_column", "seeds", "n",
              *(f"{s}_{m}" for s in STATISTICS for m in ("mean", "std")))
PROTOCOLS = {"default": None, "suite_zero": (1000, tuple(range(10)))}  # num_archs, seeds
# Fields of the ablation config that are not copied into each correlation config as they are.
OWN_FIELDS = ("cells", "seeds", "protocol", "space", "space_options", "dataset", "task", "proxies", "num_archs",
              "arch_seed", "seed", "output_dir", "groundtruth")


@dataclasses.dataclass(frozen=True)
class Cell:
    space: str
    dataset: str
    task: str | None = None
    space_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    proxies: str | None = None
    groundtruth: str | None = None
    given_label: str | None = None  # a dict cell's "label" (e.g. two sizes of one space)

    @property
    def label(self) -> str:
        return self.given_label or ":".join(p for p in (self.space, self.dataset, self.task) if p)

    @property
    def name(self) -> str:
        return self.label.replace(":", "-")


def parse_cell(entry) -> Cell:
    """A cell from "space:dataset", "space:task" / "space:dataset:task" (TransNAS-Bench-101) or a dict; a
    ValueError names the bad entry."""
    def bad(why):
        return InputError(f"ablation cell {entry!r}: {why}; expected 'space:dataset' (e.g. 'nats_tss:cifar10'), "
                          "'space:task' or 'space:dataset:task' for transnas101_micro/macro, or a dict with keys "
                          f"{', '.join(CELL_KEYS)}")

    if isinstance(entry, str):
        parts = entry.strip().split(":")
        has_tasks = parts[0] in space_names() and bool(space_class(parts[0]).benchmark_tasks)
        if has_tasks and len(parts) == 2:
            fields = dict(space=parts[0], dataset="cifar10", task=parts[1])
        elif len(parts) == 3 or (len(parts) == 2 and not has_tasks):
            fields = dict(zip(("space", "dataset", "task"), parts))
        else:
            raise bad("wrong number of ':'-separated parts")
    elif isinstance(entry, Mapping) or hasattr(entry, "to_dict"):
        fields = dict(entry.to_dict() if hasattr(entry, "to_dict") else entry)
        if set(fields) - set(CELL_KEYS) or "space" not in fields:
            raise bad(f"unknown keys {sorted(set(fields) - set(CELL_KEYS))} or no 'space'")
        fields.setdefault("dataset", "cifar10")
        fields["space_options"] = dict(fields.get("space_options") or {})
        fields["given_label"] = fields.pop("label", None)
        if fields["given_label"] is not None and not str(fields["given_label"]).replace(":", "").replace(
                "-", "").replace("_", "").replace(".", "").isalnum():
            raise bad("a label may hold only letters, digits and : - _ .")
    else:
        raise bad(f"a {type(entry).__name__}")
    cell = Cell(**fields)
    if cell.space not in space_names():
        raise bad(f"unknown space {cell.space!r} (registered: {', '.join(space_names())})")
    declared = space_class(cell.space)
    if cell.dataset not in declared.datasets:
        raise bad(f"dataset {cell.dataset!r} for space {cell.space!r}: expected one of {', '.join(declared.datasets)}")
    task_spaces = [name for name in space_names() if space_class(name).benchmark_tasks]
    if bool(declared.benchmark_tasks) != bool(cell.task):
        raise bad(f"a task is required for {', '.join(task_spaces)} and only for them")
    if cell.task and cell.task not in declared.benchmark_tasks:
        raise bad(f"unknown task {cell.task!r} (expected one of {', '.join(declared.benchmark_tasks)})")
    return cell


def parse_cells(cells) -> list[Cell]:
    """config.cells (a list, or a comma-separated string) as Cells; duplicates are an error."""
    entries = [c for c in cells.split(",") if c.strip()] if isinstance(cells, str) else list(cells or [])
    if not entries:
        raise InputError("config.cells is empty: name at least one cell, e.g. 'nats_tss:cifar10'")
    parsed = [parse_cell(e) for e in entries]
    names = [c.name for c in parsed]
    if len(set(names)) != len(names):
        raise InputError(f"config.cells names a cell twice: {names}")
    return parsed


def protocol_of(config) -> tuple[int, list[int]]:
    """(num_archs, seeds) of the config: its own fields, or the protocol's (suite_zero: 1000, 0..9)."""
    protocol = config.get("protocol") or "default"
    if protocol not in PROTOCOLS:
        raise InputError(f"config.protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if PROTOCOLS[protocol] is not None:
        num_archs, seeds = PROTOCOLS[protocol]
        return num_archs, list(seeds)
    seeds = config.seeds
    seeds = [int(s) for s in (seeds.split(",") if isinstance(seeds, str) else seeds)]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"config.seeds {config.seeds!r}: expected distinct integers")
    return int(config.num_archs), seeds


def plan(config) -> list[tuple[Cell, int, Any]]:
    """Every (cell, seed, correlation config) the ablation runs, in order; runs nothing."""

    if not config.get("output_dir"):
        raise InputError("config.output_dir is required: the folder for the runs, tables and plots")
    cells, (num_archs, seeds) = parse_cells(config.cells), protocol_of(config)
    shared = {k: config[k] for k in correlation_defaults() if k in config and k not in OWN_FIELDS}
    runs = []
    for cell in cells:
        for seed in seeds:
            run = correlation_defaults()
            options = {**_dict(config.get("space_options")), **_dict(cell.space_options)}
            run.update(shared, space=cell.space, dataset=cell.dataset, task=cell.task, num_archs=num_archs,
                       proxies=cell.proxies or config.proxies, arch_seed=seed, seed=seed, groundtruth=cell.groundtruth,
                       output_dir=os.fspath(storage.as_path(config.output_dir) / cell.name / f"seed_{seed}"))
            run.space_options = options
            runs.append((cell, seed, run))
    return runs


def run_ablation(config) -> list[dict[str, Any]]:
    """Run (or resume) every planned correlation run, then write the table, plots and run.json; returns the rows."""
    start = time.perf_counter()
    runs = plan(config)
    preflight(runs)
    out = storage.as_path(config.output_dir)
    write_json(out / "run.json", _run_record(config, runs))  # before the work: says what is being computed
    summaries: dict[str, list[dict[str, Any]]] = {}
    cells: dict[str, Cell] = {}
    for i, (cell, seed, run) in enumerate(runs):
        logging.info("ablation: %s seed %d (run %d of %d, %d done)", cell.label, seed, i + 1, len(runs), i)
        summary = correlation.run_correlation(run)
        summaries.setdefault(cell.name, []).append({**summary, "seed": seed})
        cells[cell.name] = cell
        if len(summaries[cell.name]) == 1:
            storage.copy(storage.as_path(run.output_dir) / "scatter.png", out / f"scatter_{cell.name}.png")
    rows = [row for name, cell in cells.items() for row in aggregate(cell, summaries[name])]
    write_csv(out / "ablation.csv", rows, CSV_FIELDS)
    storage.write_text(out / "ablation.md", format_markdown(rows) + "\n")
    plot_heatmap(rows, out / "heatmap.png")
    write_json(out / "run.json", {**_run_record(config, runs), "seconds": round(time.perf_counter() - start, 2)})
    logging.info("ablation: %d runs done, table in %s", len(runs), out / "ablation.md")
    return rows


def preflight(runs) -> None:
    """Load every cell's benchmark table and one image of every dataset before any scoring, so that a missing
    file or an unavailable dataset ends the run at once (naming the cell), not after hours of earlier cells."""
    for cell, _, run in {c.name: (c, s, r) for c, s, r in runs}.values():
        try:
            correlation.groundtruth_of(run)
            data.load_images(run.dataset, "train", run.data_source, run.get("data_dir"), limit=1)
        except ZicoError as err:
            message = err.args[0] if err.args else err
            raise type(err)(f"ablation cell {cell.label!r}: {message}") from err


def aggregate(cell: Cell, summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (proxy, ground-truth column) of the cell: mean and sample std (ddof=1) over the seeds'
    summaries, NaN seeds left out; `main` marks the cell's main (last) column."""
    first = summaries[0]
    rows = []
    for proxy in first["proxies"]:
        for column in first["columns"]:
            per_seed = [s["correlations"][proxy][column] for s in summaries]
            row = {"cell": cell.label, "space": cell.space, "dataset": cell.dataset, "task": cell.task or "",
                   "proxy": proxy, "truth_column": column, "seeds": len(summaries),
                   "n": min(int(s["n"]) for s in per_seed), "main": column == first["main_column"]}
            for stat in STATISTICS:
                values = np.array([_float(s[stat]) for s in per_seed], np.float64)
                values = values[np.isfinite(values)]
                row[f"{stat}_mean"] = float(values.mean()) if values.size else math.nan
                row[f"{stat}_std"] = float(values.std(ddof=1)) if values.size > 1 else math.nan
            rows.append(row)
    return rows


def format_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a Markdown table: mean ± sample std over seeds."""
    def cell(row, stat):
        mean, std = row[f"{stat}_mean"], row[f"{stat}_std"]
        text = "n/a" if not math.isfinite(mean) else f"{mean:.4f}"
        return text + (f" ± {std:.4f}" if math.isfinite(std) else "")

    lines = ["| cell | proxy | ground truth | seeds | n | Kendall tau | Spearman rho | top-10% precision |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['cell']} | {r['proxy']} | {r['truth_column']} | {r['seeds']} | {r['n']} | "
              f"{cell(r, 'kendall_tau')} | {cell(r, 'spearman_rho')} | {cell(r, 'top10_precision')} |" for r in rows]
    return "\n".join(lines)


def heatmap_matrix(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], np.ndarray]:
    """(proxies, cells, mean Kendall tau on each cell's main column; NaN where a proxy was not run there)."""
    main = [r for r in rows if r["main"]]
    proxies = list(dict.fromkeys(r["proxy"] for r in main))
    cells = list(dict.fromkeys(r["cell"] for r in main))
    matrix = np.full((len(proxies), len(cells)), math.nan)
    for r in main:
        matrix[proxies.index(r["proxy"]), cells.index(r["cell"])] = r["kendall_tau_mean"]
    return proxies, cells, matrix


def plot_heatmap(rows: Sequence[Mapping[str, Any]], path) -> None:

    proxies, cells, matrix = heatmap_matrix(rows)
    fig = mpl_figure.Figure(figsize=(2 + 1.6 * len(cells), 1.2 + 0.45 * len(proxies)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, "n/a" if not math.isfinite(value) else f"{value:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(cells)), cells, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(proxies)), proxies, fontsize=8)
    ax.set_title("Kendall tau (mean over seeds, main ground-truth column)", fontsize=9)
    fig.colorbar(image, ax=ax)
    storage.save_figure(fig, path, dpi=110)


def _run_record(config, runs) -> dict[str, Any]:

    return {"config": config.to_dict(), "runs": [{"cell": c.label, "seed": s, "output_dir": r.output_dir,
                                                  "num_archs": r.num_archs} for c, s, r in runs],
            **run_environment()}


def _dict(options) -> dict[str, Any]:
    return dict(options.to_dict() if hasattr(options, "to_dict") else (options or {}))


def _float(value) -> float:
    return math.nan if value is None else float(value)
