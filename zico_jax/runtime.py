"""What every experiment entry point does around its one library call.

    config = apply_flags(FLAGS.config, FLAGS, OVERRIDES, FLAGS.space_options)   # short flags over the config
    prepare_runtime(config)                                                    # hosts, precision, XLA cache
    summary = run_or_exit("search", run, config)                               # bad input: one line, exit 1
"""

from __future__ import annotations

import sys
from typing import Any, Callable


def apply_flags(config, flag_values, names, space_options: str | None = None):
    """The config with the short flags that were given (not None) written over it, and `--space_options`
    ('K=V,...', see `spaces.parse_space_options`) merged into `config.space_options`."""
    for name in names:
        if flag_values[name].value is not None:
            config[name] = flag_values[name].value
    if space_options is not None:
        from spaces import parse_space_options

        config.space_options.update(parse_space_options(space_options))
    return config


def prepare_runtime(config) -> None:
    """`jax.distributed.initialize()` when the environment names several processes (a no-op otherwise), float64
    when `config.x64`, and JAX's persistent compilation cache unless `config.compilation_cache` is False."""
    import jax

    from zico_jax.sharding import initialize_distributed

    initialize_distributed()
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
