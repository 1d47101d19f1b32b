"""The scoring engine: every candidate of every experiment is scored here, and nowhere else.

    Engine(space, xs, ys, proxies).score(genotypes)  ->  CandidateScore per genotype, in order, as each finishes

For each candidate g the engine
  1. draws the initial weights from a per-candidate key, `fold_in(key(seed), space.arch_id(g))`, with ONE jitted
     init of the whole space (the supernet): linen derives each weight from its module path, so the slice that
     g uses is exactly what the standalone network of g initialised with the same key would hold;
  2. takes the per-mini-batch gradients of the space's loss (`space.loss`: mean cross-entropy for classification)
     at those weights (BatchNorm in train mode,
     see `zico_jax.grads`);
  3. reduces them to ZiCo's per-layer terms (`zico_jax.proxies.zico`) and evaluates every requested proxy on
     that one measurement (`zico_jax.proxies.registry`).
Scores are a function of (architecture, seed, data) only.

Backends (the numbers agree; the tests check it in float64):
  * "supernet" - the architecture is data: the space's network takes the integer code as an input and switches
    per edge, so ONE compiled program scores every candidate (`vmap(grad)` over mini-batches inside it). The
    natural design on GPU/TPU.
  * "tape" - the candidate's network is a short list of module applications, each (module, shape) compiled
    once as forward and backward and chained with `jax.vjp` in Python (`zico_jax.tape`). The set of
    executables is fixed by the space, not by the number of candidates. On XLA:CPU convolutions inside
    `switch` run as slow generic thunks (about 12 s per NAS-Bench-201 candidate), so this is the CPU default.
  * "auto" - "tape" on CPU when the space provides a tape, else "supernet"; "tape" everywhere for a space with
    no whole-space network (`space.model(None)` raises NotImplementedError: TransNAS-Bench-101 macro).

Example:
    >>> engine = Engine(get_space("nats_tss"), xs, ys, proxies=("zico", "zico_bc"), seed=0)
    >>> for result in engine.score(["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|"]):
    ...     print(result.arch, result.scores["zico"])
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Iterable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from zico_jax import grads as G
from zico_jax import sharding as S
from zico_jax import tape as T
from zico_jax.errors import InputError, UnknownNameError
from zico_jax.proxies import registry as R
from zico_jax.proxies.zico import layer_term, zico_layer_terms
from zico_jax.spaces.base import Space

BACKENDS = ("auto", "tape", "supernet")
CANDIDATE_LOOPS = ("map", "vmap")
BASELINE_MODES = ("auto", "eager", "jit")


@dataclasses.dataclass(frozen=True)
class CandidateScore:
    """One scored candidate: canonical genotype string, proxy scores, analytic counts, wall time."""

    arch: str
    scores: Mapping[str, float]
    params: int
    flops: int
    layers_counted: int
    seconds: float

    def row(self) -> dict[str, Any]:
        return {"arch": self.arch, **self.scores, "params": self.params, "flops": self.flops,
                "layers_counted": self.layers_counted, "seconds": round(self.seconds, 4)}


class Engine:
    """Scores genotypes of one space on fixed mini-batches with a set of proxies.

    Args:
      space: a `zico_jax.spaces.Space`.
      xs, ys: (N, B, H, W, C) inputs and (N, B, ...) targets of `space.loss` (class labels by default,
        `space.targets` makes them); xs's dtype is the compute precision.
      proxies: registered proxy names (`zico_jax.proxies.registry`).
      seed: the run's seed; candidate g is initialised from `fold_in(key(seed), space.arch_id(g))`.
      options: proxy options (ZiCo-BC's beta and feature map).
      backend: "auto", "tape" or "supernet" (see the module docstring).
      cumulative: ZiCo on running sums g_1, g_1 + g_2 of the per-batch gradients, as the official repository's
        superseded first commit computed it (the current official code zeroes the gradients per batch: the default).
      grad_method: how the N gradients are laid out when scoring imported weights ("vmap", "unroll", "map").
      candidate_batch: candidates per call of the supernet program (rounded up to a multiple of the device
        count); it bounds the memory per device.
      mesh: the device mesh the candidate axis is split over (default: every device, `sharding.candidate_mesh`).
      candidate_loop: "map" (default; grouping-invariant scores) or "vmap" over a device's candidates.
      baseline_mode: how baseline proxies (snip, synflow, ...: `zico_jax.proxies.baselines`) run on each
        candidate's standalone network, initialised from the candidate's key like ZiCo's weights, on the first
        mini-batch `xs[0], ys[0]`: "jit" compiles one program per candidate and proxy; "eager" runs op by op, so
        XLA compiles each primitive once per shape and every candidate reuses them (no per-candidate compile);
        "auto": eager on CPU, jit elsewhere.
      gradients: "per_batch" (default: ZiCo over the N mini-batch gradients, as the official code) or
        "per_sample" (over the N * B per-sample gradients, BatchNorm statistics of each sample's mini-batch held
        fixed: `zico_jax.grads.per_sample_grads`). Per-sample runs on the tape backend only ("auto" picks it).
    """

    def __init__(
        self, space: Space, xs, ys, proxies: Iterable[str] = ("zico",), *, seed: int = 0,
        options: R.ProxyOptions = R.ProxyOptions(), backend: str = "auto", cumulative: bool = False,
        grad_method: str = "vmap", candidate_batch: int = 8, mesh=None, candidate_loop: str = "map",
        baseline_mode: str = "auto", gradients: str = "per_batch",
    ):
        xs, ys = jnp.asarray(xs), jnp.asarray(ys)
        if xs.ndim != 5 or ys.shape[:2] != xs.shape[:2]:
            raise InputError(f"Engine: expected xs (N, B, H, W, C) and targets ys (N, B, ...); got {xs.shape} and "
                             f"{ys.shape}")
        if xs.shape[0] < 2:
            raise InputError(f"Engine: ZiCo needs at least 2 mini-batches, got {xs.shape[0]}")
        if backend not in BACKENDS:
            raise InputError(f"Engine: unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        try:
            supernet = space.model(None, dtype=xs.dtype)
        except NotImplementedError:  # e.g. TransNAS-Bench-101 macro: feature shapes change with the genotype
            supernet = None
        if gradients not in G.GRADIENTS:
            raise InputError(f"Engine: gradients {gradients!r}; expected one of {', '.join(G.GRADIENTS)}")
        per_sample = gradients == "per_sample"
        if per_sample and cumulative:
            raise InputError("Engine: cumulative=True has no per-sample counterpart; use gradients='per_batch'")
        if backend == "auto":
            cpu = jax.default_backend() == "cpu"
            backend = "tape" if hasattr(space, "tape") and (cpu or supernet is None or per_sample) else "supernet"
        if per_sample and backend != "tape":
            raise InputError(f"Engine: gradients='per_sample' runs on the tape backend only (got backend {backend!r} for "
                             f"space {space.name!r}); use backend='tape' or 'auto' on a space with a tape")
        if backend == "supernet" and supernet is None:
            raise InputError(f"Engine: space {space.name!r} has no whole-space network; use backend='tape'")
        if backend == "tape" and not hasattr(space, "tape"):
            raise InputError(f"Engine: space {space.name!r} provides no tape; use backend='supernet'")
        self.space, self.xs, self.ys = space, xs, ys
        self.proxies = R.parse_proxies(tuple(proxies))
        self.seed, self.options, self.backend = seed, options, backend
        self.cumulative, self.grad_method = cumulative, grad_method
        self.gradients = gradients
        self.dtype = xs.dtype
        self.supernet = supernet
        self._needs_grads = any(R.get_proxy(p).needs_grads for p in self.proxies)
        self._baselines = tuple(p for p in self.proxies if R.get_proxy(p).needs_network)
        if baseline_mode not in BASELINE_MODES:
            raise InputError(f"Engine: baseline_mode {baseline_mode!r}; expected one of {', '.join(BASELINE_MODES)}")
        if baseline_mode == "auto":
            baseline_mode = "eager" if jax.default_backend() == "cpu" else "jit"
        self.baseline_mode = baseline_mode
        self._code0 = space.encode(space.sample(np.random.default_rng(0)))
        if candidate_loop not in CANDIDATE_LOOPS:
            raise InputError(f"Engine: candidate_loop {candidate_loop!r}; expected one of {', '.join(CANDIDATE_LOOPS)}")
        self.candidate_loop = candidate_loop
        self.mesh = S.candidate_mesh() if mesh is None else mesh
        self.candidate_batch = -(-max(1, candidate_batch) // self.mesh.size) * self.mesh.size

    # ------------------------------------------------------------------------------------------- weights
    def candidate_key(self, genotype) -> jax.Array:
        return jax.random.fold_in(jax.random.key(self.seed), self.space.arch_id(genotype))

    def initial_params(self, genotype):
        """The supernet's weights drawn from `genotype`'s key; the genotype's own weights are a subtree.

        A space without a whole-space network initialises the standalone network of `genotype` from the same
        key, eagerly: op by op, so the executables are shared across genotypes instead of one jit each."""
        if self.supernet is None:
            model = self.space.model(self._parse(genotype), dtype=self.dtype)
            return model.init(self.candidate_key(genotype), jnp.zeros((1, *self.xs.shape[2:]), self.dtype))["params"]
        init = _supernet_init(self.supernet, self.xs.shape[2:], self.dtype)
        return init(self.candidate_key(genotype), jnp.asarray(self._code0))

    # ------------------------------------------------------------------------------------------- scoring
    def measure(self, genotype, params=None) -> R.Measurement:
        """One candidate's measurement. `params`: the standalone network's weights (e.g. imported from
        PyTorch) instead of the seeded initialisation."""
        g = self._parse(genotype)
        if params is None and self._batched:
            return self._measure_batch([g])[0]
        terms: dict[str, float] = {}
        if self._needs_grads:
            full = params
            if params is None:
                full = self.initial_params(g)
            elif self.backend == "supernet":  # the program reads every weight of the space: fill in the rest
                full = _overlay(self.initial_params(g), params)
            terms = self._terms_tape(g, full) if self.backend == "tape" else self._terms_supernet(g, full)
        return self._measurement(g, terms, params)

    def _measurement(self, g, terms: Mapping[str, float], params=None) -> R.Measurement:
        layers = {layer.path: layer for layer in self.space.layers(g)}
        baselines = self._baseline_scores(g, params) if self._baselines else {}
        return R.Measurement(terms, layers, self.space.params(g), self.space.flops(g), baselines)

    def _baseline_scores(self, g, params=None) -> dict[str, float]:
        """The requested baseline proxies of `g`'s standalone network at `params` (default: the seeded init,
        the same weights ZiCo sees) on the first mini-batch; zen draws its Gaussians from the candidate's key."""
        from zico_jax.proxies import baselines as B

        net = B.baseline_network(self.space, g, self.dtype, loss=self.space.loss)
        key = self.candidate_key(g)
        x, y = self.xs[0], self.ys[0]
        with jax.disable_jit(self.baseline_mode == "eager"):
            if params is None:
                params = net.model.init(key, jnp.zeros((1, *x.shape[1:]), self.dtype))["params"]
            return {name: float(B.jitted_baseline(name)(net, params, x, y, jax.random.fold_in(key, 1)))
                    for name in self._baselines}

    def score_one(self, genotype, params=None) -> CandidateScore:
        """One candidate; `params` as in `measure`."""
        if params is None and self._batched:
            return next(self._score_batch([genotype]))
        start = time.perf_counter()
        g = self._parse(genotype)
        return self._result(g, self.measure(g, params), time.perf_counter() - start)

    def score(self, genotypes: Iterable) -> Iterator[CandidateScore]:
        """Score each genotype (object or official string) in order, yielding results as they finish.

        The supernet backend scores `candidate_batch` candidates per call, split over the mesh; the tape
        backend one at a time. A generator of genotypes is consumed lazily."""
        if not self._batched:
            for g in genotypes:
                yield self.score_one(g)
            return
        batch = []
        for g in genotypes:
            batch.append(g)
            if len(batch) == self.candidate_batch:
                yield from self._score_batch(batch)
                batch = []
        if batch:
            yield from self._score_batch(batch)

    @property
    def _batched(self) -> bool:
        return self.backend == "supernet" and self._needs_grads

    def _parse(self, genotype):
        return self.space.parse(genotype) if isinstance(genotype, str) else genotype

    def _result(self, g, m: R.Measurement, seconds: float) -> CandidateScore:
        scores = {name: R.get_proxy(name).fn(m, self.options) for name in self.proxies}
        return CandidateScore(str(g), scores, m.params, m.flops, len(R.counted_terms(m, self.options)), seconds)

    def _score_batch(self, genotypes) -> Iterator[CandidateScore]:
        start = time.perf_counter()
        gs = [self._parse(g) for g in genotypes]
        measurements = self._measure_batch(gs)
        seconds = (time.perf_counter() - start) / len(gs)
        for g, m in zip(gs, measurements):
            yield self._result(g, m, seconds)

    def _measure_batch(self, gs) -> list[R.Measurement]:
        """One call of the space's program on a padded, sharded batch of candidates."""
        pad = [gs[0]] * (self.candidate_batch - len(gs))  # a fixed batch shape: one compilation
        ids = np.array([self.space.arch_id(g) for g in gs + pad], np.uint32)
        codes = np.stack([self.space.encode(g) for g in gs + pad])
        program = _batched_program(self.supernet, self.xs.shape[2:], self.dtype, self.cumulative, self.mesh,
                                   self.candidate_loop, self.space.loss)
        terms, counted = S.to_host(program(S.shard_candidates(ids, self.mesh), S.shard_candidates(codes, self.mesh),
                                           np.uint32(self.seed), self._xs_replicated, self._ys_replicated))
        return [self._measurement(g, {p: float(terms[p][i]) for p in terms if counted[p][i]})
                for i, g in enumerate(gs)]

    @functools.cached_property
    def _xs_replicated(self):
        return S.replicate(self.xs, self.mesh)

    @functools.cached_property
    def _ys_replicated(self):
        return S.replicate(self.ys, self.mesh)

    # ------------------------------------------------------------------------------------------- backends
    def _terms_tape(self, g, params) -> dict[str, float]:
        _, flat = T.tape_grads(self.space.tape(g, dtype=self.dtype), params, self.xs, self.ys, self.space.loss,
                               self.gradients)
        kernels = {path[: -len("/kernel")]: v for path, v in flat.items() if path.endswith("/kernel")}
        if self.gradients == "per_sample":  # (N, B, *shape) -> (N * B, *shape): statistics over every sample
            kernels = {path: v.reshape(-1, *v.shape[2:]) for path, v in kernels.items()}
        pairs = {path: _layer_term_jit(v, self.cumulative) for path, v in kernels.items()}
        return {path: float(t) for path, (t, counted) in pairs.items() if bool(counted)}

    def _terms_supernet(self, g, params) -> dict[str, float]:
        code = jnp.asarray(self.space.encode(g))
        program = _supernet_terms(self.supernet, self.grad_method, self.cumulative, self.space.loss)
        terms, counted = program(params, code, self.xs, self.ys)
        terms, counted = jax.device_get((terms, counted))
        return {path: float(terms[path]) for path in terms if bool(counted[path])}


