"""The node type of a network's tape: what a space's `tape(genotype)` returns and `zico_jax.tape` executes.

A tape is a list of `TapeNode`s in forward order; value 0 is the network input and node k makes value k + 1.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class TapeNode:
    """One application: `fn` is a Flax module (params at `path` in the network's params) or a parameter-free
    function of the input values; `inputs` index values (0 is the network input, node k makes value k + 1).
    A non-`differentiable` node passes no gradient to its inputs (e.g. zeros shaped like its input)."""

    fn: Any
    inputs: tuple[int, ...]
    path: Optional[tuple[str, ...]] = None
    differentiable: bool = True


def add_n(*xs):
    return functools.reduce(jnp.add, xs)


def zeros_like(x):
    return jnp.zeros_like(x)
