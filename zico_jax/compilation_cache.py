"""JAX's persistent compilation cache, on by default for the command line and the experiments.

A second run of the same space and batch shape then loads its executables from disk and starts scoring at once.
Every executable is cached, however fast it compiled: the CPU backend compiles dozens of small per-block programs
(well under JAX's default 1 s threshold) whose sum is what a warm start saves.

    >>> enable_compilation_cache()              # $ZICO_JAX_CACHE or ~/.cache/zico_jax/xla

The folder may be in a bucket (`gs://bucket/xla-cache`, shared by the hosts of a pod): JAX reads and writes it
through etils.epath.
"""

from __future__ import annotations

import os
import pathlib

import jax

from zico_jax import storage

CACHE_ENV = "ZICO_JAX_CACHE"


def default_cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get(CACHE_ENV) or pathlib.Path.home() / ".cache" / "zico_jax" / "xla")


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str:
    """Turn the persistent cache on at `path` (default `default_cache_dir()`; local or a bucket); returns it."""
    folder = os.fspath(path) if path else os.fspath(default_cache_dir())
    storage.make_parent(storage.as_path(folder) / "_")  # JAX creates the folder too, but only at the first compile
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
