"""What every scoring command builds from its config, in one place: the space, the mini-batches, the engine.

    space = space_from_config(config)                 # the registered space with the benchmark's options
    engine = engine_from_config(space, config, ("zico", "zico_bc"))
    for result in engine.score(archs): ...

`zico score`, `zico correlate`, `zico ablate`, `zico bias` and `zico search` all go through these functions, so a
space's input size, task inputs and targets, ZiCo-BC's beta and the data are the same whichever command scores
an architecture. The config fields read are the scoring fields of `zico_jax.configs.scoring` (and `inputs`, an
.npz of given images, where a config has it).
"""

from __future__ import annotations

import pathlib
from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np

from zico_jax import data, train_data
from zico_jax.engine import Engine
from zico_jax.errors import DataNotFoundError, InputError
from zico_jax.proxies.registry import ProxyOptions
from zico_jax.spaces import Space, get_space, space_class

__all__ = ["space_options", "space_from_config", "zico_bc_beta", "proxy_options", "batches_from_config",
           "engine_from_config"]


def _plain(options) -> dict[str, Any]:
    return dict(options.to_dict() if hasattr(options, "to_dict") else (options or {}))


def space_options(config) -> dict[str, Any]:
    """The space's constructor options: what the benchmark fixes for config.dataset (e.g. NAS-Bench-201's head
    and image size), under config.space_options, and config.task where the space has tasks."""
    declared, task = space_class(config.space), config.get("task")
    if task and not declared.benchmark_tasks:
        raise InputError(f"config.task {task!r}: space {config.space!r} has no tasks")
    fixed = declared.datasets.get(config.get("dataset")) or {}
    return {**fixed, **_plain(config.get("space_options")), **({"task": task} if task else {})}


def space_from_config(config) -> Space:
    return get_space(config.space, **space_options(config))


def zico_bc_beta(space: Space | None, config) -> float:
    """ZiCo-BC's beta: `config.beta` where set, else the space's `default_beta` (1 for classification and
    detection, 2 for segmentation); with no space at hand, 1."""
    beta = config.get("beta")
    return float(beta if beta is not None else (space.default_beta if space is not None else 1.0))


def proxy_options(space: Space, config) -> ProxyOptions:
    return ProxyOptions(zico_bc_beta(space, config), config.get("feature_map", "output"),
                        bool(config.get("count_transposed_conv", False)))


def batches_from_config(space: Space, config) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The mini-batches (N, B, H, W, C) and targets the engine scores on, in the config's precision.

    config.inputs (an .npz of given images, cut into num_batches in order), else num_batches x batch_size images
    of config.dataset drawn with config.seed (imagenet2012: the official search's first batches of the training
    stream). A benchmark built for this very dataset (NAS-Bench-201's skeleton) must see as many classes and the
    same image size as its networks have; other spaces get the images resized to their input. Then the space's
    task hooks make its inputs and targets (`space.inputs`, `space.targets`)."""
    if config.get("inputs"):
        if not pathlib.Path(config.inputs).is_file():
            raise DataNotFoundError(f"config.inputs: {config.inputs} is not a file")
        xs, ys = data.load_inputs_npz(config.inputs, config.num_batches)
    elif config.dataset == "imagenet2012":  # not held in memory: the official search's first batches of the stream
        xs, ys = train_data.imagenet_batches(config, int(space.input_shape(1)[1]))
    else:
        x, y = data.load_images(config.dataset, "train", config.data_source, config.get("data_dir"))
        xs, ys = data.make_batches(x, y, config.num_batches, config.batch_size, config.seed)
        _check_benchmark_dataset(space, config.dataset, xs, ys)
    xs = data.resize_batches(xs, tuple(space.input_shape(1)[1:3]))
    xs = space.inputs(xs)
    ys = space.targets(xs, ys)
    dtype = jnp.float64 if config.get("x64") else jnp.float32
    return jnp.asarray(xs, dtype), jnp.asarray(ys)


def _check_benchmark_dataset(space: Space, dataset: str, xs: np.ndarray, ys: np.ndarray) -> None:
    if not type(space).datasets.get(dataset):  # the benchmark fixes nothing for this dataset
        return
    num_classes, image_size = getattr(space, "num_classes", None), getattr(space, "image_size", None)
    if num_classes is not None and int(ys.max()) >= num_classes:
        raise InputError(f"labels reach {int(ys.max())} but space {space!r} has {num_classes} classes; "
                         "set space_options.num_classes to match the dataset")
    if image_size is not None and xs.shape[2:4] != (image_size, image_size):
        raise InputError(f"images are {xs.shape[2]}x{xs.shape[3]} but space {space!r} expects "
                         f"{image_size}x{image_size}; set space_options.image_size")


def engine_from_config(space: Space, config, proxies: Sequence[str]) -> Engine:
    """The compile-once `Engine` for `space` scoring `proxies` on the config's mini-batches (`batches_from_config`),
    with its beta, feature map, backend, gradients and candidate batch."""
    xs, ys = batches_from_config(space, config)
    return Engine(space, xs, ys, tuple(proxies), seed=config.seed, options=proxy_options(space, config),
                  backend=config.get("backend", "auto"), candidate_batch=config.get("candidate_batch", 8),
                  cumulative=bool(config.get("cumulative", False)), gradients=config.get("gradients", "per_batch"),
                  deduplicate=bool(config.get("deduplicate", False)),
                  candidate_parallel=config.get("candidate_parallel", "shard_map"))
