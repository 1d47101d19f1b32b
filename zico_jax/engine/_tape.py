"""The tape backend: a candidate's network as a short list of compiled blocks (the CPU default).

The space lays the standalone network of a genotype out as a tape of module applications (`space.tape(g)`, a
`HasTape` space); `zico_jax.tape.tape_grads` runs it forward and backward block by block, each distinct (module,
input shape) compiled once, and every layer's gradients are reduced to its ZiCo term by one small jitted
program per kernel shape. The set of executables is fixed by the space, not by the number of candidates, and
none of them contains control flow: on XLA:CPU this is about 10x faster than the supernet's `switch`es. It is
also the only backend for a space without a whole-space network (TransNAS-Bench-101 macro), and the only one
for per-sample gradients.

Memory: the tape runs one mini-batch at a time (a pass holds one mini-batch's residuals) and each module's
pullback keeps only its inputs, recomputing the module's forward in the backward (`zico_jax.tape`); on
NAS-Bench-201 at 2 x 128 this took the peak resident memory of a 30-candidate `zico score` from 6.1 GB to 2.1 GB,
at no cost in time.

After a candidate that compiled new executables, the compiler's freed scratch memory goes back to the OS
(`zico_jax.xla_cpu.CompilerMemoryRelease`).

What this backend owns: the per-layer term program (`layer_term_jit`; the tape's block programs are cached by
`zico_jax.tape`), and the one transfer per candidate: every layer's (term, counted) pair stays on the device
until a single `jax.device_get` brings them all back. The candidate's seeded weights come from the engine
(`initial_params`), so that both backends score the same function of (architecture, seed, data).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from zico_jax import xla_cpu
from zico_jax.proxies.zico import layer_term
from zico_jax.tape import tape_grads


class TapeBackend:
    """Per-layer ZiCo terms of candidates, one at a time, through the space's tape (see the module docstring).

    Args:
      space: a space with a tape (`zico_jax.spaces.base.HasTape`).
      xs, ys: the mini-batches (N, B, ...), as the engine holds them; xs's dtype is the compute precision.
      initial_params: genotype -> the candidate's seeded weights (the tape reads the subtrees it uses).
      cumulative: ZiCo on running sums of the per-batch gradients (`Engine`'s).
      gradients: "per_batch" or "per_sample" (`zico_jax.tape.tape_grads`).
    """

    batch_size = 1  # candidates are run one by one: nothing is gained by grouping them

    def __init__(self, space, xs: jax.Array, ys: jax.Array, *, initial_params: Callable[[Any], Any],
                 cumulative: bool, gradients: str):
        self.space, self.xs, self.ys = space, xs, ys
        self.cumulative, self.gradients = cumulative, gradients
        self._initial_params = initial_params
        self._release_compiler_memory = xla_cpu.CompilerMemoryRelease()

    def measure(self, genotypes: Sequence, params: Sequence | None = None) -> list[dict[str, float]]:
        """{layer path: log S_l} of the counted layers (S_l > 0) of each genotype, in order; params None: each
        at its seeded weights, otherwise one weights tree per genotype (e.g. imported from PyTorch)."""
        if params is None:
            return [self._measure_one(g, self._initial_params(g)) for g in genotypes]
        return [self._measure_one(g, p) for g, p in zip(genotypes, params)]

    def _measure_one(self, g, params) -> dict[str, float]:
        # One mini-batch at a time: a pass holds the residuals of one mini-batch only (half the peak memory of
        # running the N together), and the mini-batches are independent (BatchNorm statistics are per
        # mini-batch), so the N gradients are the same as one pass over all of them would give.
        nodes = self.space.tape(g, dtype=self.xs.dtype)
        passes = [tape_grads(nodes, params, self.xs[n:n + 1], self.ys[n:n + 1], self.space.loss, self.gradients)[1]
                  for n in range(self.xs.shape[0])]
        flat = {path: jnp.concatenate([grads[path] for grads in passes]) for path in passes[0]}
        kernels = {path[: -len("/kernel")]: v for path, v in flat.items() if path.endswith("/kernel")}
        if self.gradients == "per_sample":  # (N, B, *shape) -> (N * B, *shape): statistics over every sample
            kernels = {path: v.reshape(-1, *v.shape[2:]) for path, v in kernels.items()}
        pairs = {path: layer_term_jit(v, self.cumulative) for path, v in kernels.items()}
        host = jax.device_get(pairs)  # the one transfer; a dict comes back in sorted order: read it in the tape's
        self._release_compiler_memory()  # the first candidates compile the space's executables
        return {path: float(host[path][0]) for path in pairs if bool(host[path][1])}


@functools.partial(xla_cpu.jit, static_argnums=1)
def layer_term_jit(grad, cumulative):
    """`zico_jax.proxies.zico.layer_term` of one layer's gradients, compiled once per kernel shape."""
    return layer_term(grad, cumulative)