@functools.partial(jax.jit, static_argnums=1)
def _layer_term_jit(grad, cumulative):
    return layer_term(grad, cumulative)


@functools.lru_cache(maxsize=None)
def _supernet_init(supernet, image_shape: tuple[int, ...], dtype):
    """Jitted init of the whole space, shared by every engine on the same network and input shape."""
    return jax.jit(lambda key, code: supernet.init(key, jnp.zeros((1, *image_shape), dtype), code)["params"])


@functools.lru_cache(maxsize=None)
def _batched_program(supernet, image_shape: tuple[int, ...], dtype, cumulative: bool, mesh, candidate_loop: str,
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

    def one(arch_id, code, seed, xs, ys):
        key = jax.random.fold_in(jax.random.key(seed), arch_id)
        params = supernet.init(key, jnp.zeros((1, *image_shape), dtype), code)["params"]
        return _layer_terms(supernet, params, code, xs, ys, "unroll", cumulative, loss)

    if candidate_loop == "vmap":
        batched = jax.vmap(one, in_axes=(0, 0, None, None, None))
    else:
        def batched(ids, codes, seed, xs, ys):
            return jax.lax.map(lambda c: one(c[0], c[1], seed, xs, ys), (ids, codes))
    # shard_map, not jit's SPMD partitioner: each device runs the program on its own candidates. The partitioner
    # splits vmapped (grouped) weight-gradient convolutions wrongly over the candidate axis.
    c, rep = PartitionSpec(S.AXIS), PartitionSpec()
    # check_vma=False: flax init and grad mix replicated and per-device values in ways the checker rejects.
    return jax.jit(jax.shard_map(batched, mesh=mesh, in_specs=(c, c, rep, rep, rep), out_specs=c, check_vma=False))


def _layer_terms(supernet, params, code, xs, ys, grad_method: str, cumulative: bool, loss):
    """Per-layer ZiCo (terms, counted) of candidate `code` at `params`: the body of both supernet programs."""
    loss_fn = G.classification_loss(lambda v, x: supernet.apply(v, x, code), loss=loss)
    grads = G.per_batch_grads(loss_fn, params, xs, ys, grad_method)
    terms = zico_layer_terms(G.kernel_leaves(grads), cumulative)
    return terms.terms, terms.counted


@functools.lru_cache(maxsize=None)
def _supernet_terms(supernet, grad_method: str, cumulative: bool, loss):
    """The supernet program for given weights (e.g. imported from PyTorch): (params, code, xs, ys) -> per-layer
    (terms, counted). Seeded candidates go through `_batched_program`, which draws the weights itself."""
    return jax.jit(functools.partial(_layer_terms, supernet, grad_method=grad_method, cumulative=cumulative,
                                     loss=loss))


def _overlay(base, override):
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
    return {k: (_overlay(v, override[k]) if k in override else v) for k, v in base.items()}

