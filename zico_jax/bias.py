"""ZiCo's depth / width bias and what ZiCo-BC's beta does about it (`zico bias`, `experiments/bias.py`).

ZiCo sums one log-term per counted layer, so networks with more (cheap) layers score higher whatever their
accuracy; ZiCo-BC subtracts beta * P(g) with P(g) = sum_l log(H_l W_l / sqrt(C_l)) over the same layers.

Exact beta sweep from one scoring run. A run that records ZiCo and ZiCo-BC at one beta_0 > 0 gives the penalty of
every architecture exactly, P(g) = (zico(g) - zico_bc(g)) / beta_0 (both sum over the same counted layers), hence
ZiCo-BC at any beta: zico_bc_beta(g) = zico(g) - beta * P(g). No re-scoring per beta.

Bias with accuracy held fixed. For a structural descriptor d (depth, width) and a score s,
`stratified_tau(s, d, acc, bins)` splits the architectures into `bins` equal-count bins of ground-truth accuracy
and averages, weighted by bin size, the Kendall tau-b between s and d inside each bin (bins where s or d is
constant are left out). Positive: among networks of about the same accuracy, the proxy prefers larger d.

Descriptors (each space declares its own, `Space.descriptors`):
  nats_tss  depth = parametric (conv) layers on the cell's longest input-to-output path (skip and pooling edges
            count 0, `none` is no edge; 0 when the output is not connected). Width is fixed (C) in this space.
  nats_sss  width = mean of the five stage widths. Depth is fixed in this space.
  zennas_imagenet  depth = the official layer count (sum of sub-layers), width = mean block output width. No
            accuracy table exists for this space: the study holds FLOPs fixed instead (equal-count FLOPs bins),
            scores `num_archs` draws of `space.sample` (random walks of official mutations from the initial
            network), and has no beta sweep (which needs accuracy).

Example:
    >>> from zico_jax.configs.bias import get_config
    >>> config = get_config(); config.output_dir = "runs/bias"; config.num_archs = 200
    >>> report = run_bias(config)          # runs/bias/{scores.jsonl, bias.md, bias.csv, beta_sweep.csv, *.png}
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np
from etils import epath, epy

with epy.lazy_imports():  # loaded on first use (~0.3 s): a bare Figure draws with Agg and leaves pyplot's
    import matplotlib.figure as mpl_figure  # global state alone

from zico_jax import storage
from zico_jax.correlation import check_resumable, groundtruth_of, run_correlation, score_into, semantics_of
from zico_jax.errors import InputError
from zico_jax.from_config import space_from_config
from zico_jax.metrics import kendall_tau, spearman_rho, top_k_precision
from zico_jax.proxies.registry import parse_proxies
from zico_jax.results import ResultsLog, read_rows, write_csv, write_json
from zico_jax.runtime import run_environment
from zico_jax.sharding import is_writer
from zico_jax.spaces import space_class, space_names


def penalties(zico: np.ndarray, zico_bc: np.ndarray, beta0: float) -> np.ndarray:
    """P(g) = (zico - zico_bc) / beta_0: ZiCo-BC's penalty sum, exact given the run's beta_0."""
    if not beta0 > 0:
        raise InputError(f"beta {beta0!r}: the penalty is recovered from a run with beta > 0")
    return (np.asarray(zico, np.float64) - np.asarray(zico_bc, np.float64)) / beta0


def stratified_tau(scores, descriptor, held, bins: int = 5) -> float:
    """Bin-size-weighted mean over `bins` equal-count bins of `held` of Kendall tau-b(scores, descriptor)."""
    scores, descriptor, held = (np.asarray(a, np.float64) for a in (scores, descriptor, held))
    order = np.argsort(held, kind="stable")
    taus, weights = [], []
    for part in np.array_split(order, bins):
        if len(part) < 3:
            continue
        tau = kendall_tau(scores[part], descriptor[part])
        if np.isfinite(tau):
            taus.append(tau)
            weights.append(len(part))
    return float(np.average(taus, weights=weights)) if taus else float("nan")


def beta_sweep(archs: Sequence[str], zico, penalty, accuracy, betas: Sequence[float], depth=None,
               top_k: int = 10) -> list[dict[str, Any]]:
    """Per beta: Kendall / Spearman with accuracy, top-10% precision, the mean accuracy (and depth) of the top_k
    architectures by score, and the top-1 architecture."""
    zico, penalty, accuracy = (np.asarray(a, np.float64) for a in (zico, penalty, accuracy))
    rows = []
    for beta in betas:
        s = zico - beta * penalty
        top = np.argsort(-s, kind="stable")[:top_k]
        row = {"beta": float(beta), "kendall_tau": kendall_tau(s, accuracy), "spearman_rho": spearman_rho(s, accuracy),
               "top10pct_precision": top_k_precision(s, accuracy),
               f"top{top_k}_mean_accuracy": float(accuracy[top].mean()),
               "top1_arch": archs[top[0]], "top1_accuracy": float(accuracy[top[0]])}
        if depth is not None:
            row[f"top{top_k}_mean_depth"] = float(np.asarray(depth, np.float64)[top].mean())
        rows.append(row)
    return rows


def run_bias(config) -> dict[str, Any]:
    """Score (resumable scores.jsonl with zico and zico_bc at config.beta: the correlation run where the space has
    a ground truth, else seeded samples), then the bias table and, with accuracy, the beta sweep; writes
    bias.{md,csv,json}, beta_sweep.csv and the plots to config.output_dir."""
    declared = space_class(config.space)
    if not declared.descriptors:
        described = [name for name in space_names() if space_class(name).descriptors]
        raise InputError(f"config.space {config.space!r}: bias descriptors are defined for {', '.join(described)} "
                         "(the spaces that declare Space.descriptors)")
    if not {"zico", "zico_bc"} <= set(config.proxies.split(",")) or not (config.beta or 0) > 0:
        raise InputError("the bias study needs config.proxies to hold zico and zico_bc and config.beta > 0 "
                         f"(got {config.proxies!r}, beta {config.beta!r})")
    space = space_from_config(config)
    out = storage.as_path(config.output_dir)
    if declared.held_without_accuracy:
        rows, accuracy, column = _score_samples(config, space, out), None, None
        held_name = declared.held_without_accuracy
        held = np.array([r[held_name] for r in rows], np.float64)
    else:
        rows, accuracy, column = _score_with_groundtruth(config)
        keep = np.isfinite(accuracy)
        rows, accuracy, held_name = [r for r, k in zip(rows, keep) if k], accuracy[keep], "accuracy"
        held = accuracy
    archs = [r["arch"] for r in rows]
    zico = np.array([r["zico"] for r in rows], np.float64)
    penalty = penalties(zico, np.array([r["zico_bc"] for r in rows], np.float64), float(config.beta))
    descriptors = {name: np.array([fn(space, space.parse(a)) for a in archs], np.float64)
                   for name, fn in declared.descriptors.items()}

    table = []
    for beta in config.betas:
        s = zico - beta * penalty
        for name, d in descriptors.items():
            table.append({"proxy": "zico" if beta == 0 else "zico_bc", "beta": float(beta), "descriptor": name,
                          "tau_held": stratified_tau(s, d, held, config.bins), "tau_overall": kendall_tau(s, d),
                          "n": len(archs)})
    for name, d in descriptors.items():  # the reference: how the held quantity itself moves with the descriptor
        table.append({"proxy": held_name, "beta": None, "descriptor": name, "tau_held": float("nan"),
                      "tau_overall": kendall_tau(held, d), "n": len(archs)})
    sweep = [] if accuracy is None else beta_sweep(archs, zico, penalty, accuracy, config.betas,
                                                   descriptors.get("depth"), config.top_k)
    report = {"space": config.space, "held": held_name if column is None else f"accuracy ({column})",
              "n": len(archs), "beta_run": config.beta, "bins": config.bins, "bias": table, "beta_sweep": sweep}
    _write(out, report, descriptors, zico, penalty, held, config)
    return report


def _score_with_groundtruth(config):
    """(rows, accuracy per row, column) from the correlation run into config.output_dir."""
    summary = run_correlation(config)
    rows = read_rows(storage.as_path(config.output_dir) / "scores.jsonl")
    truth = groundtruth_of(config)
    column = summary["main_column"]
    accuracy = np.array([truth.value(r["arch"], column) if r["arch"] in truth else np.nan for r in rows], np.float64)
    return rows, accuracy, column


def _score_samples(config, space, out: epath.Path) -> list[dict[str, Any]]:
    """Scores of the distinct architectures among `num_archs` seeded `space.sample` draws (resumable)."""
    proxies = parse_proxies(config.proxies)
    semantics = semantics_of(config, proxies, space)
    check_resumable(out, semantics)
    if is_writer():
        write_json(out / "config.json", {"config": config.to_dict(), "semantics": semantics, **run_environment()})
    rng = np.random.default_rng(config.arch_seed)
    archs = list(dict.fromkeys(str(space.sample(rng)) for _ in range(config.num_archs)))
    log = ResultsLog(out / "scores.jsonl")
    try:
        done = log.done()
        todo = [a for a in archs if a not in done]
        if todo:
            score_into(log, space, todo, config, proxies, semantics, None)
        return [r for r in log.rows() if r["arch"] in set(archs)]
    finally:
        log.close()


def _write(out: epath.Path, report, descriptors, zico, penalty, held, config) -> None:
    if not is_writer():
        return
    write_csv(out / "bias.csv", report["bias"], list(report["bias"][0]))
    if report["beta_sweep"]:
        write_csv(out / "beta_sweep.csv", report["beta_sweep"], list(report["beta_sweep"][0]))
    write_json(out / "bias.json", report)
    storage.write_text(out / "bias.md", format_report(report) + "\n")
    _plot(out, descriptors, zico, penalty, held, report, config)
    logging.info("bias: wrote %s", out / "bias.md")


def _f(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else (
        f"{v:.4f}" if isinstance(v, float) else str(v))


def format_report(report: Mapping[str, Any]) -> str:
    """The two tables of a bias run as Markdown."""
    lines = [f"# ZiCo's bias on {report['space']} ({report['n']} architectures, {report['bins']} equal-count bins of "
             f"{report['held']})", "", f"| proxy | beta | descriptor | tau, {report['held']} held | tau overall |",
             "|---|---:|---|---:|---:|"]
    lines += [f"| {r['proxy']} | {_f(r['beta'])} | {r['descriptor']} | {_f(r['tau_held'])} | "
              f"{_f(r['tau_overall'])} |" for r in report["bias"]]
    sweep = report["beta_sweep"]
    if not sweep:
        return "\n".join(lines)
    keys = [k for k in sweep[0] if k not in ("beta", "top1_arch")]
    lines += ["", "| beta | " + " | ".join(keys) + " | top-1 architecture |", "|---:" * (len(keys) + 1) + "|---|"]
    lines += [f"| {_f(r['beta'])} | " + " | ".join(_f(r[k]) for k in keys) + f" | `{r['top1_arch']}` |" for r in sweep]
    return "\n".join(lines)


def _plot(out, descriptors, zico, penalty, held, report, config) -> None:
    betas = [b for b in (0.0, float(config.beta)) if b in config.betas] or [0.0]
    for name, d in descriptors.items():
        fig = mpl_figure.Figure(figsize=(4.5 * len(betas), 3.6))
        axes = fig.subplots(1, len(betas), squeeze=False)
        for ax, beta in zip(axes[0], betas):
            points = ax.scatter(d + np.random.default_rng(0).uniform(-0.15, 0.15, len(d)), zico - beta * penalty,
                                c=held, s=8, cmap="viridis")
            ax.set(xlabel=name, ylabel="ZiCo" if beta == 0 else f"ZiCo-BC (beta {beta:g})")
        fig.colorbar(points, ax=axes[0].tolist(), label=report["held"])
        storage.save_figure(fig, out / f"bias_{name}.png", dpi=120)
    sweep = report["beta_sweep"]
    if not sweep:
        return
    fig = mpl_figure.Figure(figsize=(5, 3.6))
    ax = fig.subplots()
    ax.plot([r["beta"] for r in sweep], [r["kendall_tau"] for r in sweep], "o-", label="Kendall tau")
    ax.plot([r["beta"] for r in sweep], [r["spearman_rho"] for r in sweep], "s-", label="Spearman rho")
    ax.set(xlabel="beta", ylabel="correlation with accuracy")
    ax.legend()
    storage.save_figure(fig, out / "beta_sweep.png", dpi=120, bbox_inches="tight")
