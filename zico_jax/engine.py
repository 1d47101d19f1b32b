"""The scoring engine: every candidate of every experiment is scored here, and nowhere else.

    Engine(space, xs, ys, proxies).score(genotypes)  ->  CandidateScore per genotype, in order, as each finishes

For each candidate g the engine
  1. draws the initial weights from a per-candidate key, `fold_in(key(seed), space.arch_id(g))`, with ONE jitted
     init of the whole space (the supernet): linen derives each weight from its module path, so the slice that
     g uses is exactly what the standalone network of g initialised with the same key would hold;
  2. takes the per-mini-batch gradients of the mean cross-entropy at those weights (BatchNorm in train mode,
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
  * "auto" - "tape" on CPU when the space provides a tape, else "supernet".

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

from spaces.base import Space
from zico_jax import grads as G
from zico_jax import tape as T
from zico_jax.proxies import registry as R
from zico_jax.proxies.zico import layer_term, zico_layer_terms

BACKENDS = ("auto", "tape", "supernet")


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
      space: a `spaces.Space`.
      xs, ys: (N, B, H, W, C) inputs and (N, B) integer labels; xs's dtype is the compute precision.
      proxies: registered proxy names (`zico_jax.proxies.registry`).
      seed: the run's seed; candidate g is initialised from `fold_in(key(seed), space.arch_id(g))`.
      options: proxy options (ZiCo-BC's beta and feature map).
      backend: "auto", "tape" or "supernet" (see the module docstring).
      cumulative: ZiCo on running sums of the per-batch gradients (the official repository's literal behaviour).
      grad_method: how the supernet backend lays out the N gradients ("vmap", "unroll", "map").
    """

    def __init__(
        self, space: Space, xs, ys, proxies: Iterable[str] = ("zico",), *, seed: int = 0,
        options: R.ProxyOptions = R.ProxyOptions(), backend: str = "auto", cumulative: bool = False,
        grad_method: str = "vmap",
    ):
        xs, ys = jnp.asarray(xs), jnp.asarray(ys)
        if xs.ndim != 5 or ys.shape != xs.shape[:2]:
            raise ValueError(f"Engine: expected xs (N, B, H, W, C) and ys (N, B); got {xs.shape} and {ys.shape}")
        if xs.shape[0] < 2:
            raise ValueError(f"Engine: ZiCo needs at least 2 mini-batches, got {xs.shape[0]}")
        if backend not in BACKENDS:
            raise ValueError(f"Engine: unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        if backend == "auto":
            backend = "tape" if jax.default_backend() == "cpu" and hasattr(space, "tape") else "supernet"
        self.space, self.xs, self.ys = space, xs, ys
        self.proxies = R.parse_proxies(tuple(proxies))
        self.seed, self.options, self.backend = seed, options, backend
        self.cumulative, self.grad_method = cumulative, grad_method
        self.dtype = xs.dtype
        self.supernet = space.model(None, dtype=self.dtype)
        self._needs_grads = any(R.get_proxy(p).needs_grads for p in self.proxies)
        self._code0 = space.encode(space.sample(np.random.default_rng(0)))

    # ------------------------------------------------------------------------------------------- weights
    def candidate_key(self, genotype) -> jax.Array:
        return jax.random.fold_in(jax.random.key(self.seed), self.space.arch_id(genotype))

    def initial_params(self, genotype):
        """The supernet's weights drawn from `genotype`'s key; the genotype's own weights are a subtree."""
        init = _supernet_init(self.supernet, self.xs.shape[2:], self.dtype)
        return init(self.candidate_key(genotype), jnp.asarray(self._code0))

    # ------------------------------------------------------------------------------------------- scoring
    def measure(self, genotype, params=None) -> R.Measurement:
        """One candidate's measurement. `params`: the standalone network's weights (e.g. imported from
        PyTorch) instead of the seeded initialisation."""
        g = self.space.parse(genotype) if isinstance(genotype, str) else genotype
        terms: dict[str, float] = {}
        if self._needs_grads:
            if params is None:
                params = self.initial_params(g)
            elif self.backend == "supernet":  # the program reads every weight of the space: fill in the rest
                params = _overlay(self.initial_params(g), params)
            terms = self._terms_tape(g, params) if self.backend == "tape" else self._terms_supernet(g, params)
        layers = {layer.path: layer for layer in self.space.layers(g)}
        return R.Measurement(terms, layers, self.space.params(g), self.space.flops(g))

    def score_one(self, genotype, params=None) -> CandidateScore:
        start = time.perf_counter()
        g = self.space.parse(genotype) if isinstance(genotype, str) else genotype
        m = self.measure(g, params)
        scores = {name: R.get_proxy(name).fn(m, self.options) for name in self.proxies}
        return CandidateScore(str(g), scores, m.params, m.flops, len(m.terms), time.perf_counter() - start)

    def score(self, genotypes: Iterable) -> Iterator[CandidateScore]:
        """Score each genotype (object or official string) in order, yielding results as they finish."""
        for g in genotypes:
            yield self.score_one(g)

    # ------------------------------------------------------------------------------------------- backends
    def _terms_tape(self, g, params) -> dict[str, float]:
        _, flat = T.tape_grads(self.space.tape(g, dtype=self.dtype), params, self.xs, self.ys)
        kernels = {path[: -len("/kernel")]: v for path, v in flat.items() if path.endswith("/kernel")}
        pairs = {path: _layer_term_jit(v, self.cumulative) for path, v in kernels.items()}
        return {path: float(t) for path, (t, counted) in pairs.items() if bool(counted)}

    def _terms_supernet(self, g, params) -> dict[str, float]:
        code = jnp.asarray(self.space.encode(g))
        terms, counted = _supernet_terms(self.supernet, self.grad_method, self.cumulative)(params, code, self.xs, self.ys)
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
def _supernet_terms(supernet, grad_method: str, cumulative: bool):
    """The one compiled program of a space: (params, code, xs, ys) -> per-layer (terms, counted)."""

    def program(params, code, xs, ys):
        loss = G.classification_loss(lambda v, x: supernet.apply(v, x, code))
        grads = G.per_batch_grads(loss, params, xs, ys, grad_method)
        terms = zico_layer_terms(G.kernel_leaves(grads), cumulative)
        return terms.terms, terms.counted

    return jax.jit(program)


def _overlay(base, override):
    """`base` with every leaf present in `override` replaced (same nested-dict layout)."""
    if not isinstance(override, Mapping):
        return jnp.asarray(override, dtype=base.dtype) if hasattr(base, "dtype") else override
    missing = sorted(set(override) - set(base))
    if missing:
        raise KeyError(f"weights: {missing[0]!r} is not a parameter of this space's network")
    return {k: (_overlay(v, override[k]) if k in override else v) for k, v in base.items()}

