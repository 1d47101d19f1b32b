"""What every experiment entry point does around its one library call.

    config = apply_flags(FLAGS.config, FLAGS, OVERRIDES, FLAGS.space_options)   # short flags over the config
    prepare_runtime(config)                                                    # hosts, precision, XLA cache
    summary = run_or_exit("search", run, config)                               # bad input: one line, exit 1
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from zico_jax.errors import InputError


def apply_flags(config, flag_values, names, space_options: str | None = None):
    """The config with the short flags that were given (not None) written over it, and `--space_options`
    ('K=V,...', see `zico_jax.spaces.parse_space_options`) merged into `config.space_options`."""
    for name in names:
        if flag_values[name].value is not None:
            config[name] = flag_values[name].value
    if space_options is not None:
        from zico_jax.spaces import parse_space_options

        config.space_options.update(parse_space_options(space_options))
    return config


def config_from_flags(argv, flag_values, names):
    """What every experiment's `main` starts with: no stray arguments, `--config` with the short flags `names` and
    `--space_options` applied (`apply_flags`; absl's UsageError names a bad one), and the runtime prepared
    (`prepare_runtime`). Returns the config."""
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = apply_flags(flag_values.config, flag_values, names, flag_values.space_options)
    except ValueError as err:
        raise app.UsageError(f"--space_options: {err}") from None
    prepare_runtime(config)
    return config


def prepare_runtime(config) -> None:
    """`jax.distributed.initialize()` when `config.distributed` or $ZICO_JAX_DISTRIBUTED asks for it, float64
    when `config.x64`, JAX's persistent compilation cache unless `config.compilation_cache` is False, and orbax's
    per-checkpoint INFO lines filtered out of the log."""
    import logging

    import jax
    from absl import logging as absl_logging

    from zico_jax.sharding import initialize_distributed

    # orbax logs every checkpoint step at INFO: keep its warnings, drop the rest so progress lines stay readable.
    absl_logging.get_absl_handler().python_handler.addFilter(
        lambda record: "orbax" not in record.pathname or record.levelno >= logging.WARNING)
    initialize_distributed(config.get("distributed") or None)
    if config.get("x64"):
        jax.config.update("jax_enable_x64", True)
    if config.get("compilation_cache", True):
        from zico_jax.compilation_cache import enable_compilation_cache

        enable_compilation_cache()


def run_or_exit(name: str, run: Callable[[Any], Any], config) -> Any:
    """`run(config)`; a missing data file or a bad setting ends the program with one line naming it, status 1."""
    from zico_jax.data import DataNotFoundError

    try:
        return run(config)
    except (DataNotFoundError, ValueError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{name}: error: {message}", file=sys.stderr)
        sys.exit(1)


def run_environment() -> dict[str, Any]:
    """What every run records next to its results: library versions and the devices it ran on."""
    import platform

    import flax
    import jax
    import numpy as np
    import optax
    import scipy

    return {"versions": {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
                         "numpy": np.__version__, "scipy": scipy.__version__, "python": platform.python_version()},
            "devices": [str(d) for d in jax.devices()], "process_count": jax.process_count()}


def zico_bc_beta(space, config) -> float:
    """ZiCo-BC's beta: `config.beta` where set, else the space's `default_beta` (ZiCo-BC's per-task value: 1 for
    classification and detection, 2 for segmentation), else 1."""
    beta = config.get("beta")
    return float(beta if beta is not None else getattr(space, "default_beta", 1.0))


def engine_from_config(space, config, proxies):
    """The compile-once `Engine` for `space` scoring `proxies` on the config's mini-batches.

    Reads config.dataset / data_source / data_dir (the images; imagenet2012: `train_data.imagenet_batches`), num_batches, batch_size, seed (the draw and the
    weight init), x64, beta (None: the space's default), feature_map, backend, candidate_batch. The images are
    resized to the space's input and passed through its task hooks (`space.inputs`, `space.targets`). A
    classification benchmark built for this very dataset (NAS-Bench-201's skeleton) must have as many classes and
    the same image size, else a ValueError says which space option to set.
    """
    import jax.numpy as jnp

    from zico_jax import data as D
    from zico_jax import train_data
    from zico_jax.correlation import NATS_SPACES
    from zico_jax.engine import Engine  # imported late: callers that only read results need no compiler
    from zico_jax.proxies import registry as R

    if config.dataset == "imagenet2012":  # not held in memory: the official search's first batches of the stream
        xs, ys = train_data.imagenet_batches(config, int(space.input_shape(1)[1]))
    else:
        x, y = D.load_images(config.dataset, "train", config.data_source, config.get("data_dir"))
        xs, ys = D.make_batches(x, y, config.num_batches, config.batch_size, config.seed)
    num_classes, image_size = getattr(space, "num_classes", None), getattr(space, "image_size", None)
    if config.space in NATS_SPACES:
        if num_classes is not None and int(ys.max()) >= num_classes:
            raise InputError(f"labels reach {int(ys.max())} but space {space!r} has {num_classes} classes; "
                             "set space_options.num_classes to match the dataset")
        if image_size is not None and xs.shape[2:4] != (image_size, image_size):
            raise InputError(f"images are {xs.shape[2]}x{xs.shape[3]} but space {space!r} expects "
                             f"{image_size}x{image_size}; set space_options.image_size")
    xs = D.resize_batches(xs, tuple(space.input_shape(1)[1:3]))
    xs = space.inputs(xs)
    ys = space.targets(xs, ys)
    dtype = jnp.float64 if config.get("x64") else jnp.float32
    return Engine(space, jnp.asarray(xs, dtype), jnp.asarray(ys), tuple(proxies), seed=config.seed,
                  options=R.ProxyOptions(zico_bc_beta(space, config), config.feature_map,
                                         config.get("count_transposed_conv", False)),
                  backend=config.get("backend", "auto"), candidate_batch=config.get("candidate_batch", 8),
                  gradients=config.get("gradients", "per_batch"))
