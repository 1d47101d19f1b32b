"""`run_search(space, scorer, config)`: the search loop, with budgets, batched scoring, results and checkpoints.

Each round:
  1. propose k = min(children_per_round, iterations left) children (`Evolution` or `RandomSearch`, by `mode`);
  2. check each against the budgets (`zico_jax.search.budgets`); a rejected child still counts as an iteration
     (as in the official loop's `continue`);
  3. score the survivors in ONE `scorer.score(archs)` call (the compile-once `Engine`, or `AnalyticScorer` for
     #params / FLOPs); an architecture scored before is taken from the results (scores are a function of
     architecture, seed and data, so this only saves time);
  4. accept them (append, remove the lowest while over population_size), iteration += k, append one row per
     scored child to `<output_dir>/search.jsonl` (iteration, arch, every score, params, flops, latency) and save a
     checkpoint when `checkpoint_every` iterations have passed.
Modes: "evolution" (the official EA), "random" (baseline), "pareto" (the EA on the score, plus an archive of the
non-dominated (score, latency) children over the whole search: the Pareto front; needs a latency table).
Resuming (`config.resume`, default True): the latest orbax checkpoint in `<output_dir>/checkpoints` is restored and
the search continues exactly where it was (same proposals, same final population as an uninterrupted run); rows of
rounds redone after the checkpoint are not written twice. A preemption notice (SIGTERM, through orbax and JAX's
preemption sync: `SearchCheckpointer.reached_preemption`) makes every host save the same round and stop with
`SearchPreempted` (exit status 143).
`output_dir` may be a bucket (`gs://...`): every file here is written through `zico_jax.storage`.
At the end (process 0): `best.json` and `summary.md` (best network; with a ground truth, its accuracy and latency
against the best network in the ground truth meeting the same budgets), and in pareto mode `pareto.csv`.

Example:
    >>> summary = run_search(space, Engine(space, xs, ys, ("zico",)), config, latency_table=table)
    >>> summary["best"]["arch"]
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from typing import Any, Iterable, Optional

import numpy as np
from absl import logging
from etils import epath

from zico_jax import storage
from zico_jax.errors import InputError
from zico_jax.from_config import zico_bc_beta
from zico_jax.results import Progress, ResultsLog, dumps, write_csv
from zico_jax.runtime import run_environment
from zico_jax.search import pareto
from zico_jax.search.budgets import budgets_from_config, latency_of
from zico_jax.search.checkpoint import SearchCheckpointer, SearchPreempted
from zico_jax.search.evolution import Evolution
from zico_jax.search.random_search import RandomSearch
from zico_jax.sharding import is_writer
from zico_jax.spaces import HasInitialGenotype

MODES = ("evolution", "random", "pareto")
# config fields that define a search's trajectory: resuming with another value is an error
TRAJECTORY_FIELDS = ("space", "mode", "proxy", "beta", "seed", "population_size", "children_per_round", "budgets",
                     "latency_table")


@dataclasses.dataclass(frozen=True)
class AnalyticScore:
    arch: str
    scores: dict
    params: int
    flops: int


class AnalyticScorer:
    """Scores without a network: {"params", "flops"} of `space` (the free baselines), same interface as Engine."""

    def __init__(self, space):
        self.space = space

    def score(self, genotypes: Iterable) -> Iterable[AnalyticScore]:
        for g in genotypes:
            g = self.space.parse(g) if isinstance(g, str) else g
            params, flops = int(self.space.params(g)), int(self.space.flops(g))
            yield AnalyticScore(str(g), {"params": float(params), "flops": float(flops)}, params, flops)


def make_search(space, mode: str, population_size: int, initial: Optional[str]):
    if mode not in MODES:
        raise InputError(f"unknown search mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == "random":
        return RandomSearch(space, population_size)
    return Evolution(space, initial, population_size)


def initial_genotype(space, seed: int) -> str:
    """The space's official initial network (`space.initial_genotype()`), else a random sample drawn with seed."""
    if isinstance(space, HasInitialGenotype):
        return str(space.initial_genotype())
    return str(space.sample(np.random.default_rng([seed, 0x1A17])))


def _budget_limits(config) -> dict[str, Any]:
    budgets = config.get("budgets") or {}
    return dict(budgets.to_dict() if hasattr(budgets, "to_dict") else budgets)


def _trajectory(config, space) -> dict[str, Any]:
    budgets = _budget_limits(config)
    beta = zico_bc_beta(space, config) if config.proxy == "zico_bc" else None
    return {"space": getattr(space, "name", type(space).__name__), "mode": config.mode, "proxy": config.proxy,
            "beta": beta, "seed": int(config.seed), "population_size": int(config.population_size),
            "children_per_round": int(config.children_per_round), "budgets": budgets,
            "latency_table": config.get("latency_table")}


