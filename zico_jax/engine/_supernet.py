"""The supernet backend: the architecture is data, so ONE compiled program scores every candidate of a space.

The space's whole-space network (`space.model(None)`) takes a candidate's integer code as an input and switches
per edge. Its program draws each candidate's weights itself, from `fold_in(key(seed), arch_id)`, takes the
per-mini-batch gradients and reduces them to ZiCo's per-layer terms, for `batch_size` candidates per call, the
candidate axis split over a device mesh: only integer codes go to the devices, and one transfer per call brings
every candidate's terms back. Compiled once per (network, input shape, dtype, options, mesh): the number of
compilations does not grow with the number of candidates. The natural design on GPU/TPU; on XLA:CPU the
convolutions inside `switch` run as slow generic thunks (the tape backend, `zico_jax.engine._tape`, is the CPU
default).

What this backend owns: the compiled programs (lru-cached per network and options, shared by every engine on the
same space and inputs), the replicated copies of the mini-batches on the mesh, and the weight overlay that lets
the program, which reads every weight of the space, score a standalone network's imported weights
(`SupernetBackend.measure(genotypes, params)`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore
from jax.sharding import PartitionSpec

from zico_jax import sharding
from zico_jax.errors import InputError, UnknownNameError
from zico_jax.grads import classification_loss, kernel_leaves, per_batch_grads
from zico_jax.proxies.zico import zico_layer_terms

CANDIDATE_PARALLEL = ("shard_map", "pmap")


class SupernetBackend:
    """Per-layer ZiCo terms of candidates of one space from its whole-space network (see the module docstring).

    Args:
      space: the space (its `encode`, `arch_id` and `loss`).
      supernet: `space.model(None, dtype=xs.dtype)`.
      xs, ys: the mini-batches (N, B, ...), as the engine holds them.
      seed: the run's seed (the program folds each candidate's arch id into it).
      initial_params: genotype -> the seeded weights of the whole space (what imported weights are overlaid on).
      cumulative, grad_method: as `Engine`'s (grad_method lays out the N gradients for imported weights; the
        seeded program unrolls them).
      mesh, batch_size, candidate_loop: the device mesh, candidates per call (a multiple of the mesh size) and
        "map" or "vmap" over a device's candidates (`batched_program`).
      candidate_parallel: how the candidates are spread over the mesh's devices: "shard_map" (default; `jit` of
        `jax.shard_map`, also across hosts) or "pmap" (`jax.pmap` over the mesh's devices, which must be this
        process's; the same per-device program, so the same scores). shard_map is the default: since JAX 0.8
        pmap is itself implemented with jit + shard_map, JAX recommends shard_map for new code, and pmap has no
        multi-host global arrays.
    """

    def __init__(self, space, supernet, xs: jax.Array, ys: jax.Array, *, seed: int,
                 initial_params: Callable[[Any], Any], cumulative: bool, grad_method: str, mesh, batch_size: int,
                 candidate_loop: str, candidate_parallel: str = "shard_map"):
        if candidate_parallel not in CANDIDATE_PARALLEL:
            raise InputError(f"candidate_parallel {candidate_parallel!r}: expected one of "
                             f"{', '.join(CANDIDATE_PARALLEL)}")
        if candidate_parallel == "pmap" and any(d.process_index != jax.process_index() for d in mesh.devices.flat):
            raise InputError("candidate_parallel='pmap' spreads candidates over this process's devices only; "
                             "use 'shard_map' for a multi-host mesh")
        self.space, self.supernet, self.xs, self.ys = space, supernet, xs, ys
        self.seed, self.cumulative, self.grad_method = seed, cumulative, grad_method
        self.mesh, self.batch_size, self.candidate_loop = mesh, batch_size, candidate_loop
        self.candidate_parallel = candidate_parallel
        self._initial_params = initial_params

    def measure(self, genotypes: Sequence, params: Sequence | None = None) -> list[dict[str, float]]:
        """{layer path: log S_l} of the counted layers (S_l > 0) of each genotype, in order.

        params None: each candidate at its seeded weights, `batch_size` candidates per call of the program;
        otherwise one weights tree per genotype (the standalone network's, e.g. imported from PyTorch), each
        laid over the candidate's seeded weights of the whole space and scored alone."""
        if params is not None:
            return [self._measure_at(g, p) for g, p in zip(genotypes, params)]
        genotypes = list(genotypes)
        terms: list[dict[str, float]] = []
        for start in range(0, len(genotypes), self.batch_size):
            terms += self._measure_seeded(genotypes[start:start + self.batch_size])
        return terms

    def _measure_seeded(self, gs: list) -> list[dict[str, float]]:
        """One call of the space's program on a padded, sharded batch of candidates; one transfer back."""
        pad = [gs[0]] * (self.batch_size - len(gs))  # a fixed batch shape: one compilation
        ids = np.array([self.space.arch_id(g) for g in gs + pad], np.uint32)
        codes = np.stack([self.space.encode(g) for g in gs + pad])
        if self.candidate_parallel == "pmap":
            terms, counted = self._measure_pmap(ids, codes)
            return [{path: float(terms[path][i]) for path in terms if counted[path][i]} for i in range(len(gs))]
        program = batched_program(self.supernet, self.xs.shape[2:], self.xs.dtype, self.cumulative, self.mesh,
                                  self.candidate_loop, self.space.loss)
        terms, counted = sharding.to_host(program(
            sharding.shard_candidates(ids, self.mesh), sharding.shard_candidates(codes, self.mesh),
            np.uint32(self.seed), self._xs_replicated, self._ys_replicated))
        return [{path: float(terms[path][i]) for path in terms if counted[path][i]} for i in range(len(gs))]

    def _measure_pmap(self, ids: np.ndarray, codes: np.ndarray):
        """The pmap path: candidates reshaped to (devices, per device, ...), one pmapped call, one transfer."""
        devices = list(self.mesh.devices.flat)
        program = pmapped_program(self.supernet, self.xs.shape[2:], self.xs.dtype, self.cumulative,
                                  tuple(devices), self.candidate_loop, self.space.loss)
        split = lambda a: a.reshape(len(devices), -1, *a.shape[1:])  # noqa: E731
        terms, counted = jax.device_get(program(split(ids), split(codes), np.uint32(self.seed), self.xs, self.ys))
        merge = lambda a: a.reshape(-1, *a.shape[2:])  # noqa: E731
        return jax.tree.map(merge, terms), jax.tree.map(merge, counted)

    def _measure_at(self, g, params) -> dict[str, float]:
        """One candidate at given weights of its standalone network; one transfer back."""
        full = overlay(self._initial_params(g), params)  # the program reads every weight of the space
        program = supernet_terms(self.supernet, self.grad_method, self.cumulative, self.space.loss)
        terms, counted = jax.device_get(program(full, jnp.asarray(self.space.encode(g)), self.xs, self.ys))
        return {path: float(terms[path]) for path in terms if bool(counted[path])}

    @functools.cached_property
    def _xs_replicated(self):
        return sharding.replicate(self.xs, self.mesh)

    @functools.cached_property
    def _ys_replicated(self):
        return sharding.replicate(self.ys, self.mesh)


@functools.lru_cache(maxsize=None)
def supernet_init(supernet, image_shape: tuple[int, ...], dtype):
    """Init of the whole space, (key, code) -> params, shared by every engine on the same network and input
    shape. Every weight of the space is created whatever the code.

    Run as the initializers' own compiled pieces, not as one `jit`: NAS-Bench-201's whole-space init is 189
    weight initialisers, each a threefry hash unrolled into the program, which XLA:CPU takes ~10 s to compile
    for a program that runs in 0.02 s, before the first candidate can be scored. `dispatched_ops` keeps only
    the ops the weights need (the forward pass `init` traces is dropped) and runs them one by one: each
    initialiser is a `jit` of jax.random or flax, compiled once per shape (~3.5 s for all of them), then ~0.05 s
    per candidate. The bits are the same as the jitted init's (tests/test_engine.py)."""
    return dispatched_ops(lambda key, code: supernet.init(key, jnp.zeros((1, *image_shape), dtype), code)["params"])


def dispatched_ops(fn: Callable) -> Callable:
    """`fn` traced once (per argument shapes) to a jaxpr, pruned to the equations its outputs need, and run
    equation by equation: its `jit` sub-calls (jax.random's, flax's initialisers) are dispatched as their own
    cached executables instead of being compiled again inlined into one program. For a function that is
    cheap to run but expensive to compile as a whole."""
    traced: dict[Any, tuple[Callable, Any]] = {}

    def run(*args):
        signature = tuple(jax.typeof(a) for a in args)  # shapes and dtypes
        if signature not in traced:
            closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
            pruned = jcore.ClosedJaxpr(_needed_equations(closed.jaxpr), closed.consts)
            traced[signature] = jcore.jaxpr_as_fun(pruned), jax.tree.structure(out_shape)
        evaluate, tree = traced[signature]
        return jax.tree.unflatten(tree, evaluate(*args))

    return run


def _needed_equations(jaxpr):
    """`jaxpr` without the equations none of its outputs depends on (and that have no effects)."""
    needed = {v for v in jaxpr.outvars if isinstance(v, jcore.Var)}
    kept = []
    for eqn in reversed(jaxpr.eqns):
        if eqn.effects or any(v in needed for v in eqn.outvars):
            kept.append(eqn)
            needed.update(v for v in eqn.invars if isinstance(v, jcore.Var))
    return jaxpr.replace(eqns=kept[::-1])


@functools.lru_cache(maxsize=None)
def batched_program(supernet, image_shape: tuple[int, ...], dtype, cumulative: bool, mesh, candidate_loop: str,
                    loss):
    """The one compiled program of a space: (arch ids, codes, seed, xs, ys) -> per-layer (terms, counted) for
    a batch of candidates, the candidate axis sharded over `mesh`.

    Each candidate's weights are initialised inside the program from `fold_in(key(seed), arch_id)`, so only the
    integer codes cross to the devices. Mini-batch gradients are unrolled: `vmap` over candidates of `vmap` over
    mini-batches of a convolution's gradient hits an unimplemented batching rule, and on XLA:CPU the vmapped
    weight gradients become slower grouped convolutions.

    candidate_loop "map": a device loops over its candidates (`lax.map`); each candidate runs the same compiled
    body whatever the batch or device count, so scores are bitwise independent of the grouping, and `switch`
    runs one branch per edge. "vmap": the candidates are one batched program (more parallel work per kernel
    on an accelerator, but `switch` becomes a select that computes every op, and float32 results move by
    ~1e-3 relative with the batch shape: ZiCo divides by tiny standard deviations).
    """

    batched = _per_device_program(supernet, image_shape, dtype, cumulative, candidate_loop, loss)
    # shard_map, not jit's SPMD partitioner: each device runs the program on its own candidates. The partitioner
    # splits vmapped (grouped) weight-gradient convolutions wrongly over the candidate axis.
    c, rep = PartitionSpec(sharding.AXIS), PartitionSpec()
    # check_vma=False: flax init and grad mix replicated and per-device values in ways the checker rejects.
    return jax.jit(jax.shard_map(batched, mesh=mesh, in_specs=(c, c, rep, rep, rep), out_specs=c, check_vma=False))


@functools.lru_cache(maxsize=None)
def pmapped_program(supernet, image_shape: tuple[int, ...], dtype, cumulative: bool, devices: tuple,
                    candidate_loop: str, loss):
    """`batched_program`'s per-device program under `jax.pmap` over `devices`: (ids, codes) of shape
    (devices, per device, ...) -> per-layer (terms, counted) of the same leading shape."""
    batched = _per_device_program(supernet, image_shape, dtype, cumulative, candidate_loop, loss)
    return jax.pmap(batched, in_axes=(0, 0, None, None, None), devices=list(devices))


def _per_device_program(supernet, image_shape, dtype, cumulative: bool, candidate_loop: str, loss):
    """What one device runs on its candidates (ids, codes, seed, xs, ys), by `lax.map` or `vmap`."""

    def one(arch_id, code, seed, xs, ys):
        key = jax.random.fold_in(jax.random.key(seed), arch_id)
        params = supernet.init(key, jnp.zeros((1, *image_shape), dtype), code)["params"]
        return layer_terms(supernet, params, code, xs, ys, "unroll", cumulative, loss)

    if candidate_loop == "vmap":
        return jax.vmap(one, in_axes=(0, 0, None, None, None))

    def mapped(ids, codes, seed, xs, ys):
        return jax.lax.map(lambda c: one(c[0], c[1], seed, xs, ys), (ids, codes))
    return mapped


def layer_terms(supernet, params, code, xs, ys, grad_method: str, cumulative: bool, loss):
    """Per-layer ZiCo (terms, counted) of candidate `code` at `params`: the body of both supernet programs."""
    loss_fn = classification_loss(lambda v, x: supernet.apply(v, x, code), loss=loss)
    grads = per_batch_grads(loss_fn, params, xs, ys, grad_method)
    terms = zico_layer_terms(kernel_leaves(grads), cumulative)
    return terms.terms, terms.counted


@functools.lru_cache(maxsize=None)
def supernet_terms(supernet, grad_method: str, cumulative: bool, loss):
    """The supernet program for given weights (e.g. imported from PyTorch): (params, code, xs, ys) -> per-layer
    (terms, counted). Seeded candidates go through `batched_program`, which draws the weights itself."""
    return jax.jit(functools.partial(layer_terms, supernet, grad_method=grad_method, cumulative=cumulative,
                                     loss=loss))


def overlay(base, override):
    """`base` with every leaf present in `override` replaced (same nested-dict layout)."""
    if not isinstance(override, Mapping):
        if hasattr(base, "shape") and tuple(jnp.shape(override)) != tuple(base.shape):
            # e.g. a width space, whose whole-space network holds the widest layers
            raise InputError(f"weights: shape {tuple(jnp.shape(override))} where the whole-space network holds "
                             f"{tuple(base.shape)}; this space cannot score imported weights on the supernet backend")
        return jnp.asarray(override, dtype=base.dtype) if hasattr(base, "dtype") else override
    missing = sorted(set(override) - set(base))
    if missing:
        raise UnknownNameError(f"weights: {missing[0]!r} is not a parameter of this space's network")
    return {k: (overlay(v, override[k]) if k in override else v) for k, v in base.items()}
