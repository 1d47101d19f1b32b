"""The commands of `zico` (and of `python experiments/<script>.py`): each is a config module and ONE library call.

    COMMANDS["correlate"].run(config)    # == print(format_table(run_correlation(config)))

`zico_jax.cli` turns a command line into the command's config; this module says what each command does with it.
A command's report goes to stdout; scores, summaries and the resolved config go to its output folder.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from types import ModuleType
from typing import Any, Callable, Mapping

import numpy as np

from zico_jax import fetch, storage
from zico_jax.ablation import format_markdown, run_ablation
from zico_jax.bias import format_report, run_bias
from zico_jax.configs import ablate as ablate_config
from zico_jax.configs import bias as bias_config
from zico_jax.configs import correlation as correlation_config
from zico_jax.configs import data as data_config
from zico_jax.configs import export_layers as export_layers_config
from zico_jax.configs import score as score_config
from zico_jax.configs import search as search_config
from zico_jax.configs import train as train_config
from zico_jax.correlation import format_table, run_correlation
from zico_jax.errors import DataNotFoundError, InputError
from zico_jax.from_config import engine_from_config, space_from_config
from zico_jax.latency import export_layer_list
from zico_jax.proxies.registry import parse_proxies
from zico_jax.results import dumps
from zico_jax.runtime import git_commit, run_environment
from zico_jax.search import format_summary, run_search_from_config
from zico_jax.spaces.torch_import import load_torch_weights
from zico_jax.train import train_from_config
from zico_jax.version import __version__

__all__ = ["Command", "COMMANDS", "archs_of"]

# The scoring flags `zico score` and `zico correlate` documented before their configs (kept as aliases).
_SCORING_ALIASES = ("space", "proxies", "batch_size", "num_batches", "beta", "feature_map", "count_transposed_conv",
                    "gradients", "seed", "dataset", "data_source", "data_dir", "backend", "x64", "candidate_batch",
                    "task", "space_options")


@dataclasses.dataclass(frozen=True)
class Command:
    """A `zico` command: its config module (`get_config(preset)`, `PRESETS`), what it runs, and the short flags it
    keeps as aliases of config fields (`--num-archs 50` == `--config.num_archs=50`; dashes or underscores)."""

    name: str
    config_module: ModuleType
    run: Callable[[Any], Any]
    help: str
    aliases: tuple[str, ...] = ()
    repeated: Mapping[str, str] = dataclasses.field(default_factory=dict)  # `--arch A --arch B` -> config.archs
    positional: tuple[str, ...] = ()  # fields the positional arguments fill, in order
    jax_runtime: bool = True  # set JAX up first (float64, compilation cache, multi-host); not for file downloads
    logs_progress: bool = True  # absl INFO log lines (a long run's progress); short commands print only results

    @property
    def config_path(self) -> str:
        return str(pathlib.Path(self.config_module.__file__))


def archs_of(config) -> list[str]:
    """config.archs and the lines of config.archs_file (a missing file: DataNotFoundError)."""
    texts = [str(a) for a in (config.get("archs") or ())]
    if config.get("archs_file"):
        path = storage.as_path(config.archs_file)  # local or in a bucket
        if not path.is_file():
            raise DataNotFoundError(f"config.archs_file: {path} is not a file")
        texts += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts


def run_score(config) -> None:
    """Score config.archs (one line, or one JSON object, per architecture), with the engine every command uses."""
    space = space_from_config(config)
    texts = archs_of(config)
    if not texts:
        raise InputError("no architectures to score: give --arch ARCH (repeatable), config.archs or config.archs_file")
    genotypes = [space.parse(a) for a in texts]  # fail on a bad genotype before any compute
    if config.get("weights") and not pathlib.Path(config.weights).is_file():
        raise DataNotFoundError(f"config.weights: {config.weights} is not a file")
    engine = engine_from_config(space, config, parse_proxies(config.proxies))
    state_dict = dict(np.load(config.weights)) if config.get("weights") else None
    record = {"space": config.space, "num_batches": int(engine.xs.shape[0]), "batch_size": int(engine.xs.shape[1]),
              "beta": engine.options.beta, "seed": int(config.seed), "dtype": str(engine.xs.dtype),
              "gradients": config.gradients, "count_transposed_conv": bool(config.count_transposed_conv),
              "weights": config.get("weights") or "init", "version": __version__, "git_commit": git_commit()}
    if state_dict is None:
        results = engine.score(genotypes)  # streamed; with config.deduplicate, one measurement per class
    else:
        results = (engine.score_one(g, load_torch_weights(space, g, state_dict, engine.xs.dtype)) for g in genotypes)
    for result in results:
        if config.json:
            print(dumps({**result.row(), **record}), flush=True)
        else:
            scores = "  ".join(f"{k}={v:.4f}" for k, v in result.scores.items())
            print(f"{result.arch}  params={result.params}  {scores}", flush=True)


def run_export_layers(config) -> None:
    space = space_from_config(config)
    genotypes = [space.parse(t) for t in archs_of(config)]
    rng = np.random.default_rng(config.seed)
    genotypes += [space.sample(rng) for _ in range(config.sample)]
    if not genotypes:
        raise InputError("export-layers: no architectures; give --arch ARCH, config.archs_file or config.sample")
    if not config.get("output"):
        raise InputError("export-layers: config.output (--output) is required: the CSV to write")
    keys = export_layer_list(space, genotypes, config.output, config.get("resolution"))
    print(f"wrote {len(keys)} distinct layers of {len(genotypes)} networks to {config.output}; fill latency_ms (ms, "
          "batch 1) and load it with zico_jax.latency.load_layer_table")


def run_data(config) -> None:
    if config.action == "list":
        print(fetch.format_list(config.get("cache_dir")))
        return
    if config.action != "fetch" or not config.get("name"):
        raise InputError(f"zico data {config.action}: expected `zico data list` or `zico data fetch NAME`")
    try:
        path = fetch.fetch(config.name, config.get("cache_dir"), progressbar=sys.stderr.isatty())
    except fetch.TfdsDataset as message:  # not an error: the dataset is prepared by tfds, here is the command
        print(message)
        return
    print(fetch.instructions(fetch.get(config.name), path))


def _print_train(config) -> None:
    summary = train_from_config(config)
    summary.pop("config", None)
    print(json.dumps({**summary, "zico_jax": run_environment()["zico_jax"]}, indent=2, default=str))


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("score", score_config, run_score, "score architectures with ZiCo / ZiCo-BC (and any proxy)",
            aliases=(*_SCORING_ALIASES, "weights", "inputs", "cumulative", "json", "archs_file"),
            repeated={"arch": "archs"}, logs_progress=False),
    Command("correlate", correlation_config, lambda c: print(format_table(run_correlation(c))),
            "rank correlation of proxies with benchmark accuracy",
            aliases=(*_SCORING_ALIASES, "num_archs", "arch_seed", "groundtruth", "output_dir")),
    Command("ablate", ablate_config, lambda c: print(format_markdown(run_ablation(c))),
            "proxies x spaces x datasets x seeds: one table, one heat map",
            aliases=("cells", "seeds", "protocol", "space_options", "proxies", "num_archs", "batch_size",
                     "num_batches", "output_dir", "data_dir", "x64")),
    Command("bias", bias_config, lambda c: print(format_report(run_bias(c))),
            "ZiCo's depth / width bias and ZiCo-BC's beta sweep",
            aliases=("space", "space_options", "dataset", "num_archs", "beta", "seed", "output_dir", "data_dir")),
    Command("search", search_config, lambda c: print(format_summary(run_search_from_config(c))),
            "training-free architecture search under FLOPs / params / latency budgets (resumable)",
            aliases=("space", "space_options", "proxy", "mode", "iterations", "seed", "output_dir")),
    Command("train", train_config, _print_train, "train a found network (CIFAR / ImageNet recipes)",
            aliases=("space", "space_options", "genotype", "dataset", "data_source", "data_dir", "num_epochs",
                     "num_steps", "batch_size", "learning_rate", "seed", "output_dir")),
    Command("export-layers", export_layers_config, run_export_layers,
            "write the distinct layers of some networks as a CSV to measure on a device",
            aliases=("space", "space_options", "archs_file", "sample", "seed", "resolution", "output"),
            repeated={"arch": "archs"}, logs_progress=False),
    Command("data", data_config, run_data, "list or fetch the full official benchmark files",
            aliases=("cache_dir",), positional=("action", "name"), jax_runtime=False,
            logs_progress=False),
)}
