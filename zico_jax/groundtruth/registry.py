"""Which ground-truth loader serves which search space, by name.

A loader is `loader(path=None, data_dir=None, **options) -> GroundTruth`: `path` is the user's own file (the
CLI's --groundtruth; CSV or the benchmark's official format), `data_dir` the offline data folder, `options`
space-specific selectors (e.g. TransNAS-Bench-101's `task`). Its rows are keyed by the space's canonical
genotype string (`str(space.parse(text))`), so a scored candidate finds its accuracy by its string.

Example:
    >>> @register_groundtruth("my_space")
    ... def load_my_space(path=None, data_dir=None):
    ...     return load_table(path, arch_column="arch")
    >>> load_groundtruth("my_space", "my_table.csv")
"""

from __future__ import annotations

from typing import Callable

from zico_jax.errors import InputError
from zico_jax.groundtruth.table import load_table

_LOADERS: dict[str, Callable] = {}


def register_groundtruth(space: str):
    """Decorator: make `fn` the ground-truth loader of `space`."""

    def wrap(fn):
        if space in _LOADERS:
            raise InputError(f"ground truth for space {space!r} registered twice")
        _LOADERS[space] = fn
        return fn

    return wrap


def groundtruth_spaces() -> list[str]:
    return sorted(_LOADERS)


def load_groundtruth(space: str, path=None, data_dir=None, **options):
    """The ground truth of `space` (see the module docstring); InputError names the spaces that have one. A space
    with no loader (e.g. a user's own) reads `path` as a CSV with an `arch` column and metric columns."""
    if space not in _LOADERS and path is not None and not options:
        return load_table(path, arch_column="arch", name=space)
    if space not in _LOADERS:
        raise InputError(f"space {space!r} has no benchmark ground truth here; spaces with one: "
                         f"{', '.join(groundtruth_spaces())}")
    return _LOADERS[space](path, data_dir, **options)
