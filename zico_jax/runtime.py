"""The process around a command's one library call: how JAX is set up, and what each run records.

    prepare_runtime(config)        # jax.distributed on several hosts, float64, the persistent compilation cache
    run_environment()              # versions, git commit, devices: stored next to every run's results
"""

from __future__ import annotations

import functools
import logging
import pathlib
import platform
import subprocess
from typing import Any

import flax
import jax
import numpy as np
import optax
import scipy
from absl import logging as absl_logging

from zico_jax.compilation_cache import enable_compilation_cache
from zico_jax.sharding import enable_preemption_notice, initialize_distributed
from zico_jax.version import __version__


def prepare_runtime(config) -> None:
    """`jax.distributed.initialize()` when `config.distributed` or $ZICO_JAX_DISTRIBUTED asks for it (or a
    one-process preemption service when `config.preemption_notice`, see `sharding.enable_preemption_notice`), float64
    when `config.x64`, JAX's persistent compilation cache unless `config.compilation_cache` is False, and orbax's
    per-checkpoint INFO lines filtered out of the log."""
    # orbax logs every checkpoint step at INFO: keep its warnings, drop the rest so progress lines stay readable.
    absl_logging.get_absl_handler().python_handler.addFilter(
        lambda record: "orbax" not in record.pathname or record.levelno >= logging.WARNING)
    initialize_distributed(config.get("distributed") or None)
    if config.get("preemption_notice"):
        enable_preemption_notice()
    if config.get("x64"):
        jax.config.update("jax_enable_x64", True)
    if config.get("compilation_cache", True):
        enable_compilation_cache()


@functools.cache
def git_commit() -> str | None:
    """The commit of the checkout zico-jax runs from (with "+dirty" when it has changes), or None when it is not a
    git checkout (an installed wheel) or git is missing."""
    source = pathlib.Path(__file__).resolve().parents[1]
    if not (source / ".git").exists():  # an installed copy: a repository around site-packages is not zico-jax's
        return None
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") if commit else None


def run_environment() -> dict[str, Any]:
    """What every run records next to its results: zico-jax's version and commit, library versions, devices."""
    return {"zico_jax": {"version": __version__, "git_commit": git_commit()},
            "versions": {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
                         "numpy": np.__version__, "scipy": scipy.__version__, "python": platform.python_version()},
            "devices": [str(d) for d in jax.devices()], "process_count": jax.process_count()}