def run_search(space, scorer, config, *, output_dir=None, latency_table=None, groundtruth=None,
               truth_column: Optional[str] = None) -> dict[str, Any]:
    """Run (or resume) a search; returns the summary also written to best.json. See the module docstring."""
    start = time.perf_counter()
    mode, proxy = config.mode, config.proxy
    if mode == "pareto" and latency_table is None:
        raise InputError("mode 'pareto' needs a latency table (config.latency_table)")
    if config.iterations < 0 or config.children_per_round < 1:
        raise InputError(f"iterations must be >= 0 and children_per_round >= 1, got {config.iterations} and "
                         f"{config.children_per_round}")
    budgets = budgets_from_config(space, _budget_limits(config), latency_table)
    latency = latency_of(space, latency_table) if latency_table is not None else None
    initial = initial_genotype(space, config.seed) if mode != "random" else None
    search = make_search(space, mode, config.population_size, initial)
    if not str(output_dir or config.get("output_dir") or ""):
        raise InputError("config.output_dir is required: the folder for search.jsonl, checkpoints and best.json")
    out = storage.as_path(output_dir or config.get("output_dir"))
    writer = is_writer()
    trajectory = _trajectory(config, space)
    _check_resumable(out, trajectory, config.get("resume", True))
    if writer:
        storage.write_text(out / "search_config.json", dumps(trajectory, indent=1, default=str) + "\n")
        # the whole config and the environment of the latest (re)start; search_config.json is what resuming checks
        run = {"config": config.to_dict() if hasattr(config, "to_dict") else dict(config), **run_environment()}
        storage.write_text(out / "run.json", dumps(run, indent=1, default=str) + "\n")
    ckpt = SearchCheckpointer(out / "checkpoints", config.checkpoint_every)
    state = ckpt.restore() if config.get("resume", True) else None
    if state is None:
        state = search.init(config.seed)
    else:
        logging.info("search: resumed at iteration %d from %s", state.iteration, ckpt.directory)
    log = ResultsLog(out / "search.jsonl")
    # a logged NaN (an unmeasured latency, a failed score) is null in the file: NaN again in memory
    cache = {row["arch"]: {k: (math.nan if v is None else v) for k, v in row.items()} for row in log.rows()}
    logged_through = max((row.get("iteration", -1) for row in log.rows()), default=-1)
    try:
        left = max(config.iterations - state.iteration, 0)
        with Progress(total=left, desc=f"search {mode}", log_every=config.get("log_every", 1000)) as bar:
            for round_index in itertools.count():
                if state.iteration >= config.iterations:
                    break
                k = min(config.children_per_round, config.iterations - state.iteration)
                first = state.iteration
                children = search.propose(state, k)
                survivors = []
                for j, child in enumerate(children):
                    if budgets.check(space.parse(child)) is not None:
                        state.rejected += 1
                    else:
                        survivors.append((first + j, child))
                todo = list(dict.fromkeys(a for _, a in survivors if a not in cache))
                if todo:
                    for arch, result in zip(todo, scorer.score(todo)):
                        cache[arch] = {**dict(result.scores), "params": int(result.params),
                                       "flops": int(result.flops)}
                rows = []
                for iteration, arch in survivors:
                    row = {"iteration": iteration, "arch": arch,
                           **{k_: v for k_, v in cache[arch].items() if k_ not in ("iteration", "arch")}}
                    if latency is not None and "latency" not in row:
                        row["latency"] = latency(space.parse(arch))
                    if proxy not in row:
                        raise InputError(f"the scorer gave no {proxy!r} score (it gave {', '.join(cache[arch])})")
                    rows.append(row)
                scores = [_finite(row[proxy]) for row in rows]
                search.accept(state, [row["arch"] for row in rows], scores)
                if mode == "pareto":
                    state.front = pareto.update_front(state.front,
                                                      [[r["arch"], s, r["latency"]] for r, s in zip(rows, scores)])
                state.iteration += k
                for row in rows:
                    if row["iteration"] > logged_through:
                        log.append(row)
                ckpt.maybe_save(state)
                bar.update(k)
                if ckpt.reached_preemption(round_index):
                    ckpt.save(state)
                    logging.warning("search: preempted; saved iteration %d, stopping", state.iteration)
                    raise SearchPreempted(state.iteration)
        ckpt.save(state)
    finally:
        log.close()
        ckpt.close()
    summary = summarize(state, config, space, budgets, latency, cache, groundtruth, truth_column)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    if writer:
        write_outputs(out, summary, state, cache, mode)
    return summary


def _finite(score) -> float:
    """NaN scores (a failed candidate) rank last: -inf (the official code uses -9999)."""
    score = math.nan if score is None else float(score)
    return -math.inf if math.isnan(score) else score


def _check_resumable(out: epath.Path, trajectory: dict, resume: bool) -> None:
    record = out / "search_config.json"
    has_state = (out / "checkpoints").exists() and any((out / "checkpoints").iterdir())
    if not resume and has_state:
        raise InputError(f"{out} already holds a search (checkpoints/); set resume=True or use a new output_dir")
    if resume and record.exists():
        previous = json.loads(record.read_text(encoding="utf-8"))
        diff = [f"{k}: {previous.get(k)!r} there, {json.loads(json.dumps(trajectory[k], default=str))!r} now"
                for k in TRAJECTORY_FIELDS if previous.get(k) != json.loads(json.dumps(trajectory[k], default=str))]
        if diff and has_state:
            raise InputError(f"cannot resume the search in {out}: {'; '.join(diff)}. Use a new output_dir.")


def _member(arch: str, cache: dict, latency, space) -> dict[str, Any]:
    row = {"arch": arch, **{k: v for k, v in cache.get(arch, {}).items() if k not in ("iteration", "arch")}}
    if latency is not None and "latency" not in row:
        row["latency"] = latency(space.parse(arch))
    return row


def summarize(state, config, space, budgets, latency, cache, groundtruth=None, truth_column=None) -> dict[str, Any]:
    summary = {"mode": config.mode, "proxy": config.proxy, "iterations": state.iteration, "scored": state.scored,
               "rejected": state.rejected, "population": len(state.population), "budgets": budgets.limits()}
    if state.population:
        arch, score = state.best()
        summary["best"] = {**_member(arch, cache, latency, space), "score": score}
    if config.mode == "pareto":
        summary["pareto"] = [{**_member(a, cache, latency, space), "score": s, "latency": lat}
                             for a, s, lat in sorted(state.front, key=lambda r: r[2])]
    if groundtruth is not None and truth_column and "best" in summary:
        summary["groundtruth"] = compare_with_groundtruth(space, budgets, groundtruth, truth_column,
                                                          summary["best"]["arch"], latency)
    return summary


def compare_with_groundtruth(space, budgets, groundtruth, column: str, found: str, latency=None) -> dict[str, Any]:
    """The found network's ground-truth `column` (and latency) against the best network of the ground truth that
    meets the same budgets; `rank` = 1 + how many budget-meeting networks are better than the found one."""
    meeting = [a for a in groundtruth.archs() if budgets.check(space.parse(a)) is None]
    if not meeting:
        raise InputError(f"no network of the ground truth meets the budgets {budgets}")
    values = groundtruth.values(meeting, column)
    best_i = max(range(len(meeting)), key=lambda i: values[i])
    found_value = groundtruth.value(found, column) if found in groundtruth else math.nan

    def entry(arch, value):
        e = {"arch": arch, column: float(value)}
        if latency is not None:
            e["latency"] = latency(space.parse(arch))
        return e

    return {"column": column, "found": entry(found, found_value), "best_meeting_budget": entry(meeting[best_i],
            values[best_i]), "num_meeting_budget": len(meeting),
            "rank": 1 + int(sum(v > found_value for v in values)) if not math.isnan(found_value) else None}


def write_outputs(out: epath.Path, summary: dict, state, cache: dict, mode: str) -> None:
    storage.write_text(out / "best.json", dumps(summary, indent=1, default=float) + "\n")
    storage.write_text(out / "summary.md", format_summary(summary) + "\n")
    if mode == "pareto":
        write_csv(out / "pareto.csv", summary["pareto"], ["arch", "score", "latency", "params", "flops"])


def format_summary(summary: dict) -> str:
    lines = [f"# Search ({summary['mode']}, proxy {summary['proxy']})", "",
             f"- iterations: {summary['iterations']} (scored {summary['scored']}, rejected by budgets "
             f"{summary['rejected']})",
             f"- budgets: {', '.join(f'{k} <= {v:g}' for k, v in summary['budgets'].items()) or 'none'}"]
    best = summary.get("best")
    if best:
        lines.append(f"- best: `{best['arch']}` score {best['score']:.6g}, params {best.get('params')}, "
                     f"flops {best.get('flops')}"
                     + (f", latency {best['latency']:.4g} ms" if "latency" in best else ""))
    truth = summary.get("groundtruth")
    if truth:
        col = truth["column"]
        lines += ["", f"| network | {col} | latency (ms) |", "|---|---|---|"]
        for name, key in (("found", "found"), ("best meeting the budget", "best_meeting_budget")):
            e = truth[key]
            lines.append(f"| {name} `{e['arch']}` | {e[col]:.2f} | {e.get('latency', math.nan):.4g} |")
        lines.append(f"\nrank of the found network among the {truth['num_meeting_budget']} meeting the budget: "
                     f"{truth['rank']}")
    if summary.get("pareto"):
        lines += ["", f"Pareto front: {len(summary['pareto'])} networks (pareto.csv)"]
    return "\n".join(lines)
